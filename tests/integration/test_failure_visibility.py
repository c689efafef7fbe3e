"""A failing delivery is visible at the default log level and in `nudge status`."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from rich.console import Console

from couples_nudge.common import dead_letters
from couples_nudge.common.clock import ManualClock, SystemClock
from couples_nudge.common.streams import read_events
from couples_nudge.embedded.valkey import free_port
from couples_nudge.operator.status import Status, gather_status
from couples_nudge.operator.status_cli import render_status
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import parse_due, parse_preference
from tests.support.events import example, preferences
from tests.support.processes import ServiceProcess
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually

DATE_NIGHT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # maya-sam's Friday date night


async def _fire_date_night(redis: aioredis.Redis, redis_url: str, prefix: str) -> None:
    """Plan maya-sam with the scheduler's code and fire its date night (one NudgeDue, two
    recipients) onto the due stream."""
    settings = scheduler_settings(redis_url, prefix)
    clock = ManualClock(DATE_NIGHT - timedelta(hours=1))
    store = ScheduleStore(redis, settings.keys, due_maxlen=10_000)
    await PreferenceIngest(store, clock, settings).apply(parse_preference(preferences("maya-sam")))
    clock.set(DATE_NIGHT + timedelta(seconds=5))
    await TimerLoop(store, clock, settings).tick(0)
    dues = await read_events(redis, settings.keys.due(0), parse_due)
    assert [d.data.kind for d in dues] == ["date_night"]


class TestFailedDeliveries:
    async def test_each_failure_warns_each_dead_letter_errs_and_status_shows_the_wait(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, tmp_path: Path
    ) -> None:
        """No SMTP server, log level info: a warning per failed send (kind, channel, reason,
        attempt, retry_in_s), an error for the dead letter, the retry in status; no address."""
        await _fire_date_night(redis, redis_url, key_prefix)
        keys = scheduler_settings(redis_url, key_prefix).keys
        env = {
            "REDIS_URL": redis_url,
            "NUDGE_KEY_PREFIX": key_prefix,
            "NUDGE_LOG_LEVEL": "info",  # the default
            "NUDGE_SMTP_PORT": str(free_port()),  # nothing listens there
            "NUDGE_RETRY_BASE": "PT3S",
            "NUDGE_RETRY_CAP": "PT3S",
            "NUDGE_MAX_ATTEMPTS": "2",
            "NUDGE_RETRY_POLL_SECONDS": "0.1",
        }
        with ServiceProcess("notifier", env, tmp_path, "notifier") as notifier:
            waiting: Status = await eventually(
                lambda: gather_status(redis, keys, SystemClock().now()),
                until=lambda s: s.retries_waiting == 1,
                within=60,
            )
            await eventually(
                lambda: dead_letters.list_dead(redis, keys.dead), until=lambda d: len(d) == 1
            )
            assert notifier.terminate() == 0
        log = notifier.log()
        lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        failed = [line for line in lines if line["event"] == "nudge_delivery_failed"]
        buried = [line for line in lines if line["event"] == "nudge_dead_lettered"]
        print(
            f"\nfailed sends logged: {len(failed)}, dead letters logged: {len(buried)}, "
            f"retries waiting in status: {waiting.retries_waiting}"
        )

        assert len(failed) == 2  # maya and sam, attempt 1; attempt 2 is the dead letter
        for line in failed:
            assert line["level"] == "warning"
            assert (line["kind"], line["channel"], line["reason"]) == (
                "date_night",
                "email",
                "connection",
            )
            assert line["attempt"] == 1
            assert 2.0 <= line["retry_in_s"] <= 4.0  # 3 s +- 20 % jitter
        [dead] = buried
        assert dead["level"] == "error"
        assert (dead["attempts"], dead["channels"], dead["reasons"]) == (
            2,
            ["email"],
            ["connection"],
        )

        [shard] = waiting.retries
        assert shard.waiting == 1
        assert shard.next_due is not None
        assert waiting.as_json()["totals"]["retries_waiting"] == 1
        console = Console(width=120, record=True, file=io.StringIO())
        console.print(render_status(waiting))
        assert "Retries" in console.export_text()

        partners = example("maya-and-sam")["data"]["partners"]
        for partner in partners:
            assert partner["email"] not in log
            assert partner["name"] not in log


class TestBrokenSchedules:
    async def test_a_schedule_that_cannot_be_stepped_is_counted_and_the_others_fire(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A record the timer loop cannot read (here its spec is garbage: a rule an upgrade
        refuses does the same) was logged and retried an hour later, but counted nowhere an
        operator alerts on: now `nudge_schedule_failures_total` counts it
        (deploy/prometheus/alerts.yml: NudgeScheduleFailing)."""
        settings = scheduler_settings(redis_url, key_prefix)
        clock = ManualClock(DATE_NIGHT - timedelta(hours=1))
        store = ScheduleStore(redis, settings.keys, due_maxlen=10_000)
        await PreferenceIngest(store, clock, settings).apply(
            parse_preference(preferences("maya-sam"))
        )
        couple = settings.keys.couple("maya-sam")
        record = await redis.hget(couple, "d/both")
        assert isinstance(record, bytes)
        seq, nominal, _ = record.split(b"|", 2)
        await redis.hset(couple, "d/both", b"|".join((seq, nominal, b"not a rule")))
        loop = TimerLoop(store, clock, settings)
        clock.set(DATE_NIGHT + timedelta(seconds=5))
        await loop.tick(0)
        failures = loop.metrics.registry.get_sample_value("nudge_schedule_failures_total")
        assert failures == 1
        retry_at = await redis.zscore(settings.keys.timers(0), "maya-sam/d/both")
        assert retry_at is not None
        assert retry_at > (DATE_NIGHT + timedelta(minutes=59)).timestamp() * 1000
        assert await read_events(redis, settings.keys.due(0), parse_due) == []
