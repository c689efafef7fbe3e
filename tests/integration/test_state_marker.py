"""The state marker tells a lost Redis state from a new one, and exactly one process says so.

Against the real server: the marker hash, the OBSERVE script and the notice it XADDs on the
outcomes stream, as several processes (StateMarker objects with their own names) see them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import Keys
from couples_nudge.common.state_marker import StateEpoch, StateMarker
from couples_nudge.common.streams import read_events
from couples_nudge_schemas import ServiceStateLost, parse_outcomes_entry

BEGAN = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def marker(redis: aioredis.Redis, prefix: str, name: str, clock: ManualClock) -> StateMarker:
    return StateMarker(
        redis, Keys(prefix), name=name, producer="nudge-tests", outcomes_maxlen=1000, clock=clock
    )


async def notices(redis: aioredis.Redis, prefix: str) -> list[ServiceStateLost]:
    events = await read_events(redis, Keys(prefix).outcomes, parse_outcomes_entry)
    return [e for e in events if isinstance(e, ServiceStateLost)]


async def started(redis: aioredis.Redis, prefix: str, clock: ManualClock) -> StateEpoch:
    seen = await marker(redis, prefix, "first", clock).observe(None)
    assert seen.verdict == "started"
    return seen.epoch


class TestEpochs:
    async def test_first_process_starts_an_epoch_the_next_ones_join_it(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """At start-up, no marker means a new epoch; a marker is adopted; nothing is reported."""
        clock = ManualClock(BEGAN)
        epoch = await started(redis, key_prefix, clock)
        assert epoch.began_at == BEGAN
        assert epoch.lost_at is None
        clock.advance(timedelta(hours=1))
        other = await marker(redis, key_prefix, "second", clock).observe(None)
        assert (other.verdict, other.epoch) == ("adopted", epoch)
        again = await marker(redis, key_prefix, "first", clock).observe(epoch)
        assert (again.verdict, again.lost) == ("same", False)
        assert await notices(redis, key_prefix) == []

    async def test_a_restart_on_a_redis_that_kept_its_state_is_no_loss(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A process restarted (or upgraded) against a persistent Redis adopts the epoch."""
        clock = ManualClock(BEGAN)
        epoch = await started(redis, key_prefix, clock)
        restarted = await marker(redis, key_prefix, "first", clock).observe(None)
        assert restarted.verdict == "adopted"
        assert restarted.epoch == epoch
        assert await notices(redis, key_prefix) == []


class TestLoss:
    async def test_a_vanished_marker_is_reported_once_among_many_processes(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Five processes notice together: one reports (one notice), four see it."""
        clock = ManualClock(BEGAN)
        epoch = await started(redis, key_prefix, clock)
        await redis.delete(Keys(key_prefix).state)  # Redis came back empty
        clock.advance(timedelta(days=2))
        seen = await asyncio.gather(
            *(marker(redis, key_prefix, f"p{i}", clock).observe(epoch) for i in range(5))
        )
        assert sorted(s.verdict for s in seen) == ["reported", "seen", "seen", "seen", "seen"]
        assert all(s.lost for s in seen)
        assert len({s.epoch.epoch for s in seen}) == 1
        assert seen[0].epoch.epoch != epoch.epoch
        [notice] = await notices(redis, key_prefix)
        reporter = next(s for s in seen if s.verdict == "reported")
        assert notice.data.detected_by == reporter.epoch.detected_by
        assert notice.data.detected_at == clock.now()
        assert notice.data.lost_epoch_began_at == BEGAN
        assert reporter.epoch.lost_epoch_began_at == BEGAN

    async def test_an_epoch_begun_on_the_empty_redis_is_reported_by_who_knew_the_old(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A process restarted after the loss starts an epoch unaware; a survivor reports it."""
        clock = ManualClock(BEGAN)
        epoch = await started(redis, key_prefix, clock)
        await redis.delete(Keys(key_prefix).state)
        clock.advance(timedelta(minutes=5))
        fresh = await marker(redis, key_prefix, "restarted", clock).observe(None)
        assert fresh.verdict == "started"
        assert await notices(redis, key_prefix) == []
        clock.advance(timedelta(seconds=2))
        survivor = await marker(redis, key_prefix, "survivor", clock).observe(epoch)
        assert survivor.verdict == "reported"
        assert survivor.epoch.epoch == fresh.epoch.epoch  # the fresh epoch, now marked lost
        assert survivor.epoch.lost_at == clock.now()
        late = await marker(redis, key_prefix, "late", clock).observe(epoch)
        assert late.verdict == "seen"
        assert len(await notices(redis, key_prefix)) == 1

    async def test_the_notice_id_names_the_lost_epoch(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Two losses give two notices with different ids; the same loss, the same id."""
        clock = ManualClock(BEGAN)
        first = await started(redis, key_prefix, clock)
        keys = Keys(key_prefix)
        await redis.delete(keys.state)
        second = (await marker(redis, key_prefix, "a", clock).observe(first)).epoch
        await redis.delete(keys.state)
        await marker(redis, key_prefix, "a", clock).observe(second)
        ids = [n.event_id for n in await notices(redis, key_prefix)]
        assert len(ids) == len(set(ids)) == 2


class TestShardCopies:
    """`per_shard` (a cluster): each shard's slot holds a copy of the epoch; one gone is a
    loss of that shard's primary, the marker being elsewhere and intact."""

    async def test_a_shard_copy_gone_is_reported_once_and_then_rewritten(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        clock = ManualClock(BEGAN)
        keys = Keys(key_prefix, shards=4)

        def shard_marker(name: str) -> StateMarker:
            return StateMarker(
                redis, keys, name=name, producer="nudge-tests", outcomes_maxlen=1000,
                clock=clock, per_shard=True,
            )  # fmt: skip

        epoch = (await shard_marker("first").observe(None)).epoch
        copies = [keys.shard_state(s) for s in range(4)]
        assert await redis.mget(copies) == [epoch.epoch.encode()] * 4
        assert (await shard_marker("first").observe(epoch)).verdict == "same"
        await redis.delete(keys.shard_state(2))  # shard 2's primary came back empty
        clock.advance(timedelta(minutes=1))
        seen = await asyncio.gather(*(shard_marker(f"p{i}").observe(epoch) for i in range(5)))
        assert sorted(s.verdict for s in seen) == ["reported", "seen", "seen", "seen", "seen"]
        [notice] = await notices(redis, key_prefix)
        assert notice.data.lost_epoch_began_at == BEGAN
        new = seen[0].epoch
        assert new.epoch != epoch.epoch
        assert new.lost_at == clock.now()
        assert await redis.mget(copies) == [new.epoch.encode()] * 4
        assert (await shard_marker("p0").observe(new)).verdict == "same"
        assert len(await notices(redis, key_prefix)) == 1
