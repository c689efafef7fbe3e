"""Reclaim takes over only the work of dead consumers, never what a live replica still holds."""

from __future__ import annotations

import asyncio
import json
from typing import Any, cast

import redis.asyncio as aioredis

from couples_nudge.common.keys import NOTIFIER_GROUP, Keys
from couples_nudge.common.reclaim import Reclaimer
from couples_nudge.common.streams import DATA_FIELD, ensure_group


async def _delivered(redis: aioredis.Redis, stream: str, owner: str, count: int) -> list[str]:
    """`count` entries read by consumer `owner` and not acknowledged."""
    await ensure_group(redis, stream, NOTIFIER_GROUP)
    for n in range(count):
        await redis.xadd(stream, {DATA_FIELD: json.dumps({"n": n})})
    reply: Any = await redis.xreadgroup(NOTIFIER_GROUP, owner, {stream: ">"}, count=count)
    return [eid.decode() for eid, _ in reply[0][1]]


def _reclaimer(redis: aioredis.Redis, keys: Keys, consumer: str, handled: list[str]) -> Reclaimer:
    async def handle(raw: bytes, entry: str, fields: dict[bytes, bytes]) -> None:
        handled.append(entry)

    return Reclaimer(
        redis,
        stream=keys.due(0),
        group=NOTIFIER_GROUP,
        consumer=consumer,
        handle=handle,
        dead_stream=keys.dead,
        dead_maxlen=1000,
        min_idle_ms=200,
        max_deliveries=5,
    )


class TestReclaimerHeldEntries:
    async def test_entries_a_live_replica_holds_stay_with_it(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Held entries re-claimed by their holder (refresh) are not handed to another replica."""
        keys = Keys(prefix=key_prefix)
        ids = await _delivered(redis, keys.due(0), "notifier-busy", 2)
        busy = _reclaimer(redis, keys, "notifier-busy", [])
        busy.held.update(ids)
        handled: list[str] = []
        other = _reclaimer(redis, keys, "notifier-other", handled)
        await asyncio.sleep(0.3)  # longer than min_idle_ms
        await busy.refresh()
        assert await other.sweep() == 0
        assert handled == []

    async def test_its_own_held_entries_are_not_handled_twice_after_an_outage(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Refreshes that could not reach Redis let held entries go idle; the holder's own sweep
        then claims them, and must leave them to the task still handling them (a second,
        concurrent delivery would send twice). Entries it does not hold are handled."""
        keys = Keys(prefix=key_prefix)
        ids = await _delivered(redis, keys.due(0), "notifier-busy", 3)
        handled: list[str] = []
        busy = _reclaimer(redis, keys, "notifier-busy", handled)
        busy.held.update(ids[:2])
        await asyncio.sleep(0.3)  # longer than min_idle_ms: as after missed refreshes
        assert await busy.sweep() == 3
        assert handled == [ids[2]]
        assert busy.held == set(ids[:2])  # still held by their task, not released by the sweep

    async def test_refresh_counts_no_delivery(self, redis: aioredis.Redis, key_prefix: str) -> None:
        """Keeping an entry does not bring it closer to the dead-letter cap."""
        keys = Keys(prefix=key_prefix)
        ids = await _delivered(redis, keys.due(0), "notifier-busy", 1)
        busy = _reclaimer(redis, keys, "notifier-busy", [])
        busy.held.update(ids)
        for _ in range(3):
            await busy.refresh()
        [row] = await redis.xpending_range(keys.due(0), NOTIFIER_GROUP, min="-", max="+", count=5)
        assert row["times_delivered"] == 1

    async def test_released_entries_are_reclaimed_once_idle(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """An entry its holder let go of (its handler failed) is handled by another replica."""
        keys = Keys(prefix=key_prefix)
        ids = await _delivered(redis, keys.due(0), "notifier-busy", 2)
        busy = _reclaimer(redis, keys, "notifier-busy", [])
        busy.held.update(ids)
        await busy.refresh()
        busy.held.discard(ids[0])
        handled: list[str] = []
        other = _reclaimer(redis, keys, "notifier-other", handled)
        await asyncio.sleep(0.3)
        await busy.refresh()
        assert await other.sweep() == 1
        assert handled == ids[:1]

    async def test_a_stop_ends_a_pass_between_entries(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Once the process is stopping, a pass hands over no further entry: those it claimed
        but did not handle stay pending, unacknowledged, for another replica."""
        keys = Keys(prefix=key_prefix)
        ids = await _delivered(redis, keys.due(0), "notifier-dead", 3)
        stop = asyncio.Event()
        handled: list[str] = []

        async def handle(raw: bytes, entry: str, fields: dict[bytes, bytes]) -> None:
            handled.append(entry)
            stop.set()  # SIGTERM arrives while the first entry is being handled

        reclaimer = _reclaimer(redis, keys, "notifier-live", handled)
        reclaimer.handle = handle
        await asyncio.sleep(0.3)  # longer than min_idle_ms
        await asyncio.wait_for(reclaimer.run(stop), timeout=10)
        assert handled == ids[:1]
        rows = await redis.xpending_range(keys.due(0), NOTIFIER_GROUP, min="-", max="+", count=5)
        assert [cast("bytes", row["message_id"]).decode() for row in rows] == ids[1:]
