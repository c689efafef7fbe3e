"""The notifier's Redis edge: couple state, idempotency records and seen content."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Final

import redis.asyncio as aioredis

from services.common.autopipeline import AutoPipeline
from services.common.couple_state import CoupleState, parse_couple
from services.common.keys import Keys

__all__ = ["NotifierState", "idempotency_key"]


LOAD: Final = """
-- What one delivery needs to decide, in one call.
-- KEYS: 1 couple hash, 2 sent zset, 3 seen zset   ARGV: 1 seen since ms, 2 seen before ms
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('ZRANGE', KEYS[2], 0, -1),
  redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[1], '(' .. ARGV[2])
}
"""

RECORD_SENT: Final = """
-- Record the sends of one occurrence, only while the couple exists (an erasure may have won).
-- KEYS: 1 couple hash, 2 sent zset, 3 seen zset
-- ARGV: 1 now_ms, 2 retention_ms, 3 scheduled_ms, 4 repeat window ms,
--       5.. pairs of (idempotency key, content id or '' when nothing was shown)
-- Returns 1 if recorded, 0 if the couple is gone. Sightings older than the repeat window
-- can no longer affect a choice, so they are trimmed: the seen set stays bounded.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local shown = false
for i = 5, #ARGV, 2 do
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
  if ARGV[i + 1] ~= '' then
    redis.call('ZADD', KEYS[3], 'GT', ARGV[3], ARGV[i + 1])
    shown = true
  end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if shown then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (tonumber(ARGV[3]) - tonumber(ARGV[4])))
end
return 1
"""

MARK_DEAD: Final = """
-- KEYS: 1 couple hash   ARGV: 1 field, 2 value. Never recreates an erased couple.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
"""


def idempotency_key(occurrence_id: str, partner_id: str, channel: str) -> str:
    return f"{occurrence_id}|{partner_id}|{channel}"


class NotifierState:
    """Every call goes through one AutoPipeline: concurrent nudges share round trips."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, pipe: AutoPipeline | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.pipe = pipe or AutoPipeline(redis)
        self._load = redis.register_script(LOAD)
        self._record_sent = redis.register_script(RECORD_SENT)
        self._mark_dead = redis.register_script(MARK_DEAD)

    async def load(
        self, couple_id: str, *, seen_since_ms: int, seen_before_ms: int
    ) -> tuple[CoupleState, set[str], set[str]]:
        """Couple state, idempotency keys already sent, content seen in the window: one call."""
        flat, sent, seen = await self.pipe.script(
            self._load,
            [self.keys.couple(couple_id), self.keys.sent(couple_id), self.keys.seen(couple_id)],
            [seen_since_ms, seen_before_ms],
        )
        raw = dict(zip(flat[::2], flat[1::2], strict=True))
        return parse_couple(raw), {s.decode() for s in sent}, {s.decode() for s in seen}

    async def record_sent(
        self,
        couple_id: str,
        records: Sequence[tuple[str, str]],
        *,
        scheduled_ms: int,
        now_ms: int,
        retention_ms: int,
        repeat_window_ms: int,
    ) -> bool:
        """Idempotency records (key, content id shown or "") and the seen items, both trimmed,
        atomically, in one call."""
        recorded = await self.pipe.script(
            self._record_sent,
            [self.keys.couple(couple_id), self.keys.sent(couple_id), self.keys.seen(couple_id)],
            [now_ms, retention_ms, scheduled_ms, repeat_window_ms, *itertools.chain(*records)],
        )
        return bool(recorded)

    async def mark_dead(self, couple_id: str, partner_id: str, channel: str, now_ms: int) -> None:
        await self.pipe.script(
            self._mark_dead, [self.keys.couple(couple_id)], [f"dead:{partner_id}:{channel}", now_ms]
        )
