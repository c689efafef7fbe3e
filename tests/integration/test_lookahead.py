"""Fires prepared ahead of their instant (timer_loop.look_ahead / fire_ahead) on a real server.

Nothing is published before its instant; at the instant the prepared steps publish exactly what
the normal path would; whatever changed in between (a revision, an erasure, another replica, a
crash) is decided by the normal path, and every occurrence still fires exactly once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis.asyncio as aioredis
import structlog.testing

from couples_nudge.common.clock import ManualClock, epoch_ms, from_ms
from couples_nudge.common.streams import read_events
from couples_nudge.scheduler import timer_loop
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.lookahead import FRESH_MS
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import CLAIM_TTL_MS, Fire, Fired, ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import NudgeDue, parse_due, parse_preference
from tests.support.events import envelope, preferences
from tests.support.settings import scheduler_settings

START = datetime(2026, 12, 1, tzinfo=UTC)
COUPLES = [f"c{i}" for i in range(5)]


class World:
    """Five couples of one shape planned at START; loops on a shared manual clock."""

    def __init__(self, redis: aioredis.Redis, redis_url: str, prefix: str, **overrides: Any):
        self.redis = redis
        self.settings: SchedulerSettings = scheduler_settings(redis_url, prefix, **overrides)
        self.store = ScheduleStore(redis, self.settings.keys, due_maxlen=100_000)
        self.clock = ManualClock(START)
        self.ingest = PreferenceIngest(self.store, self.clock, self.settings)

    async def plan(self) -> int:
        """Plan every couple; returns their first date night's instant (ms), which they share
        (a cron rule: spread rules are seeded per schedule, and fire as usual)."""
        for couple in COUPLES:
            await self.ingest.apply(parse_preference(preferences(couple, occurred_at=START)))
        instant = await self.redis.zscore(self.settings.keys.timers(0), "c0/d/both")
        assert instant is not None
        # What is due before (other kinds) fires now and is forgotten: these tests are about
        # the date night.
        self.at(int(instant) - 1000)
        while await self.loop(lookahead_seconds=0).tick(0):
            pass
        await self.redis.delete(self.settings.keys.due(0))
        return int(instant)

    def loop(self, **overrides: Any) -> TimerLoop:
        return TimerLoop(self.store, self.clock, self.settings.model_copy(update=overrides))

    def at(self, ms: int) -> None:
        self.clock.set(from_ms(ms))

    async def prepare(self, instant: int, *loops: TimerLoop) -> int:
        """A second before `instant`, each loop looks ahead; returns what the first holds."""
        self.at(instant - 1000)
        counts = [await loop.look_ahead(0) for loop in loops]
        return counts[0]

    async def occurrences_once(self) -> list[str]:
        """The occurrence ids on the due stream, each published once."""
        ids = [d.data.occurrence_id for d in await self.dues()]
        assert len(ids) == len(set(ids))
        return ids

    async def dues(self) -> list[NudgeDue]:
        return await read_events(self.redis, self.settings.keys.due(0), parse_due)

    async def due_at(self, instant: int) -> set[str]:
        """The timers due at `instant`."""
        rows = await self.redis.zrangebyscore(self.settings.keys.timers(0), instant, instant)
        return {cast("bytes", m).decode() for m in rows}


async def _world(redis: aioredis.Redis, redis_url: str, prefix: str, **kw: Any) -> World:
    return World(redis, redis_url, prefix, **kw)


class TestPrepared:
    async def test_nothing_before_the_instant_then_what_the_normal_path_publishes(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Prepared a second early, sent at the instant: the same NudgeDue bytes as `tick`
        publishes at that moment on a twin world without lookahead, occurred_at included."""
        world = await _world(redis, redis_url, key_prefix)
        twin = await _world(redis, redis_url, key_prefix + "t")  # keys removed at the end
        instant = await world.plan()
        assert await twin.plan() == instant
        due = await world.due_at(instant)
        assert len(due) == len(COUPLES)

        loop = world.loop()
        world.at(instant - 1000)
        assert await loop.look_ahead(0) == len(due)
        assert await loop.tick(0) == 0
        world.at(instant - 1)
        assert await loop.fire_ahead(0) == 0  # not yet: nothing is sent before its instant
        assert await world.dues() == []
        assert await world.due_at(instant) == due

        world.at(instant + 250)
        twin.at(instant + 250)
        assert await loop.fire_ahead(0) == len(due)
        assert await loop.tick(0) == 0  # nothing left for the normal path
        assert await twin.loop(lookahead_seconds=0).tick(0) == len(due)
        ours, theirs = await world.dues(), await twin.dues()
        assert sorted(d.model_dump_json() for d in ours) == sorted(
            d.model_dump_json() for d in theirs
        )
        assert {d.data.schedule_id for d in ours} == due
        assert all(d.occurred_at == from_ms(instant + 250) for d in ours)
        assert loop.fired == len(due)
        assert await world.due_at(instant) == set()  # re-armed
        twins = [k async for k in redis.scan_iter(match=f"{key_prefix}t:*", count=1000)]
        await redis.delete(*twins)

    async def test_the_debug_line_of_a_prepared_fire_names_what_it_published(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """As `tick` logs a fire: the published NudgeDue's event and occurrence ids."""
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        loop = world.loop()
        await world.prepare(instant, loop)
        world.at(instant + 10)
        with structlog.testing.capture_logs() as logs:
            assert await loop.fire_ahead(0) == len(COUPLES)
        lines = {
            (x["event_id"], x["occurrence_id"]) for x in logs if x["event"] == "nudge_due_published"
        }
        dues = {(str(d.event_id), d.data.occurrence_id) for d in await world.dues()}
        assert lines == dues
        assert len(dues) == len(COUPLES)

    async def test_fire_refuses_a_step_whose_instant_is_still_ahead(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """lua.FIRE itself publishes nothing for a score after `now`: the step is left armed."""
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        sid, score, state = (await world.store.ahead_records(0, instant - 1, instant, 1)).rows[0]
        step = Fire(sid, score, score + 60_000, state, None, b'{"early":1}')
        assert await world.store.fire(0, [step], instant - 1) == Fired(set(), {sid})
        assert await world.dues() == []
        assert await world.redis.zscore(world.settings.keys.timers(0), sid) == score

    async def test_a_revision_between_prepare_and_fire_publishes_the_new_one(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The prepared step is stale (same timer score, new record): `tick` publishes the new
        revision instead, once."""
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        loop = world.loop()
        prepared = await world.prepare(instant, loop)
        revised = preferences("c0", revision=2, occurred_at=START + timedelta(seconds=1))
        assert await world.ingest.apply(parse_preference(revised)) == "applied"
        theirs = {s for s in await world.due_at(instant) if s.startswith("c0/")}
        assert theirs  # re-planned at the same instant: the timers kept their scores

        world.at(instant + 10)
        assert await loop.fire_ahead(0) == prepared
        ahead_dues = await world.dues()
        assert all(d.data.couple_id != "c0" for d in ahead_dues)  # nothing of the old revision
        assert await loop.tick(0) == len(theirs)
        dues = await world.dues()
        mine = [d for d in dues if d.data.couple_id == "c0"]
        assert mine
        assert all(d.data.revision == 2 for d in mine)
        assert len(await world.occurrences_once()) == prepared

    async def test_an_erasure_between_prepare_and_fire_publishes_nothing_for_the_couple(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        loop = world.loop()
        prepared = await world.prepare(instant, loop)
        erase = envelope("couple.erased.v1", {"couple_id": "c1"}, START + timedelta(seconds=1))
        assert await world.ingest.apply(parse_preference(erase)) == "erased"

        world.at(instant + 10)
        await loop.fire_ahead(0)
        await loop.tick(0)
        dues = await world.dues()
        assert dues
        assert all(d.data.couple_id != "c1" for d in dues)
        assert len(dues) == prepared - prepared // len(COUPLES) == loop.fired

    async def test_a_timer_fired_by_another_replica_is_not_fired_again(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Two replicas prepared the same steps; one without lookahead fires first."""
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        ahead, other = world.loop(), world.loop()
        prepared = await world.prepare(instant, ahead, other)
        assert len(other.ahead[0]) == prepared
        world.at(instant + 10)
        assert await world.loop(lookahead_seconds=0).tick(0) == prepared
        await ahead.fire_ahead(0)
        await other.fire_ahead(0)
        assert ahead.fired == other.fired == 0
        assert len(await world.occurrences_once()) == prepared

    async def test_two_replicas_sending_the_same_steps_publish_each_once(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        loops = [world.loop(), world.loop()]
        prepared = await world.prepare(instant, *loops)
        world.at(instant + 10)
        for loop in loops:
            await loop.fire_ahead(0)
        assert len(await world.occurrences_once()) == sum(loop.fired for loop in loops) == prepared

    async def test_replicas_sending_at_once_send_each_chunk_once(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, monkeypatch: Any
    ) -> None:
        """They count the instant's chunks off one counter: none goes out twice, and every
        one goes out prepared (nothing is left to the normal path)."""
        monkeypatch.setattr(timer_loop, "_CHUNK", 1)  # five chunks of one step
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        loops = [world.loop(), world.loop(), world.loop()]
        prepared = await world.prepare(instant, *loops)
        world.at(instant + 10)
        sent = await asyncio.gather(*(loop.fire_ahead(0) for loop in loops))
        assert sum(sent) == sum(loop.fired_ahead for loop in loops) == prepared == len(COUPLES)
        assert len(await world.occurrences_once()) == prepared

    async def test_a_chunk_claimed_by_a_replica_that_died_fires_by_the_normal_path(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, monkeypatch: Any
    ) -> None:
        monkeypatch.setattr(timer_loop, "_CHUNK", 2)
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        loop = world.loop()
        prepared = await world.prepare(instant, loop)
        world.at(instant + 10)
        assert await world.store.claim_chunk(0, instant) == 0  # then that replica is gone
        counter = world.settings.keys.ahead_claims(0, instant)
        assert 0 < await redis.pttl(counter) <= CLAIM_TTL_MS  # the counter does not linger
        assert await loop.fire_ahead(0) == prepared - 2  # chunks 1 and 2
        assert await loop.tick(0) == 2
        assert len(await world.occurrences_once()) == prepared == loop.fired

    async def test_a_crash_between_prepare_and_fire_loses_nothing(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Preparing writes nothing: a new process after the instant fires every timer."""
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        due = await world.due_at(instant)
        world.at(instant - 1000)
        assert await world.loop().look_ahead(0) == len(due)  # then the process is gone
        assert await world.due_at(instant) == due
        world.at(instant + 10)
        restarted = world.loop()
        assert await restarted.fire_ahead(0) == 0
        assert await restarted.tick(0) == len(due)
        assert {d.data.schedule_id for d in await world.dues()} == due


class TestBounds:
    async def test_at_most_lookahead_max_are_prepared_and_the_rest_fire_as_usual(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        world = await _world(redis, redis_url, key_prefix, batch_size=2)
        instant = await world.plan()
        due = await world.due_at(instant)
        loop = world.loop(lookahead_max=3)
        world.at(instant - 1000)
        assert await loop.look_ahead(0) == 3  # in pages of batch_size, up to the cap
        world.at(instant + 10)
        assert await loop.fire_ahead(0) == 3
        while await loop.tick(0):
            pass
        assert {d.data.schedule_id for d in await world.dues()} == due
        assert loop.fired == len(due)

    async def test_only_the_window_is_read(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        world.at(instant - 3000)
        assert await world.loop(lookahead_seconds=2).look_ahead(0) == 0
        assert await world.loop(lookahead_seconds=0).look_ahead(0) == 0  # disabled

    async def test_steps_no_longer_fresh_are_left_to_the_normal_path(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A loop stalled past FRESH_MS sends nothing prepared; `tick` decides afresh."""
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        due = await world.due_at(instant)
        loop = world.loop()
        world.at(instant - 1000)
        await loop.look_ahead(0)
        world.at(instant + FRESH_MS)
        assert await loop.fire_ahead(0) == 0
        assert await loop.tick(0) == len(due)
        assert len(await world.dues()) == len(due) == loop.fired


class TestLead:
    """A burst too big to prepare within the window is prepared earlier (lookahead.lead_ms)."""

    async def test_the_count_at_the_head_decides_when_preparing_starts(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Three seconds before the couples' instant, with a 1 s window: at the prior cost per
        step nothing is prepared yet (five steps ask for no more than the window); at a cost
        that makes five take longer than three seconds, all five are prepared now, and sent at
        the instant, once each. The head is counted once, however often the loop passes."""
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        loop = world.loop(lookahead_seconds=1)
        counts: list[int] = []
        count_due = world.store.count_due

        async def counted(shard: int, from_ms: int, to_ms: int) -> int:
            counts.append(await count_due(shard, from_ms, to_ms))
            return counts[-1]

        loop.store.count_due = counted  # type: ignore[method-assign]
        world.at(instant - 3000)
        head = await world.store.next_due_ms(0)
        assert head == instant
        await loop._look_ahead_near([0], [head])
        assert len(loop.ahead.get(0, ())) == 0
        assert counts == [len(COUPLES)]

        loop.prepare_cost.per_step = 0.5  # 5 steps x 0.5 s x 1.5: a lead of 3.75 s
        await loop._look_ahead_near([0], [head])
        await loop._look_ahead_near([0], [head])
        assert len(loop.ahead[0]) == len(COUPLES)
        assert counts == [len(COUPLES)]  # the same head: not counted again
        assert await world.dues() == []  # prepared, nothing sent

        world.at(instant + 250)
        assert await loop.fire_ahead(0) == len(COUPLES)
        assert await loop.tick(0) == 0
        assert len(await world.occurrences_once()) == len(COUPLES) == loop.fired_ahead

    async def test_a_head_beyond_any_lead_is_not_counted(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Further away than `lookahead_max` steps could take to prepare: no ZCOUNT at all."""
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        loop = world.loop(lookahead_seconds=1, lookahead_max=10)
        loop.store.count_due = _refused  # type: ignore[method-assign]
        world.at(instant - 60_000)  # 10 steps x 40 us x 1.5: the lead is the window's 1 s
        await loop._look_ahead_near([0], [instant])
        assert len(loop.ahead.get(0, ())) == 0


async def _refused(shard: int, from_ms: int, to_ms: int) -> int:
    raise AssertionError("counted")


class TestNormalPath:
    async def test_a_record_changed_after_due_is_not_published_from_the_old_read(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """FIRE compares the record and couple fields with what DUE read, on every path."""
        world = await _world(redis, redis_url, key_prefix)
        instant = await world.plan()
        (sid, score, state), *_ = await world.store.due_records(0, instant, 1)
        await world.ingest.apply(
            parse_preference(preferences(sid.split("/")[0], revision=2, occurred_at=START))
        )
        step = Fire(sid, score, score + 60_000, state, None, b'{"old":1}')
        assert await world.store.fire(0, [step], epoch_ms(START) + 2**40) == Fired(set(), {sid})
        assert await world.dues() == []
