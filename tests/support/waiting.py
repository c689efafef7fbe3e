"""Waiting for asynchronous effects without sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], *, until: Callable[[T], bool], within: float = 15.0
) -> T:
    """Poll `probe` until `until(result)` holds; fail with the last value after `within` s."""
    deadline = time.monotonic() + within
    while True:
        result = await probe()
        if until(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within}s; last value: {result!r}")
        await asyncio.sleep(0.02)


async def drained(redis: aioredis.Redis, stream: str) -> bool:
    """Every consumer group of `stream` has read and acknowledged everything on it."""
    groups = await redis.xinfo_groups(stream)
    return bool(groups) and all(int(g["pending"]) == 0 and not g.get("lag") for g in groups)
