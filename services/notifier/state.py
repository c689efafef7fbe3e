"""The notifier's Redis edge: couple state, idempotency records and seen content."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import redis.asyncio as aioredis

from services.common.couple_state import CoupleState, parse_couple
from services.common.keys import Keys

__all__ = ["NotifierState", "idempotency_key"]


RECORD_SENT: Final = """
-- Record sends of one occurrence, only while the couple exists (an erasure may have won).
-- KEYS: 1 couple hash, 2 sent zset, 3 seen zset
-- ARGV: 1 now_ms, 2 retention_ms, 3 content id, 4 scheduled_ms, 5 repeat window ms,
--       6.. idempotency keys
-- Returns 1 if recorded, 0 if the couple is gone. Sightings older than the repeat window
-- can no longer affect a choice, so they are trimmed: the seen set stays bounded.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 6, #ARGV do redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if ARGV[3] ~= '' then
  redis.call('ZADD', KEYS[3], 'GT', ARGV[4], ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (tonumber(ARGV[4]) - tonumber(ARGV[5])))
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
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._record_sent = redis.register_script(RECORD_SENT)
        self._mark_dead = redis.register_script(MARK_DEAD)

    async def load(
        self, couple_id: str, *, seen_since_ms: int, seen_before_ms: int
    ) -> tuple[CoupleState, set[str], set[str]]:
        """Couple state, idempotency keys already sent, content seen in the window: 1 round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.keys.couple(couple_id))
            pipe.zrange(self.keys.sent(couple_id), 0, -1)
            pipe.zrangebyscore(self.keys.seen(couple_id), seen_since_ms, f"({seen_before_ms}")
            raw, sent, seen = await pipe.execute()
        return (
            parse_couple(raw),
            {s.decode() for s in sent},
            {s.decode() for s in seen},
        )

    async def record_sent(
        self,
        couple_id: str,
        keys: Sequence[str],
        *,
        content_id: str,
        scheduled_ms: int,
        now_ms: int,
        retention_ms: int,
        repeat_window_ms: int,
    ) -> bool:
        """Idempotency records and the seen item, both trimmed, atomically: 1 round trip."""
        recorded = await self._record_sent(
            keys=[
                self.keys.couple(couple_id),
                self.keys.sent(couple_id),
                self.keys.seen(couple_id),
            ],
            args=[now_ms, retention_ms, content_id, scheduled_ms, repeat_window_ms, *keys],
        )
        return bool(recorded)

    async def mark_dead(self, couple_id: str, partner_id: str, channel: str, now_ms: int) -> None:
        await self._mark_dead(
            keys=[self.keys.couple(couple_id)], args=[f"dead:{partner_id}:{channel}", now_ms]
        )
