"""The per-partner daily cap: at most N nudges per partner in any rolling 24 hours.

State lives in the couple's existing idempotency zset (nudges:sent:{sNN}:<couple>), so erasure
and the retention trim already cover it; no new key. Besides the "occurrence|partner|channel"
send records it holds two kinds of member, scored with the decision time (ms):

    <occurrence>|<partner>|cap      this occurrence holds one of the partner's slots
    <occurrence>|<partner>|capped   this occurrence was refused a slot (final)

The slot is taken before the first channel is tried, atomically (Lua), so concurrent
deliveries of several occurrences never exceed the cap; all channels of one occurrence share
its slot, and a redelivery finds its slot or its refusal again. A slot taken by a send that
then failed still counts: the cap errs on the side of fewer nudges.
"""

from __future__ import annotations

from typing import Final, Literal

import redis.asyncio as aioredis

from services.common.keys import Keys

__all__ = ["RESERVE", "CapLedger", "CapResult", "capped_member", "slot_member"]

CapResult = Literal["reserved", "over_cap", "erased"]

RESERVE: Final = """
-- Take one of a partner's daily slots for an occurrence, unless the cap is reached.
-- KEYS: 1 couple hash, 2 sent zset
-- ARGV: 1 slot member "<occ>|<partner>|cap", 2 refusal member "<occ>|<partner>|capped",
--       3 slot suffix "|<partner>|cap", 4 now_ms, 5 window_ms, 6 cap
-- Returns 1 reserved (now or before), 0 over the cap (recorded, final), -1 couple gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 1 end
if redis.call('ZSCORE', KEYS[2], ARGV[2]) then return 0 end
local suffix = ARGV[3]
local since = tonumber(ARGV[4]) - tonumber(ARGV[5])
local used = 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. since, '+inf')) do
  if string.sub(member, -#suffix) == suffix then used = used + 1 end
end
if used >= tonumber(ARGV[6]) then
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
  return 0
end
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
return 1
"""

_RESULTS: Final[dict[int, CapResult]] = {1: "reserved", 0: "over_cap", -1: "erased"}


def slot_member(occurrence_id: str, partner_id: str) -> str:
    return f"{occurrence_id}|{partner_id}|cap"


def capped_member(occurrence_id: str, partner_id: str) -> str:
    return f"{occurrence_id}|{partner_id}|capped"


class CapLedger:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._reserve = redis.register_script(RESERVE)

    async def reserve(
        self,
        couple_id: str,
        occurrence_id: str,
        partner_id: str,
        *,
        now_ms: int,
        window_ms: int,
        cap: int,
    ) -> CapResult:
        """Take (or find) this occurrence's slot for the partner: 1 round trip."""
        result = await self._reserve(
            keys=[self.keys.couple(couple_id), self.keys.sent(couple_id)],
            args=[
                slot_member(occurrence_id, partner_id),
                capped_member(occurrence_id, partner_id),
                f"|{partner_id}|cap",
                now_ms,
                window_ms,
                cap,
            ],
        )
        return _RESULTS[int(result)]
