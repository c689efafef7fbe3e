"""Shard leases against a real server: one firing replica per shard; one firer for every shard
(`one`) or fair shares (`fair`); takeover within the bound."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from couples_nudge.common.clock import ManualClock, epoch_ms, from_ms
from couples_nudge.common.streams import read_events
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.leases import (
    LeasePolicy,
    ShardLeases,
    fair_share,
    lease_ms,
    lease_policy,
)
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import parse_due, parse_preference
from tests.support.events import preferences
from tests.support.leases import settled_shares
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually

START = datetime(2026, 12, 1, tzinfo=UTC)


def _leases(
    redis: aioredis.Redis,
    redis_url: str,
    key_prefix: str,
    shards: int,
    ttl_ms: int = 2_000,
    policy: LeasePolicy = LeasePolicy.FAIR,
    first: int = 0,
) -> ShardLeases:
    """A replica's leases; `first`: where its round order starts (as timer_loop.shard_round)."""
    settings = scheduler_settings(redis_url, key_prefix, shards=shards)
    store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
    order = [(first + i) % shards for i in range(shards)]
    return ShardLeases(store, order, ttl_ms, policy)


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

    async def test_a_replica_killed_with_its_clock_an_hour_ahead_is_not_counted_for_an_hour(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Hosts' clocks differ: a replica whose clock is an hour ahead takes its share and is
        killed (no release). Once its leases lapse the survivor holds every shard (it held
        half for the hour: the dead replica's heartbeat, dated by its own clock, still counted
        it as live, and four shards fired nothing)."""
        ahead, survivor = (_leases(redis, redis_url, key_prefix, 8, ttl_ms=300) for _ in range(2))
        with pytest.MonkeyPatch.context() as host:  # this replica's host clock: an hour ahead
            real = time.time
            host.setattr(time, "time", lambda: real() + 3600)
            await ahead.refresh()
        for _ in range(5):  # refreshing every third of a lease, while the other's lapse
            await survivor.refresh()
            await asyncio.sleep(0.1)
        assert await survivor.refresh() == set(range(8))
        await survivor.release()
        await redis.delete(ahead.store.keys.schedulers)


class TestLeasePolicy:
    def test_auto_is_one_firer_on_a_server_and_fair_shares_on_a_cluster(self) -> None:
        """One core for every shard: one firer; a core per primary: fair shares."""
        assert lease_policy("auto", cluster=False) is LeasePolicy.ONE
        assert lease_policy("auto", cluster=True) is LeasePolicy.FAIR
        assert lease_policy("fair", cluster=False) is LeasePolicy.FAIR
        assert lease_policy("one", cluster=True) is LeasePolicy.ONE

    def test_the_setting_is_read_from_the_environment_and_checked(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """NUDGE_LEASE_POLICY: auto by default, one or fair; anything else is refused."""
        monkeypatch.delenv("NUDGE_LEASE_POLICY", raising=False)
        assert SchedulerSettings().lease_policy == "auto"
        monkeypatch.setenv("NUDGE_LEASE_POLICY", "fair")
        assert SchedulerSettings().lease_policy == "fair"
        monkeypatch.setenv("NUDGE_LEASE_POLICY", "some")
        with pytest.raises(ValidationError):
            SchedulerSettings()


ONE = LeasePolicy.ONE


async def _held_all(leases: ShardLeases, shards: int, within: float) -> float:
    """Seconds until `leases` holds every shard (failing after `within`)."""
    started = time.monotonic()
    await eventually(
        lambda: _now(leases.held), until=lambda h: h == set(range(shards)), within=within
    )
    return time.monotonic() - started


async def _now(held: set[int]) -> set[int]:
    return set(held)


class TestOneFirer:
    async def test_replicas_started_together_leave_every_shard_to_one(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Three replicas, each starting its round on a different shard, run `keep` at once:
        one holds all eight shards, the others none, and it stays so."""
        replicas = [
            _leases(redis, redis_url, key_prefix, 8, ttl_ms=600, policy=ONE, first=3 * i)
            for i in range(3)
        ]
        stop = asyncio.Event()
        keepers = [asyncio.create_task(r.keep(stop)) for r in replicas]
        try:
            for _ in range(5):  # a refresh every 0.2 s: a few rounds of renewals
                await asyncio.sleep(0.15)
                assert sorted(len(r.held) for r in replicas) in ([0, 0, 0], [0, 0, 8])
            assert sorted(len(r.held) for r in replicas) == [0, 0, 8]
        finally:
            stop.set()
            await asyncio.gather(*keepers)
        assert await redis.exists(*(replicas[0].store.keys.fire_lease(s) for s in range(8))) == 0

    async def test_a_replica_arriving_never_displaces_the_firer(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The first holds every shard; the second, whatever its round order, stands by."""
        first = _leases(redis, redis_url, key_prefix, 8, policy=ONE, first=5)
        second = _leases(redis, redis_url, key_prefix, 8, policy=ONE)
        assert await first.refresh() == set(range(8))
        for _ in range(2):
            assert await second.refresh() == set()
            assert await first.refresh() == set(range(8))
        await first.release()
        await second.release()

    async def test_a_killed_firer_is_replaced_on_every_shard_within_the_bound(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The firer renews no more (killed: no release): the standby holds nothing while the
        leases last, then all eight within ttl + ttl / 3 of the last renewal."""
        ttl_ms = 600
        firer = _leases(redis, redis_url, key_prefix, 8, ttl_ms=ttl_ms, policy=ONE)
        standby = _leases(redis, redis_url, key_prefix, 8, ttl_ms=ttl_ms, policy=ONE, first=4)
        stop = asyncio.Event()
        assert await firer.refresh() == set(range(8))
        renewed = time.monotonic()
        keeper = asyncio.create_task(standby.keep(stop))
        try:
            await asyncio.sleep(ttl_ms / 1000 * 0.7)
            assert standby.held == set()
            await _held_all(standby, 8, within=5)
            elapsed = time.monotonic() - renewed
            assert ttl_ms / 1000 * 0.9 < elapsed < ttl_ms / 1000 * 4 / 3 + 0.3  # + load slack
        finally:
            stop.set()
            await keeper

    async def test_a_stopping_firer_hands_every_shard_over_within_a_third(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A rolling restart: the old replica stops (gives its leases up); the standby, which
        has been refreshing all along, holds all eight within ttl / 3."""
        ttl_ms = 1_500
        old = _leases(redis, redis_url, key_prefix, 8, ttl_ms=ttl_ms, policy=ONE)
        new = _leases(redis, redis_url, key_prefix, 8, ttl_ms=ttl_ms, policy=ONE, first=2)
        assert await old.refresh() == set(range(8))
        stop = asyncio.Event()
        keeper = asyncio.create_task(new.keep(stop))
        try:
            await asyncio.sleep(0.1)
            assert new.held == set()
            await old.release()
            assert await _held_all(new, 8, within=5) < ttl_ms / 1000 / 3 + 0.3
        finally:
            stop.set()
            await keeper

    async def test_a_stalled_firer_back_gives_everything_up(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Stalled past its leases, the firer is replaced; back, its next refresh finds the
        anchor gone and it holds (and gives back) nothing: the new firer keeps every shard."""
        first = _leases(redis, redis_url, key_prefix, 4, ttl_ms=300, policy=ONE)
        second = _leases(redis, redis_url, key_prefix, 4, ttl_ms=300, policy=ONE, first=2)
        assert await first.refresh() == set(range(4))
        assert await second.refresh() == set()
        await asyncio.sleep(0.4)
        assert await second.refresh() == set(range(4))
        assert await first.refresh() == set()
        assert await second.refresh() == set(range(4))
        await first.release()
        await second.release()

    async def test_the_new_firer_takes_what_the_last_still_holds_as_soon_as_it_lapses(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The anchor is won while other shards' leases still run (an earlier holder's, a
        little longer): the winner retries every thirtieth of a lease, not every third."""
        ttl_ms, ghost_ms = 6_000, 1_500  # the first refresh comes at ttl / 6: 1 s
        leases = _leases(redis, redis_url, key_prefix, 4, ttl_ms=ttl_ms, policy=ONE)
        for shard in (1, 2, 3):
            await redis.set(leases.store.keys.fire_lease(shard), "gone", px=ghost_ms)
        stop = asyncio.Event()
        started = time.monotonic()
        keeper = asyncio.create_task(leases.keep(stop))
        try:
            await eventually(lambda: _now(leases.held), until=lambda h: 0 in h, within=5)
            assert leases.short
            await _held_all(leases, 4, within=10)
            elapsed = time.monotonic() - started
            assert elapsed < (ghost_ms + ttl_ms / 30) / 1000 + 0.3  # + load slack
        finally:
            stop.set()
            await keeper
        assert not leases.short


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

    @pytest.mark.parametrize(
        ("cluster", "shares"), [(False, [0, 8]), (True, [4, 4])], ids=["server", "cluster"]
    )
    async def test_auto_gives_one_loop_every_shard_on_a_server_and_splits_on_a_cluster(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        cluster: bool,
        shares: list[int],
    ) -> None:
        """Two loops started together, 8 shards, NUDGE_LEASE_POLICY=auto: on one server one
        fires all and the other stands by; told it runs on a cluster, they split them
        (the flag only picks the policy here: the store's client is the test server's)."""
        settings = scheduler_settings(
            redis_url, key_prefix, shards=8, redis_cluster=cluster, max_poll_seconds=0.05
        )
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        assert await settled_shares(store, settings, START, shares, within=10) == shares
