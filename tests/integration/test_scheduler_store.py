"""The scheduler's Redis state against a real server: revisions, erasure, compare-and-set."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import cast

import redis.asyncio as aioredis

from schemas import parse_due, parse_preference
from services.common.clock import ManualClock, epoch_ms
from services.common.streams import read_events
from services.scheduler.ingest import PreferenceIngest
from services.scheduler.settings import SchedulerSettings
from services.scheduler.store import ScheduleStore
from services.scheduler.timer_loop import TimerLoop
from tests.support.events import envelope, preferences
from tests.support.settings import scheduler_settings

START = datetime(2026, 12, 1, tzinfo=UTC)


async def _members(redis: aioredis.Redis, key: str) -> set[str]:
    return {m.decode() for m in cast("list[bytes]", await redis.zrange(key, 0, -1))}


async def _mentions(redis: aioredis.Redis, pattern: str, needle: str) -> list[str]:
    """Every key, zset member or hash field/value matching `pattern` that contains `needle`."""
    found: list[str] = []
    async for raw_key in redis.scan_iter(match=pattern, count=1000):
        key = cast("bytes", raw_key).decode()
        texts = [key]
        kind = cast("bytes", await redis.type(key))
        if kind == b"zset":
            texts += list(await _members(redis, key))
        elif kind == b"hash":
            fields = cast("dict[bytes, bytes]", await redis.hgetall(key))
            texts += [(f + b"=" + v).decode() for f, v in fields.items()]
        found += [t for t in texts if needle in t]
    return found


def _settings(redis_url: str, prefix: str) -> SchedulerSettings:
    return scheduler_settings(redis_url, prefix)


class TestRevisions:
    async def test_newer_revision_replaces_and_older_is_ignored(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A replayed or out-of-order older revision never rolls state back."""
        settings = _settings(redis_url, key_prefix)
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        ingest = PreferenceIngest(store, ManualClock(START), settings)
        assert await ingest.apply(parse_preference(preferences("c1", revision=2))) == "applied"
        assert await ingest.apply(parse_preference(preferences("c1", revision=1))) == "stale"
        assert await ingest.apply(parse_preference(preferences("c1", revision=2))) == "stale"
        assert await redis.hget(settings.keys.couple("c1"), "rev") == b"2"

    async def test_dropping_a_nudge_kind_removes_its_timers(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A new revision without date night leaves no date-night timer or record behind."""
        settings = _settings(redis_url, key_prefix)
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        ingest = PreferenceIngest(store, ManualClock(START), settings)
        await ingest.apply(parse_preference(preferences("c1", revision=1)))
        before = await _members(redis, settings.keys.timers(0))
        assert "c1/d/both" in before
        event = preferences("c1", revision=2)
        nudges = parse_preference(event).data.nudges.model_dump(mode="json", exclude_none=True)  # type: ignore[union-attr]
        del nudges["date_night"]
        await ingest.apply(parse_preference(preferences("c1", revision=2, nudges=nudges)))
        after = await _members(redis, settings.keys.timers(0))
        assert after == before - {"c1/d/both"}
        assert await redis.hget(settings.keys.schedules(0), "c1/d/both") is None


class TestErasure:
    async def test_erase_leaves_no_key_with_the_couple_and_blocks_replays(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """After erasure no key, field or timer names the couple; older events cannot revive it."""
        settings = _settings(redis_url, key_prefix)
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        clock = ManualClock(START)
        ingest = PreferenceIngest(store, clock, settings)
        await ingest.apply(parse_preference(preferences("gone-couple", occurred_at=START)))
        await ingest.apply(parse_preference(preferences("kept-couple", occurred_at=START)))
        await redis.zadd(settings.keys.sent("gone-couple"), {"x|maya|email": 1})
        erase = envelope("couple.erased.v1", {"couple_id": "gone-couple"}, START + timedelta(1))
        assert await ingest.apply(parse_preference(erase)) == "erased"

        assert await _mentions(redis, f"{key_prefix}:*", "gone-couple") == []
        replay = preferences("gone-couple", revision=9, occurred_at=START)
        assert await ingest.apply(parse_preference(replay)) == "erased"
        assert await redis.exists(settings.keys.couple("kept-couple")) == 1

    async def test_preferences_after_erasure_start_afresh(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A couple who comes back after erasure (a newer event) is planned again from scratch."""
        settings = _settings(redis_url, key_prefix)
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        ingest = PreferenceIngest(store, ManualClock(START), settings)
        erase = envelope("couple.erased.v1", {"couple_id": "back"}, START)
        await ingest.apply(parse_preference(erase))
        later = preferences("back", revision=1, occurred_at=START + timedelta(days=2))
        assert await ingest.apply(parse_preference(later)) == "applied"


class TestReplicas:
    async def test_concurrent_timer_loops_publish_each_occurrence_once(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Three loops racing over the same due timers: every occurrence lands exactly once."""
        settings = _settings(redis_url, key_prefix)
        clock = ManualClock(START)
        clients = [aioredis.Redis.from_url(redis_url) for _ in range(3)]
        stores = [ScheduleStore(c, settings.keys, due_maxlen=100_000) for c in clients]
        ingest = PreferenceIngest(stores[0], clock, settings)
        for i in range(60):
            await ingest.apply(parse_preference(preferences(f"c{i}")))
        loops = [TimerLoop(s, clock, settings.model_copy(update={"batch_size": 7})) for s in stores]
        expected = 0
        for _hour in range(14 * 24):  # steps shorter than every grace window: nothing missed
            clock.advance(timedelta(hours=1))
            due_now = await redis.zcount(settings.keys.timers(0), "-inf", epoch_ms(clock.now()))
            expected += due_now
            while await redis.zcount(settings.keys.timers(0), "-inf", epoch_ms(clock.now())):
                await asyncio.gather(*(loop.tick(0) for loop in loops))
        dues = await read_events(redis, settings.keys.due(0), parse_due)
        ids = [due.data.occurrence_id for due in dues]
        assert len(ids) == len(set(ids))
        assert len(ids) == expected > 0
        assert sum(loop.fired for loop in loops) == len(ids)
        for client in clients:
            await client.aclose()
