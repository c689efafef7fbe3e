"""A group forgets the consumers of processes gone, never what one of them still holds.

Every process start adds a consumer name to each group it reads (`<role>-<host>-<pid>`), and
nothing removed them: after five restarts a group listed five dead names beside the live one.
The Reclaimer's FORGET (hourly) removes, in one step, the consumers idle for a day with
nothing pending; one holding entries stays until its entries are taken over.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from couples_nudge.common.keys import NOTIFIER_GROUP, Keys
from couples_nudge.common.reclaim import Reclaimer
from couples_nudge.common.streams import DATA_FIELD, ensure_group


async def _consumers(redis: aioredis.Redis, stream: str) -> dict[str, int]:
    found: Any = await redis.xinfo_consumers(stream, NOTIFIER_GROUP)
    return {c["name"].decode(): int(c["pending"]) for c in found}


class TestForgetConsumers:
    async def test_idle_consumers_holding_nothing_are_removed(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        keys = Keys(key_prefix)
        stream = keys.due(0)
        await ensure_group(redis, stream, NOTIFIER_GROUP)
        for _ in range(2):
            await redis.xadd(stream, {DATA_FIELD: b"{}"})
        read: Any = await redis.xreadgroup(NOTIFIER_GROUP, "gone-empty", {stream: ">"}, count=1)
        await redis.xack(stream, NOTIFIER_GROUP, read[0][1][0][0])
        await redis.xreadgroup(NOTIFIER_GROUP, "gone-holding", {stream: ">"}, count=1)
        await redis.xgroup_createconsumer(stream, NOTIFIER_GROUP, "this-process")
        await asyncio.sleep(0.3)
        await redis.xgroup_createconsumer(stream, NOTIFIER_GROUP, "just-started")

        async def handle(raw: bytes, entry: str, fields: dict[bytes, bytes]) -> None:
            raise AssertionError("nothing is handled here")

        reclaimer = Reclaimer(
            redis,
            stream=stream,
            group=NOTIFIER_GROUP,
            consumer="this-process",
            handle=handle,
            dead_stream=keys.dead,
            dead_maxlen=1000,
            min_idle_ms=60_000,
            max_deliveries=5,
            forget_idle_ms=200,
        )
        before = await _consumers(redis, stream)
        removed = await reclaimer.forget_idle()
        after = await _consumers(redis, stream)
        print(f"consumers {sorted(before)} -> {sorted(after)}")
        assert removed == 1
        assert after == {"gone-holding": 1, "this-process": 0, "just-started": 0}
