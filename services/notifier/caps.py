"""The per-partner daily cap, and the write that must succeed before every send.

State lives in the couple's existing idempotency zset (nudges:sent:{sNN}:<couple>), so erasure
and the retention trim already cover it. Besides the "occurrence|partner|channel" send records
it holds three kinds of member, scored with the decision time (ms):

    <occurrence>|<partner>|cap                this occurrence holds one of the partner's slots
    <occurrence>|<partner>|capped             this occurrence was refused a slot (final)
    <occurrence>|<partner>|<channel>|sending  a send on that channel is about to start

The slot is taken before the first channel is tried, atomically (Lua), so concurrent
deliveries of several occurrences never exceed the cap; all channels of one occurrence share
its slot, and a redelivery finds its slot or its refusal again. A slot taken by a send that
then failed still counts: the cap errs on the side of fewer nudges.

Write-ahead: RESERVE always writes before it answers "reserved" (the "sending" members, even
when it finds the slot it already holds), and that is the script's first write. Redis with
`maxmemory` and `noeviction` refuses a script's first write that may grow memory (ZADD) with
OOM, and a script that only reads would succeed: so while Redis refuses writes, RESERVE fails
and nothing is sent (the send after it could never be recorded). A refusal also leaves its
`cap_reached` outcome in the couple's outbox ("<occurrence>|<partner>|capped" -> ms; see
state.py), in the same script, so a crash before it is published cannot lose it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, Literal

import redis.asyncio as aioredis

from couples_nudge.common.autopipeline import AutoPipeline
from couples_nudge.common.cjson_args import escaped_array, plain
from couples_nudge.common.keys import Keys
from couples_nudge.notifier.state import CoupleKeys

__all__ = ["RESERVE", "CapLedger", "CapResult", "capped_member"]

CapResult = Literal["reserved", "over_cap", "erased"]

RESERVE: Final = """
-- Take one daily slot per partner for an occurrence, unless that partner's cap is reached,
-- and mark the sends about to start. The first write is always a ZADD (see the module).
-- KEYS: 1 couple hash, 2 sent zset, 3 outbox hash
-- ARGV: 1 a JSON array of strings (`reserve_arg`), decoded by cjson (C) into `arg`:
--       1 occurrence id, 2 now_ms, 3 window_ms, 4 cap,
--       5.. pairs (partner id, comma-separated channels about to be sent).
--       Numbers as strings: ZADD and tonumber read the text as they read an argument, so
--       what is written is byte for byte what the same strings as arguments wrote. One
--       argument instead of 4 + 2 a partner: the client packed each with a sprintf (~1.3k
--       instructions; docs/performance.md, branch h/notify12). Decoding writes nothing: the
--       first write is still the ZADD below.
--       2 the sent zset's lifetime in ms from now: the retention and a day, as RECORD_SENT
--         gives it (state.py); a couple whose sends only ever failed for a while (dead
--         letters) or met its cap is recorded by nothing else, and kept its slots and marks
--         for ever.
-- Returns, per partner: 1 reserved (now or before), 0 over the cap (recorded, final);
-- or -1 alone when the couple is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local arg = cjson.decode(ARGV[1])
local since = tonumber(arg[2]) - tonumber(arg[3])
local recent = nil
local out = {}
for i = 5, #arg, 2 do
  local partner = arg[i]
  local slot = arg[1] .. '|' .. partner .. '|cap'
  local refusal = arg[1] .. '|' .. partner .. '|capped'
  local held = redis.call('ZSCORE', KEYS[2], slot)
  local granted = held ~= false
  if not granted and redis.call('ZSCORE', KEYS[2], refusal) then
    out[#out + 1] = 0
  else
    if not granted then
      recent = recent or redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. since, '+inf')
      local suffix = '|' .. partner .. '|cap'
      local used = 0
      for _, member in ipairs(recent) do
        if string.sub(member, -#suffix) == suffix then used = used + 1 end
      end
      granted = used < tonumber(arg[4])
    end
    if granted then
      local marks = {}
      for channel in string.gmatch(arg[i + 1], '[^,]+') do
        marks[#marks + 1] = arg[2]
        marks[#marks + 1] = arg[1] .. '|' .. partner .. '|' .. channel .. '|sending'
      end
      if not held then
        marks[#marks + 1] = arg[2]
        marks[#marks + 1] = slot
      end
      redis.call('ZADD', KEYS[2], unpack(marks))
      out[#out + 1] = 1
    else
      redis.call('ZADD', KEYS[2], arg[2], refusal)
      redis.call('HSET', KEYS[3], refusal, arg[2])
      out[#out + 1] = 0
    end
  end
end
if ARGV[2] then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return out
"""

_RESULTS: Final[dict[int, CapResult]] = {1: "reserved", 0: "over_cap", -1: "erased"}


def reserve_arg(
    occurrence_id: str,
    sends: Sequence[tuple[str, Sequence[str]]],
    *,
    now_ms: int,
    window_ms: int,
    cap: int,
) -> str:
    """RESERVE's one argument: occurrence id, now_ms, window_ms, cap, then each partner's id
    and channels (comma-separated), as a JSON array of strings, written as it is when no
    string holds a '"', a backslash or a NUL, else escaped (services/common/cjson_args.py:
    the invariant, and why). tests/integration/test_notify12_lua_args.py holds it against the
    script and the arguments before, on the test server."""
    text = f'["{occurrence_id}","{now_ms}","{window_ms}","{cap}"'
    probe = occurrence_id
    for partner_id, channels in sends:
        joined = ",".join(channels)
        text = f'{text},"{partner_id}","{joined}"'
        probe = f"{probe}{partner_id}{joined}"
    if not plain(probe):
        strings = [occurrence_id, str(now_ms), str(window_ms), str(cap)]
        for partner_id, channels in sends:
            strings += (partner_id, ",".join(channels))
        return escaped_array(strings)
    return f"{text}]"


def capped_member(occurrence_id: str, partner_id: str) -> str:
    return f"{occurrence_id}|{partner_id}|capped"


class CapLedger:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        pipe: AutoPipeline | None = None,
        *,
        couple_keys: Callable[[str], CoupleKeys] | None = None,
    ) -> None:
        self.keys = keys
        self.pipe = pipe or AutoPipeline(redis)
        self._reserve = redis.register_script(RESERVE)
        # NotifierState.couple_keys: the keys it already built for the nudge's couple.
        self._couple_keys = couple_keys or (
            lambda c: CoupleKeys(keys.couple(c), keys.sent(c), keys.seen(c), keys.outbox(c))
        )

    async def reserve(
        self,
        couple_id: str,
        occurrence_id: str,
        sends: Sequence[tuple[str, Sequence[str]]],
        *,
        now_ms: int,
        window_ms: int,
        cap: int,
        keep_ms: int,
    ) -> list[CapResult]:
        """Take (or find) this occurrence's slot for each (partner, channels about to be sent)
        and mark those sends as starting: one script call. Raises (OutOfMemoryError, ...) when
        Redis refuses writes: then nothing may be sent. One answer per entry of `sends`, in
        its order (checked: the delivery zips them without `strict=`). The couple's sent set
        then expires `keep_ms` from now unless written again."""
        k = self._couple_keys(couple_id)
        arg = reserve_arg(occurrence_id, sends, now_ms=now_ms, window_ms=window_ms, cap=cap)
        result = await self.pipe.script(self._reserve, [k.couple, k.sent, k.outbox], (arg, keep_ms))
        if not isinstance(result, list):  # -1: the couple was erased
            return ["erased" for _ in sends]
        if len(result) != len(sends):  # the callers zip the answers with `sends`
            raise ValueError(f"RESERVE: {len(result)} answers for {len(sends)} partners")
        return list(map(_RESULTS.__getitem__, result))  # ints; no comprehension frame
