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

from collections.abc import Sequence
from typing import Final, Literal

import redis.asyncio as aioredis

from services.common.autopipeline import AutoPipeline
from services.common.keys import Keys

__all__ = ["RESERVE", "CapLedger", "CapResult", "capped_member"]

CapResult = Literal["reserved", "over_cap", "erased"]

RESERVE: Final = """
-- Take one daily slot per partner for an occurrence, unless that partner's cap is reached.
-- KEYS: 1 couple hash, 2 sent zset
-- ARGV: 1 occurrence id, 2 now_ms, 3 window_ms, 4 cap, 5.. partner ids
-- Returns, per partner: 1 reserved (now or before), 0 over the cap (recorded, final);
-- or -1 alone when the couple is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local since = tonumber(ARGV[2]) - tonumber(ARGV[3])
local recent = nil
local out = {}
for i = 5, #ARGV do
  local slot = ARGV[1] .. '|' .. ARGV[i] .. '|cap'
  local refusal = ARGV[1] .. '|' .. ARGV[i] .. '|capped'
  if redis.call('ZSCORE', KEYS[2], slot) then
    out[#out + 1] = 1
  elseif redis.call('ZSCORE', KEYS[2], refusal) then
    out[#out + 1] = 0
  else
    recent = recent or redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. since, '+inf')
    local suffix = '|' .. ARGV[i] .. '|cap'
    local used = 0
    for _, member in ipairs(recent) do
      if string.sub(member, -#suffix) == suffix then used = used + 1 end
    end
    if used >= tonumber(ARGV[4]) then
      redis.call('ZADD', KEYS[2], ARGV[2], refusal)
      out[#out + 1] = 0
    else
      redis.call('ZADD', KEYS[2], ARGV[2], slot)
      out[#out + 1] = 1
    end
  end
end
return out
"""

_RESULTS: Final[dict[int, CapResult]] = {1: "reserved", 0: "over_cap", -1: "erased"}


def capped_member(occurrence_id: str, partner_id: str) -> str:
    return f"{occurrence_id}|{partner_id}|capped"


class CapLedger:
    def __init__(self, redis: aioredis.Redis, keys: Keys, pipe: AutoPipeline | None = None) -> None:
        self.keys = keys
        self.pipe = pipe or AutoPipeline(redis)
        self._reserve = redis.register_script(RESERVE)

    async def reserve(
        self,
        couple_id: str,
        occurrence_id: str,
        partner_ids: Sequence[str],
        *,
        now_ms: int,
        window_ms: int,
        cap: int,
    ) -> list[CapResult]:
        """Take (or find) this occurrence's slot for each partner: one script call."""
        result = await self.pipe.script(
            self._reserve,
            [self.keys.couple(couple_id), self.keys.sent(couple_id)],
            [occurrence_id, now_ms, window_ms, cap, *partner_ids],
        )
        if not isinstance(result, list):  # -1: the couple was erased
            return ["erased" for _ in partner_ids]
        return [_RESULTS[int(r)] for r in result]
