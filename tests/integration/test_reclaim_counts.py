"""A reclaimed entry counts a delivery when its handling starts, not when it is claimed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.keys import NOTIFIER_GROUP, Keys
from couples_nudge.common.reclaim import Reclaimer
from couples_nudge.common.streams import DATA_FIELD, ensure_group


class Killed(BaseException):
    """Stands for kill -9 in the middle of handling: nothing after it runs."""


async def _times(redis: aioredis.Redis, stream: str) -> list[int]:
    rows: Any = await redis.xpending_range(stream, NOTIFIER_GROUP, min="-", max="+", count=10)
    return [int(r["times_delivered"]) for r in rows]


class TestDeliveryCount:
    async def test_entries_claimed_but_never_started_count_no_delivery(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A process dies while handling the first of three reclaimed entries: only that one
        has a delivery more; the two it never started keep their count (before, all three
        did, and a few crashes in a row dead-lettered entries nobody had tried)."""
        keys = Keys(prefix=key_prefix)
        stream = keys.due(0)
        await ensure_group(redis, stream, NOTIFIER_GROUP)
        for n in range(3):
            await redis.xadd(stream, {DATA_FIELD: json.dumps({"n": n})})
        await redis.xreadgroup(NOTIFIER_GROUP, "crashed-1", {stream: ">"}, count=3)
        started: list[str] = []

        async def handle(raw: bytes, entry: str, fields: dict[bytes, bytes]) -> None:
            started.append(entry)
            raise Killed

        reclaimer = Reclaimer(
            redis,
            stream=stream,
            group=NOTIFIER_GROUP,
            consumer="crashed-2",
            handle=handle,
            dead_stream=keys.dead,
            dead_maxlen=1000,
            min_idle_ms=50,
            max_deliveries=5,
        )
        await asyncio.sleep(0.1)
        with pytest.raises(Killed):
            await reclaimer.sweep()
        assert len(started) == 1
        assert await _times(redis, stream) == [2, 1, 1]
