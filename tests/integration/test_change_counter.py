"""The shard's change counter between a lookahead and its fire, on a real server (lua.py).

Every writer of the couple hash, run between the lookahead read and the fire, moves the
counter, and FIRE then checks every prepared state again: a record changed behind the
counter's back (a raw write standing for a writer that forgot its bump) is then caught. The
control case shows why the bump matters: with the counter unmoved FIRE takes the states as
read, and the same raw write goes unseen.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from couples_nudge_schemas import parse_preference
from tests.integration.test_lookahead import COUPLES, START, World
from tests.support.events import envelope, preferences

EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events"
AT = START + timedelta(seconds=1)


def _event(type_: str, **overrides: Any) -> bytes:
    """The example event of `type_` for couple c0 (partners maya and sam), occurred at AT."""
    data = json.loads((EVENTS / f"{type_}.json").read_text())["data"]
    data.update(couple_id="c0", **overrides)
    return envelope(type_, data, AT)


# Every event the scheduler applies to a couple hash, each through its own script.
WRITERS = {
    "preferences.set (APPLY_PLAN)": lambda: preferences("c0", revision=2, occurred_at=AT),
    "couple.erased (ERASE)": lambda: envelope("couple.erased.v1", {"couple_id": "c0"}, AT),
    "paused (SET_IF_NEWER)": lambda: _event("preferences.paused.v1"),
    "resumed (SET_IF_NEWER)": lambda: _event("preferences.resumed.v1"),
    "unsubscribed (SET_IF_NEWER)": lambda: _event("preferences.unsubscribed.v1"),
    "snoozed (SET_IF_NEWER)": lambda: _event("preferences.snoozed.v1"),
    "complained (SET_IF_NEWER)": lambda: _event("channel.complained.v1"),
    "hard bounce (SET_IF_NEWER)": lambda: _event("channel.bounced.v1"),
    "soft bounce (SOFT_BOUNCE)": lambda: _event(
        "channel.bounced.v1", bounce="soft", status="4.2.2"
    ),
    "resubscribed (RESUBSCRIBE)": lambda: _event("preferences.resubscribed.v1"),
    "not this week (KEEP_TURN)": lambda: _event(
        "nudge.feedback.v1", occurrence_id="c0/d/both@1796155200", sequence=0
    ),
}


async def _prepared(redis: aioredis.Redis, redis_url: str, prefix: str) -> tuple[World, int]:
    """Five couples planned, c0's date night having published once (so that "not this week"
    on sequence 0 changes its record), and their date nights prepared a second ahead."""
    world = World(redis, redis_url, prefix)
    instant = await world.plan()
    couple = world.settings.keys.couple("c0")
    record = cast("bytes | None", await redis.hget(couple, "d/both"))
    assert record is not None
    assert record.startswith(b"0|")
    await redis.hset(couple, "d/both", b"1" + record[1:])
    return world, instant


async def _unbumped_change(world: World) -> None:
    """c1's date-night record changed without moving the counter: only a per-fire check of
    the state sees it (as a writer that forgot its bump would leave things)."""
    couple = world.settings.keys.couple("c1")
    record = cast("bytes | None", await world.redis.hget(couple, "d/both"))
    assert record is not None
    _, rest = record.split(b"|", 1)
    await world.redis.hset(couple, "d/both", b"5|" + rest)


async def _counter(world: World) -> bytes | None:
    return cast("bytes | None", await world.redis.get(world.settings.keys.changes(0)))


class TestEveryWriterMovesTheCounter:
    @pytest.mark.parametrize("writer", list(WRITERS))
    async def test_a_writer_between_lookahead_and_fire_makes_fire_check_every_state(
        self, writer: str, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The writer moves the counter; the prepared fires then compare each state, so c1's
        changed record is not published from the old read (`tick` decides it afresh)."""
        world, instant = await _prepared(redis, redis_url, key_prefix)
        loop = world.loop()
        assert await world.prepare(instant, loop) > 0
        before = await _counter(world)
        assert before is not None
        assert await world.ingest.apply(parse_preference(WRITERS[writer]())) not in (
            "unknown_couple",
            "stale",
        )
        assert await _counter(world) != before
        await _unbumped_change(world)

        world.at(instant + 10)
        await loop.fire_ahead(0)
        assert all(d.data.couple_id != "c1" for d in await world.dues())
        await loop.tick(0)
        mine = [d for d in await world.dues() if d.data.couple_id == "c1"]
        assert [d.data.sequence for d in mine] == [5]  # from the record as it is now
        await world.occurrences_once()

    async def test_without_a_bump_fire_takes_the_states_as_read(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The control: nothing moved the counter, so FIRE does not read c1's record again and
        publishes what was prepared. This is why every writer must bump."""
        world, instant = await _prepared(redis, redis_url, key_prefix)
        loop = world.loop()
        prepared = await world.prepare(instant, loop)
        await _unbumped_change(world)

        world.at(instant + 10)
        assert await loop.fire_ahead(0) == prepared
        assert loop.fired_ahead == prepared
        mine = [d for d in await world.dues() if d.data.couple_id == "c1"]
        assert mine
        assert all(d.data.sequence == 0 for d in mine)

    async def test_a_new_couple_between_lookahead_and_fire_changes_no_prepared_state(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A couple created between the lookahead and the fire does not move the counter
        (lua.py: no state of it can have been read): the prepared fires go as prepared, and
        its own date night at the same instant, never read ahead, goes through `tick`."""
        world, instant = await _prepared(redis, redis_url, key_prefix)
        loop = world.loop()
        prepared = await world.prepare(instant, loop)
        before = await _counter(world)
        new = preferences("c9", occurred_at=AT)
        assert await world.ingest.apply(parse_preference(new)) == "applied"
        assert await _counter(world) == before
        assert "c9/d/both" in await world.due_at(instant)

        world.at(instant + 10)
        assert await loop.fire_ahead(0) == prepared
        await loop.tick(0)
        couples = sorted(d.data.couple_id for d in await world.dues())
        assert couples == sorted([*COUPLES, "c9"])
        await world.occurrences_once()

    async def test_a_timer_read_before_its_couple_existed_is_checked_again(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A timer the lookahead read without a couple hash (no state) is not prepared, so
        nothing of it is taken as read when its couple is then created without a bump: the
        prepared fires go as prepared, and `tick` publishes it once, from the new record."""
        world, instant = await _prepared(redis, redis_url, key_prefix)
        timers = world.settings.keys.timers(0)
        await redis.zadd(timers, {"c9/d/both": instant})  # a timer without its couple
        loop = world.loop()
        prepared = await world.prepare(instant, loop)
        before = await _counter(world)
        new = preferences("c9", occurred_at=AT)
        assert await world.ingest.apply(parse_preference(new)) == "applied"
        assert await _counter(world) == before

        world.at(instant + 10)
        assert await loop.fire_ahead(0) == prepared
        assert all(d.data.couple_id != "c9" for d in await world.dues())
        await loop.tick(0)
        mine = [d for d in await world.dues() if d.data.couple_id == "c9"]
        assert [d.data.sequence for d in mine] == [0]
        await world.occurrences_once()


class TestTheCounter:
    async def test_a_counter_lost_comes_back_past_every_value_read_before(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The counter is the server's clock in microseconds: lost with the state (or on a
        replica that missed the last bumps), it comes back above any value read before."""
        world = World(redis, redis_url, key_prefix)
        await world.plan()
        counted = await _counter(world)
        assert counted is not None
        assert int(counted) > 10**15
        await redis.delete(world.settings.keys.changes(0))
        revised = preferences("c0", revision=2, occurred_at=AT)
        assert await world.ingest.apply(parse_preference(revised)) == "applied"
        again = await _counter(world)
        assert again is not None
        assert int(again) > int(counted)

    async def test_it_grows_with_every_bump_when_ahead_of_the_clock(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A value ahead of the clock (a clock stepped back) still grows by one a bump."""
        world = World(redis, redis_url, key_prefix)
        await world.plan()
        ahead = 8 * 10**15  # past any clock reading this test sees (and exact in a double)
        await redis.set(world.settings.keys.changes(0), ahead)
        revised = preferences("c0", revision=2, occurred_at=AT)
        assert await world.ingest.apply(parse_preference(revised)) == "applied"
        assert await _counter(world) == str(ahead + 1).encode()

    async def test_a_new_couple_does_not_move_it_and_its_next_revision_does(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Creating a couple leaves the counter alone (lua.py); revising it moves it."""
        world = World(redis, redis_url, key_prefix)
        await world.plan()
        counted = await _counter(world)
        assert counted is not None
        new = preferences("c9", occurred_at=AT)
        assert await world.ingest.apply(parse_preference(new)) == "applied"
        assert await _counter(world) == counted
        revised = preferences("c9", revision=2, occurred_at=AT)
        assert await world.ingest.apply(parse_preference(revised)) == "applied"
        assert await _counter(world) != counted

    async def test_a_stale_or_erased_apply_does_not_move_it(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Writers that write nothing leave the counter alone (no needless per-fire checks)."""
        world = World(redis, redis_url, key_prefix)
        await world.plan()
        counted = await _counter(world)
        old = preferences("c0", revision=1, occurred_at=AT)
        assert await world.ingest.apply(parse_preference(old)) == "stale"
        assert await _counter(world) == counted
