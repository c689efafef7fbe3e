"""Shard leases against a real server: one firing replica per shard, fair shares, takeover."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock, epoch_ms, from_ms
from couples_nudge.common.streams import read_events
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.leases import ShardLeases, fair_share, lease_ms
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import parse_due, parse_preference
from tests.support.events import preferences
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually

START = datetime(2026, 12, 1, tzinfo=UTC)


def _leases(
    redis: aioredis.Redis, redis_url: str, key_prefix: str, shards: int, ttl_ms: int = 2_000
) -> ShardLeases:
    settings = scheduler_settings(redis_url, key_prefix, shards=shards)
    store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
    return ShardLeases(store, list(range(shards)), ttl_ms)


class TestFairShare:
    def test_every_shard_has_a_taker_and_shares_cover_the_shards(self) -> None:
        """ceil(shards / live), never 0: one shard, two replicas: one fires it."""
        assert [fair_share(1, live) for live in (0, 1, 2, 3)] == [1, 1, 1, 1]
        assert [fair_share(8, live) for live in (1, 2, 3)] == [8, 4, 3]

    def test_a_lease_outlives_the_loops_longest_sleep(self) -> None:
        """Renewed every third of its life, and past max_poll_seconds (an idle holder)."""
        assert lease_ms(0.2) == 2_000
        assert lease_ms(10) == 30_000


class TestShardLeases:
    async def test_one_replica_holds_a_shard_the_other_stands_by(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The first takes the only shard; the second holds nothing while it is renewed."""
        first, second = (_leases(redis, redis_url, key_prefix, 1) for _ in range(2))
        assert await first.refresh() == {0}
        assert await second.refresh() == set()
        assert await first.refresh() == {0}
        assert await second.refresh() == set()
        await first.release()
        await second.release()

    async def test_a_replica_stopping_hands_its_shard_over_at_once(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """release() gives the lease up: the standby's next refresh takes it."""
        first, second = (_leases(redis, redis_url, key_prefix, 1) for _ in range(2))
        await first.refresh()
        await first.release()
        assert await second.refresh() == {0}
        await second.release()

    async def test_a_holder_that_stops_renewing_is_replaced_after_its_lease(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A holder killed (no release) loses the shard when its lease expires; the holder,
        back, learns at its next refresh that it no longer holds it."""
        first = _leases(redis, redis_url, key_prefix, 1, ttl_ms=300)
        second = _leases(redis, redis_url, key_prefix, 1, ttl_ms=300)
        await first.refresh()
        assert await second.refresh() == set()
        await asyncio.sleep(0.4)
        assert await second.refresh() == {0}
        assert await first.refresh() == set()
        await first.release()
        await second.release()

    async def test_replicas_split_the_shards_in_fair_shares(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Eight shards: one replica alone holds all; a second arrives, the first gives up
        its excess and each ends with four; none is held twice."""
        first, second = (_leases(redis, redis_url, key_prefix, 8) for _ in range(2))
        assert await first.refresh() == set(range(8))
        await second.refresh()  # counted live now; the first still holds everything
        await first.refresh()  # over its share of 4: gives up the rest
        await second.refresh()
        assert len(first.held) == len(second.held) == 4
        assert first.held.isdisjoint(second.held)
        await first.release()
        await second.release()
        assert await redis.exists(first.store.keys.schedulers) == 0


class TestTimerLoopsWithLeases:
    async def test_two_running_loops_one_fires_every_occurrence_once(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Two replicas run on one shard: the lease holder fires all, the other stands by;
        stopped, each gives its leases up."""
        settings = scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.05)
        clock = ManualClock(START)
        store = ScheduleStore(redis, settings.keys, due_maxlen=10_000)
        ingest = PreferenceIngest(store, clock, settings)
        for i in range(40):
            await ingest.apply(parse_preference(preferences(f"c{i}")))
        head = await store.next_due_ms(0)
        assert head is not None
        clock.set(from_ms(head) + timedelta(seconds=30))  # within every grace window
        due_now = await redis.zcount(settings.keys.timers(0), "-inf", epoch_ms(clock.now()))
        loops = [TimerLoop(store, clock, settings, replica=f"sched-{i}") for i in range(2)]
        stop = asyncio.Event()
        runs = [asyncio.create_task(loop.run(stop)) for loop in loops]
        try:

            async def fired() -> int:
                return sum(loop.fired for loop in loops)

            await eventually(fired, until=lambda n: n >= due_now, within=10)
        finally:
            stop.set()
            await asyncio.gather(*runs)
        ids = [
            d.data.occurrence_id for d in await read_events(redis, settings.keys.due(0), parse_due)
        ]
        assert len(ids) == len(set(ids)) == due_now > 0
        assert sorted(loop.fired for loop in loops) == [0, due_now]
        assert await redis.exists(settings.keys.fire_lease(0), settings.keys.schedulers) == 0
