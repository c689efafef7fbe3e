"""Both services survive their Redis state vanishing: they notice, say so once, consume again.

In process, against the real server: the test's keys are deleted under running services, which
is what a Redis restarted without persistence looks like to them (no marker, no groups, no
couples). Before this, FastStream stopped every subscriber on the first NOGROUP and nothing
was consumed again until a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import SCHEDULER_GROUP
from couples_nudge.common.reclaim import Reclaimer
from couples_nudge.common.streams import DATA_FIELD, group_names, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import ServiceStateLost, parse_outcomes_entry
from tests.support.events import preferences
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # Tuesday; maya-sam's date night: Fri 18:00Z
DATE_NIGHT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


class Running:
    def __init__(
        self, scheduler: SchedulerService, notifier: NotifierService, clock: ManualClock
    ) -> None:
        self.scheduler, self.notifier, self.clock = scheduler, notifier, clock
        self.keys = scheduler.keys


@pytest.fixture
async def running(
    redis_url: str, key_prefix: str, mail: MailCatcher, redis: aioredis.Redis
) -> AsyncIterator[Running]:
    """Both services, stopped before the `redis` fixture removes the test's keys (so they
    cannot write a marker or a group again after that clean-up)."""
    del redis  # requested for its teardown order only
    clock = ManualClock(START)
    fast = {"state_check_seconds": 0.2, "http_port": 0, "reclaim_idle": timedelta(minutes=10)}
    scheduler = SchedulerService(
        scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.02, **fast), clock
    )
    notifier = NotifierService(
        notifier_settings(redis_url, key_prefix, smtp_port=mail.port, **fast), clock
    )
    await scheduler.start()
    await notifier.start()
    try:
        yield Running(scheduler, notifier, clock)
    finally:
        await notifier.stop()
        await scheduler.stop()


async def _lose_everything(redis: aioredis.Redis, prefix: str) -> None:
    keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    await redis.delete(*keys)


async def _notices(redis: aioredis.Redis, stream: str) -> list[ServiceStateLost]:
    events = await read_events(redis, stream, parse_outcomes_entry)
    return [e for e in events if isinstance(e, ServiceStateLost)]


def _counted(registry: CollectorRegistry) -> float:
    return registry.get_sample_value("nudge_state_lost_total") or 0.0


async def _emails(mail: MailCatcher) -> int:
    return len(mail.messages)


class TestStateLost:
    async def test_both_services_recover_and_say_so_once(
        self, running: Running, redis: aioredis.Redis, key_prefix: str, mail: MailCatcher
    ) -> None:
        """After the loss, new preferences are applied and nudges sent again; one notice,
        counted by both processes, shown on /readyz."""
        scheduler, notifier, keys = running.scheduler, running.notifier, running.keys
        await redis.xadd(keys.preferences, {DATA_FIELD: preferences("maya-sam")})
        timers = keys.timers(0)
        await eventually(lambda: redis.zcard(timers), until=bool)

        await _lose_everything(redis, key_prefix)

        found = await eventually(
            lambda: _notices(redis, keys.outcomes), until=lambda n: len(n) >= 1
        )
        assert found[0].data.detected_by in (scheduler.consumer, notifier.consumer)
        await redis.xadd(keys.preferences, {DATA_FIELD: preferences("maya-sam")})
        await eventually(lambda: redis.zcard(timers), until=bool, within=10)
        running.clock.set(DATE_NIGHT + timedelta(seconds=1))
        await eventually(lambda: _emails(mail), until=lambda n: n >= 2, within=10)

        assert len(await _notices(redis, keys.outcomes)) == 1
        assert _counted(scheduler.metrics.registry) == 1
        assert _counted(notifier.metrics.registry) == 1
        for service in (scheduler, notifier):
            assert service.http is not None
            async with httpx.AsyncClient(base_url=service.http.url) as client:
                ready = (await client.get("/readyz")).json()
            assert ready["status"] == "ok"
            assert ready["state_lost"]["detected_by"] == found[0].data.detected_by

    async def test_a_subscriber_stopped_by_a_missing_group_is_started_again(
        self, running: Running, redis: aioredis.Redis
    ) -> None:
        """A group destroyed under the scheduler (not a state loss): FastStream stops the
        subscriber; it is started again on a recreated group, with no notice."""
        scheduler, keys = running.scheduler, running.keys
        await redis.xgroup_destroy(keys.preferences, SCHEDULER_GROUP)
        await eventually(lambda: _restarts(scheduler), until=lambda n: n >= 1, within=10)
        assert SCHEDULER_GROUP in await group_names(redis, keys.preferences)
        await redis.xadd(keys.preferences, {DATA_FIELD: preferences("maya-sam")})
        await eventually(lambda: redis.zcard(keys.timers(0)), until=bool, within=10)
        assert await _notices(redis, keys.outcomes) == []
        assert _counted(scheduler.metrics.registry) == 0


async def _restarts(service: SchedulerService) -> int:
    return service.watch.restarts


class TestReclaimerWithoutGroup:
    async def test_nogroup_pokes_the_watcher_and_the_reclaimer_carries_on(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A reclaimer whose group vanished tells `on_missing_group` and keeps running."""
        pokes: list[int] = []
        stream = f"{key_prefix}:preferences"
        await redis.xadd(stream, {DATA_FIELD: b"{}"})  # a stream, but no group

        async def never(_raw: bytes, _entry: str, _fields: dict[bytes, bytes]) -> None:
            raise AssertionError("nothing to reclaim")

        reclaimer = Reclaimer(
            redis,
            stream=stream,
            group=SCHEDULER_GROUP,
            consumer="c",
            handle=never,
            dead_stream=f"{key_prefix}:dead",
            dead_maxlen=100,
            min_idle_ms=0,
            max_deliveries=3,
            poll_seconds=0.05,
            on_missing_group=lambda: pokes.append(1),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(reclaimer.run(stop))
        await eventually(lambda: _len(pokes), until=lambda n: n >= 2)
        assert not task.done()
        stop.set()
        await task


async def _len(items: list[int]) -> int:
    return len(items)
