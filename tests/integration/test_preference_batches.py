"""The scheduler consumes preferences in batches: the same outcome as one entry at a time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
import structlog
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from structlog.testing import capture_logs

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import SCHEDULER_GROUP
from couples_nudge.common.streams import DATA_FIELD, read_entries
from couples_nudge.scheduler.ingest import Checkpoint, PreferenceIngest
from couples_nudge.scheduler.planning import PlanningError
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import PreferenceEvent
from tests.support.couples import couple_event
from tests.support.events import envelope, example, preferences
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _frequent(couple_id: str) -> bytes:
    data = example()["data"]
    data["couple_id"] = couple_id
    data["nudges"]["check_in"]["cadence"] = {"repeat": "cron", "cron": "*/10 * * * *"}
    return envelope("preferences.set.v1", data, NOW)


def _mixed() -> list[bytes]:
    """Good, bad and order-sensitive entries, as a producer might interleave them."""
    at = NOW - timedelta(hours=1)
    return [
        preferences("c1", 1, at),
        b"{not json",
        preferences("c2", 2, at),
        preferences("c2", 1, at + timedelta(seconds=1)),  # older revision: stale
        preferences("c2", 3, at + timedelta(seconds=2)),
        _frequent("c3"),  # valid JSON, refused by planning
        envelope("preferences.paused.v1", {"couple_id": "c1"}, at + timedelta(seconds=3)),
        preferences("c4", 1, at),
        envelope("couple.erased.v1", {"couple_id": "c4"}, at + timedelta(seconds=4)),
        preferences("c4", 1, at + timedelta(seconds=1)),  # replayed after erasure: ignored
        b'{"type": "preferences.exploded.v1"}',
        preferences("c5", 1, at),
    ]


async def _state(redis: aioredis.Redis, service: SchedulerService) -> dict[str, Any]:
    """Everything the scheduler stores, with key names relative to its prefix."""
    prefix = f"{service.keys.prefix}:"
    state: dict[str, Any] = {}
    for key in sorted(cast("list[bytes]", await redis.keys(f"{prefix}*"))):
        name = key.decode().removeprefix(prefix)
        kind = cast("bytes", await redis.type(key)).decode()
        if name.startswith(("preferences", "rejected", "state:")):  # state: each run's own epoch
            continue
        if kind == "hash":
            state[name] = await redis.hgetall(key)
        elif kind == "zset":
            state[name] = await redis.zrange(key, 0, -1, withscores=True)
    return state


async def _rejections(redis: aioredis.Redis, service: SchedulerService) -> list[tuple[bytes, ...]]:
    return [
        (fields[b"raw"], fields[b"reason"])
        for _, fields in await read_entries(redis, service.keys.rejected)
    ]


async def _deliver(
    redis: aioredis.Redis, service: SchedulerService, raws: Sequence[bytes]
) -> list[tuple[str, bytes]]:
    """XADD the entries and read them as the group's consumer (so they are pending)."""
    for raw in raws:
        await redis.xadd(service.keys.preferences, {DATA_FIELD: raw})
    reply = cast(
        "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]",
        await redis.xreadgroup(
            SCHEDULER_GROUP, service.consumer, {service.keys.preferences: ">"}, count=len(raws)
        ),
    )
    return [(eid.decode(), fields[DATA_FIELD.encode()]) for eid, fields in reply[0][1]]


async def _left(redis: aioredis.Redis, service: SchedulerService) -> tuple[int, int]:
    """(entries on the preferences stream, entries pending there)."""
    pending = await redis.xpending(service.keys.preferences, SCHEDULER_GROUP)
    return await redis.xlen(service.keys.preferences), pending["pending"]


async def _clear(redis: aioredis.Redis, service: SchedulerService) -> None:
    """Remove a side service's keys: its prefix (`<key_prefix>-batch`) is not `<key_prefix>:`."""
    keys = [k async for k in redis.scan_iter(match=f"{service.keys.prefix}:*", count=1000)]
    if keys:
        await redis.delete(*keys)


def _service(redis_url: str, prefix: str) -> SchedulerService:
    return SchedulerService(scheduler_settings(redis_url, prefix), ManualClock(NOW))


@contextlib.asynccontextmanager
async def _side_by_side(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> AsyncIterator[tuple[SchedulerService, SchedulerService]]:
    """A service to handle entries as a batch and one to handle them one at a time."""
    batched = _service(redis_url, f"{key_prefix}-batch")
    single = _service(redis_url, f"{key_prefix}-single")
    try:
        for service in (batched, single):
            await service.before_start()
        yield batched, single
    finally:
        for service in (batched, single):
            await _clear(redis, service)
            await service.redis.aclose()


async def _both_ways(
    redis: aioredis.Redis, batched: SchedulerService, single: SchedulerService, raws: list[bytes]
) -> tuple[list[str], list[str]]:
    """`raws` handled as one batch by `batched` and one by one by `single`: the batch's entry
    ids, and those it returned as handled."""
    entries = await _deliver(redis, batched, raws)
    done = await batched.handle_batch(entries)
    for entry, raw in await _deliver(redis, single, raws):
        await single.handle(raw, entry)
    return [entry for entry, _ in entries], done


class FailingFirst(PreferenceIngest):
    """The real ingest, whose `apply_many` raises `error` on its first `tries` calls (all of
    them when None) before it applies."""

    def __init__(self, service: SchedulerService, error: Exception, tries: int | None = None):
        super().__init__(service.store, service.clock, service.settings)
        self.error, self.failing, self.tries = error, tries, 0

    async def apply_many(
        self, events: Sequence[PreferenceEvent], checkpoint: Checkpoint | None = None
    ) -> list[str | PlanningError]:
        self.tries += 1
        if self.failing is None or self.tries <= self.failing:
            raise self.error
        return await super().apply_many(events, checkpoint)


class TestHandleBatch:
    async def test_a_batch_ends_as_one_entry_at_a_time(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Same stored state and the same rejections, in stream order, as handling one by one."""
        async with _side_by_side(redis, redis_url, key_prefix) as (batched, single):
            raws = _mixed()
            ids, done = await _both_ways(redis, batched, single, raws)

            assert done == ids
            assert await _state(redis, batched) == await _state(redis, single)
            rejected = await _rejections(redis, batched)
            assert rejected == await _rejections(redis, single)
            assert [raw for raw, _ in rejected] == [raws[1], raws[5], raws[10]]
            assert b"minimum interval" in rejected[1][1]
            assert await redis.hget(batched.keys.couple("c2"), "rev") == b"3"
            assert await redis.xlen(batched.keys.preferences) == 0
            pending = await redis.xpending(batched.keys.preferences, SCHEDULER_GROUP)
            assert pending["pending"] == 0

    async def test_refusals_in_every_chunk_end_as_one_entry_at_a_time(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A batch of 240 entries, malformed, refused, stale and other events all along it
        (each pause ends a pipelined chunk): the same as one at a time."""
        at = NOW - timedelta(hours=1)
        raws: list[bytes] = []
        for n in range(40):
            raws += [
                preferences(f"c{n}", 2, at),
                b"{not json",
                preferences(f"c{n}", 1, at + timedelta(seconds=1)),  # older revision: stale
                _frequent(f"f{n}"),  # refused by planning
                envelope("preferences.paused.v1", {"couple_id": f"c{n}"}, at),
                b'{"type": "preferences.exploded.v1"}',
            ]
        async with _side_by_side(redis, redis_url, key_prefix) as (batched, single):
            ids, done = await _both_ways(redis, batched, single, raws)
            assert done == ids
            assert await _state(redis, batched) == await _state(redis, single)
            rejected = await _rejections(redis, batched)
            assert rejected == await _rejections(redis, single)
            assert len(rejected) == 3 * 40
            assert await redis.xlen(batched.keys.preferences) == 0

    async def test_only_the_erasure_of_a_batch_is_logged_per_event(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """At info, a batch logs one "preference_applied" line: its erasure's (audited)."""
        service = _service(redis_url, key_prefix)
        try:
            await service.before_start()
            entries = await _deliver(redis, service, _mixed())
            config = structlog.get_config()
            structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
            try:
                with capture_logs() as logs:
                    await service.handle_batch(entries)
            finally:
                structlog.configure(**config)
            applied = [line for line in logs if line["event"] == "preference_applied"]
            assert [(line["log_level"], line["event_type"]) for line in applied] == [
                ("info", "couple.erased.v1")
            ]
        finally:
            await _clear(redis, service)
            await service.redis.aclose()

    async def test_revisions_keep_their_order_across_pipelined_chunks(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Hundreds of entries (several pipelined chunks): the same state as one at a time."""
        at = NOW - timedelta(hours=1)
        raws: list[bytes] = []
        for step, revision in enumerate([1, 3, 2, 5, 4, 7, 6, 9, 8, 10] * 3):
            for couple in range(9):
                when = at + timedelta(seconds=step)
                raws.append(preferences(f"c{couple}", revision + 10 * (step // 10), when))
            if step % 7 == 0:
                pause = {"couple_id": "c1", "partner_id": "maya"}
                raws.append(envelope("preferences.paused.v1", pause, at + timedelta(seconds=step)))
        async with _side_by_side(redis, redis_url, key_prefix) as (batched, single):
            _ids, done = await _both_ways(redis, batched, single, raws)
            assert len(done) == len(raws)
            assert await _state(redis, batched) == await _state(redis, single)
            assert await redis.hget(batched.keys.couple("c8"), "rev") == b"30"

    async def test_an_entry_that_fails_stays_pending_and_the_others_are_applied(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """An unexpected failure leaves only its own entry for the Reclaimer."""

        class Exploding(PreferenceIngest):
            async def apply_many(
                self, events: Sequence[PreferenceEvent], checkpoint: Checkpoint | None = None
            ) -> list[str | PlanningError]:
                if any(e.data.couple_id == "boom" for e in events):
                    raise RuntimeError("boom")
                return await super().apply_many(events, checkpoint)

            async def apply(self, event: PreferenceEvent) -> str:
                if event.data.couple_id == "boom":
                    raise RuntimeError("boom")
                return await super().apply(event)

        service = _service(redis_url, key_prefix)
        service.ingest = Exploding(service.store, service.clock, service.settings)
        try:
            await service.before_start()
            raws = [preferences("c1", 1, NOW), preferences("boom", 1, NOW), b"{not json"]
            entries = await _deliver(redis, service, [*raws, preferences("c2", 1, NOW)])

            done = await service.handle_batch(entries)

            boom = entries[1][0]
            assert done == [entry for entry, _ in entries if entry != boom]
            for couple in ("c1", "c2"):
                assert await redis.hget(service.keys.couple(couple), "rev") == b"1"
            assert not await redis.exists(service.keys.couple("boom"))
            assert len(await _rejections(redis, service)) == 1
            left = await read_entries(redis, service.keys.preferences)
            assert [entry for entry, _ in left] == [boom]
            pending = await redis.xpending(service.keys.preferences, SCHEDULER_GROUP)
            assert pending["pending"] == 1
            assert pending["min"].decode() == boom
        finally:
            await service.redis.aclose()

    async def test_a_redis_error_leaves_the_whole_batch_pending(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Redis failing mid-batch with an error of the command's own (not a refusal, which is
        waited out: below): nothing is deleted or acknowledged; the Reclaimer retries."""

        service = _service(redis_url, key_prefix)
        service.ingest = FailingFirst(service, ResponseError("ERR the script failed"))
        try:
            await service.before_start()
            entries = await _deliver(redis, service, [preferences("c1", 1, NOW), b"{not json"])
            with pytest.raises(ResponseError):
                await service.handle_batch(entries)
            assert await _left(redis, service) == (2, 2)
        finally:
            await service.redis.aclose()

    async def test_a_lost_connection_is_waited_out_and_the_batch_applied_once(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Redis unreachable for the batch's first two tries (a "not now": refusals.py): the
        batch is tried again here with backoff, not left to the Reclaimer (which counts a
        delivery per try and dead-letters after a few). Then it is applied and acknowledged:
        every entry handled, nothing pending, each delivered once, one warning per wait."""

        service = _service(redis_url, key_prefix)
        ingest = FailingFirst(service, RedisConnectionError("connection lost"), tries=2)
        service.ingest = ingest
        try:
            await service.before_start()
            entries = await _deliver(redis, service, [preferences("c1", 1, NOW), b"{not json"])
            with capture_logs() as logs:
                done = await service.handle_batch(entries)
            assert done == [entry for entry, _ in entries]
            assert ingest.tries == 3
            waits = [e for e in logs if e["event"] == "redis_refused_backing_off"]
            assert [(e["failures"], e["error"]) for e in waits] == [
                (1, "ConnectionError"),
                (2, "ConnectionError"),
            ]
            refusals = service.metrics.registry.get_sample_value(
                "nudge_redis_refusals_total", {"error": "ConnectionError"}
            )
            assert refusals == 2
            assert await redis.hget(service.keys.couple("c1"), "rev") == b"1"
            assert len(await _rejections(redis, service)) == 1
            assert await _left(redis, service) == (0, 0)
        finally:
            await service.redis.aclose()

    async def test_a_stop_while_waiting_leaves_the_batch_pending(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Redis unreachable and the service stopping meanwhile: the wait ends at once and
        the batch stays pending (nothing handled), for another scheduler."""

        service = _service(redis_url, key_prefix)
        service.ingest = FailingFirst(service, RedisConnectionError("connection lost"))
        try:
            await service.before_start()
            entries = await _deliver(redis, service, [preferences("c1", 1, NOW)])
            batch = asyncio.create_task(service.handle_batch(entries))
            await asyncio.sleep(0.3)  # a few waits (0.05-0.1 s, 0.1-0.2 s, ...)
            assert not batch.done()
            service._stop.set()  # what stop() does first (this service was not started)
            assert await asyncio.wait_for(batch, timeout=5) == []
            assert await _left(redis, service) == (1, 1)
        finally:
            await service.redis.aclose()


class TestBatchSubscriber:
    async def test_a_backlog_is_applied_in_order_and_emptied(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A backlog read in batches: revisions in stream order, bad entries rejected, no rest."""
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(NOW))
        await service.before_start()
        at = NOW - timedelta(hours=1)
        for revision in range(1, 41):
            for couple in ("c1", "c2"):
                raw = preferences(couple, revision, at + timedelta(seconds=revision))
                await redis.xadd(settings.keys.preferences, {DATA_FIELD: raw})
            if revision % 10 == 0:
                await redis.xadd(settings.keys.preferences, {DATA_FIELD: b"{not json"})
            if revision == 15:
                await redis.xadd(settings.keys.preferences, {DATA_FIELD: b"\xff not UTF-8"})
        await redis.xadd(settings.keys.preferences, {"unexpected": b"field"})
        await service.start()
        try:
            await eventually(lambda: redis.xlen(settings.keys.preferences), until=lambda n: n == 0)
            for couple in ("c1", "c2"):
                assert await redis.hget(settings.keys.couple(couple), "rev") == b"40"
            rejected = await _rejections(redis, service)
            raws = [raw for raw, _ in rejected]
            assert raws[:5] == [b"{not json", b"\xff not UTF-8", *[b"{not json"] * 3]
            assert len(rejected) == 6
            assert b"unexpected" in rejected[5][0]  # no payload field: the fields are the raw
            groups = await redis.xinfo_groups(settings.keys.preferences)
            assert groups[0]["pending"] == 0
        finally:
            await service.stop()

    async def test_a_backlog_of_several_batches_keeps_stream_order(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A backlog read in several batches: every couple ends at its last revision,
        rejections come out in stream order, and nothing is left pending."""
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(NOW))
        await service.before_start()
        at = NOW - timedelta(hours=1)
        bad = [f"{{not json {n}".encode() for n in range(0, 1200, 100)]
        async with redis.pipeline(transaction=False) as pipe:
            for n in range(1200):  # 300 couples, revisions 1-4: 2.5 batches of 500
                raw = preferences(f"c{n % 300}", n // 300 + 1, at + timedelta(seconds=n))
                pipe.xadd(settings.keys.preferences, {DATA_FIELD: raw})
                if n % 100 == 0:
                    pipe.xadd(settings.keys.preferences, {DATA_FIELD: bad[n // 100]})
            await pipe.execute()
        await service.start()
        try:
            await eventually(
                lambda: redis.xlen(settings.keys.preferences), until=lambda n: n == 0, within=60
            )
            for couple in range(300):
                assert await redis.hget(settings.keys.couple(f"c{couple}"), "rev") == b"4"
            assert [raw for raw, _ in await _rejections(redis, service)] == bad
            groups = await redis.xinfo_groups(settings.keys.preferences)
            assert groups[0]["pending"] == 0
        finally:
            await service.stop()

    async def test_payloads_are_read_as_one_at_a_time(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A legacy {"data": "<event>"} envelope is unwrapped as FastStream's subscriber does."""
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(NOW))
        await service.before_start()
        wrapped = json.dumps({"data": preferences("c9", 1, NOW).decode(), "headers": {}})
        await redis.xadd(settings.keys.preferences, {DATA_FIELD: wrapped.encode()})
        await redis.xadd(settings.keys.preferences, {DATA_FIELD: json.dumps({"data": "{x"})})
        await service.start()
        try:
            await eventually(lambda: redis.xlen(settings.keys.preferences), until=lambda n: n == 0)
            assert await redis.hget(settings.keys.couple("c9"), "rev") == b"1"
            assert [raw for raw, _ in await _rejections(redis, service)] == [b"{x"]
        finally:
            await service.stop()


class TestStopMidBatch:
    async def test_a_stop_acknowledges_what_was_applied_and_leaves_the_rest_pending(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """stop() during a long batch ends it between entries: the entries applied are deleted
        and acknowledged, the ones after them stay on the stream and pending, in order.

        Planning is cheap now, so the batch is made long between its entries: a checkpoint
        after every event (no time slice) that takes 0.1 s, as a busy event loop would."""
        monkeypatch.setattr("couples_nudge.scheduler.ingest._SLICE_S", 0.0)
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(NOW))
        between = service._checkpoint

        async def slow_checkpoint() -> bool:
            await asyncio.sleep(0.1)
            return await between()

        monkeypatch.setattr(service, "_checkpoint", slow_checkpoint)
        await service.start()
        stopped = False
        try:
            async with redis.pipeline(transaction=True) as pipe:  # one batch
                for n in range(8):
                    pipe.xadd(settings.keys.preferences, {DATA_FIELD: _costly(n)})
                ids = [entry.decode() for entry in await pipe.execute()]
            await eventually(
                lambda: redis.xpending(settings.keys.preferences, SCHEDULER_GROUP),
                until=lambda p: p["pending"] == len(ids),
            )
            await asyncio.sleep(0.3)
            await service.stop()
            stopped = True
            applied = [n for n in range(8) if await redis.exists(settings.keys.couple(f"c{n:05d}"))]
            left = [entry for entry, _ in await read_entries(redis, settings.keys.preferences)]
            rows = await redis.xpending_range(
                settings.keys.preferences, SCHEDULER_GROUP, min="-", max="+", count=20
            )
            assert 0 < len(applied) < len(ids)
            assert applied == list(range(len(applied)))  # in stream order, none skipped
            assert left == ids[len(applied) :]
            assert [cast("bytes", row["message_id"]).decode() for row in rows] == left
        finally:
            if not stopped:
                await service.stop()


def _costly(n: int) -> bytes:
    kinds = ("date_night", "check_in", "appreciation")
    nudges = {
        kind: {"cadence": {"repeat": "cron", "cron": f"{(n + 20 * i) % 60} */4 * * *"}}
        for i, kind in enumerate(kinds)
    }
    return couple_event(n, nudges=nudges)
