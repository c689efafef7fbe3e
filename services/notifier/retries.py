"""Retrying transient failures later without blocking the consumer.

`RetryPolicy` is pure: it says how long to wait before attempt n+1, or that n was the last.
`failure_reason` is pure too: a send error's detail -> one word of a fixed vocabulary, the
`reason` of the `nudge_delivery_failed` log line (never the detail itself: it may one day
hold an address).
`RetryQueue` keeps waiting retries in a sorted set per shard (member "<attempt>|<NudgeDue
JSON>", score = due ms) and, when they come due, moves them back onto the shard's due stream
in one Lua call with an `attempt` field, so the normal consumer path (with its acks,
reclaim and idempotency) handles them. Nothing is held only in memory: a crash loses no retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from couples_nudge.common.clock import Clock, epoch_ms
from couples_nudge.common.keys import Keys

__all__ = ["FAILURE_REASONS", "RetryPolicy", "RetryQueue", "failure_reason"]

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


FAILURE_REASONS: Final = (
    "smtp_4xx",
    "smtp_5xx",
    "recipient_refused",
    "http_429",
    "http_4xx",
    "http_5xx",
    "timeout",
    "connection",
    "tls",
    "other",
)
_STATUS: Final = re.compile(r"^(SMTP|HTTP) (\d)(\d\d)\b")


def failure_reason(detail: str) -> str:
    """The kind of a send failure, one of FAILURE_REASONS, from the error's detail text.

    Details are what the channels put there (services/notifier/channels): "SMTP 451",
    "recipient refused [450]", "HTTP 503", "timeout", or an exception class name.
    """
    if match := _STATUS.match(detail):
        protocol, first, rest = match.groups()
        if protocol == "HTTP" and first + rest == "429":
            return "http_429"
        return f"{protocol.lower()}_{first}xx" if first in "45" else "other"
    if detail.startswith("recipient refused"):
        return "recipient_refused"
    lowered = detail.lower()
    if "timeout" in lowered or "timedout" in lowered:
        return "timeout"
    if "ssl" in lowered or "tls" in lowered or "certificate" in lowered:
        return "tls"
    if any(word in lowered for word in ("connect", "disconnect", "refused", "reset", "network")):
        return "connection"
    if lowered in ("oserror", "brokenpipeerror", "readerror", "writeerror", "protocolerror"):
        return "connection"
    return "other"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter: base * factor**(n-1), capped, +/- jitter."""

    base: timedelta = timedelta(seconds=30)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.2
    max_attempts: int = 9  # NotifierSettings.max_attempts

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
