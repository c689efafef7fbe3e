"""Retrying transient failures later without blocking the consumer.

`RetryPolicy` is pure: it says how long to wait before attempt n+1, or that n was the last.
`RetryQueue` keeps waiting retries in a sorted set per shard (member "<attempt>|<NudgeDue
JSON>", score = due ms) and, when they come due, moves them back onto the shard's due stream
in one Lua call with an `attempt` field, so the normal consumer path (with its acks,
reclaim and idempotency) handles them. Nothing is held only in memory: a crash loses no retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from services.common.clock import Clock, epoch_ms
from services.common.keys import Keys

__all__ = ["RetryPolicy", "RetryQueue"]

log = structlog.get_logger()

MOVE_DUE: Final = """
-- Move retries that are due onto the due stream, with their attempt number.
-- KEYS: 1 retry zset, 2 due stream   ARGV: 1 now_ms, 2 limit, 3 due stream maxlen
-- Returns how many were moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local attempt, payload = string.match(member, '^(%d+)|(.*)$')
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', '__data__', payload, 'attempt', attempt)
  redis.call('ZREM', KEYS[1], member)
end
return #due
"""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: base * factor**(n-1), capped, +/- jitter."""

    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    max_attempts: int = 6

    def delay(self, failed_attempt: int, rand: float) -> timedelta | None:
        """Wait before the next attempt after attempt `failed_attempt` (1-based) failed.

        None when that was the last attempt allowed. `rand` in [0, 1) spreads the retries.
        """
        if failed_attempt >= self.max_attempts:
            return None
        raw = self.base * (self.factor ** (failed_attempt - 1))
        bounded = min(raw, self.cap)
        return bounded * (1 - self.jitter + 2 * self.jitter * rand)


class RetryQueue:
    def __init__(self, redis: aioredis.Redis, keys: Keys, clock: Clock, *, due_maxlen: int) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.due_maxlen = due_maxlen
        self._move = redis.register_script(MOVE_DUE)
        self.scheduled = 0

    async def schedule(self, shard: int, payload: bytes, attempt: int, delay: timedelta) -> None:
        when = epoch_ms(self.clock.now() + delay)
        member = str(attempt).encode() + b"|" + payload
        await self.redis.zadd(self.keys.retries(shard), {member: when})
        self.scheduled += 1

    async def move_due(self, shard: int, limit: int = 500) -> int:
        moved = await self._move(
            keys=[self.keys.retries(shard), self.keys.due(shard)],
            args=[epoch_ms(self.clock.now()), limit, self.due_maxlen],
        )
        return int(moved)

    async def run(self, stop: asyncio.Event, poll_seconds: float) -> None:
        while not stop.is_set():
            try:
                for shard in range(self.keys.shards):
                    while await self.move_due(shard) >= 500:
                        pass
            except RedisError as exc:
                log.warning("retry_queue_redis_error", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=poll_seconds)


def jitter() -> float:
    return random.random()
