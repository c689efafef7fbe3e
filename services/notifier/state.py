"""The notifier's Redis edge: couple state, idempotency records, seen content, the outbox.

Outbox: the outcome of a send is written in the same script as its idempotency record, into
the couple's outbox hash (same hash tag as the couple, so this works on Redis Cluster where the
outcomes stream lives in another slot). The service then publishes it on the outcomes stream
and deletes it from the outbox. A delivery that finds an outbox entry of its occurrence (a
crash, or a refused XADD, came between record and publish) publishes it as it was written:
same bytes, same event_id. So a send's outcome is never lost, and a republished one is
recognisably the same event.

RECORD_SENT runs with `allow-oom`: it follows a send that has already happened, and refusing
it would turn every redelivery into another email. It writes a bounded amount (one record, one
outcome) and only after RESERVE (caps.py), which is refused under OOM, let the send start.

Hot-path habits (issue 20, callgrind): LOAD's reply is read without `dict(zip(...))` for the
lists a nudge usually finds empty (records, sightings, outbox: ~6k instructions each even
for nothing) and the couple hash's pairs from one iterator (HGETALL answers pairs: checked);
`unbox` returns HDEL's future itself (no coroutine frame), as `AutoPipeline.call` does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import redis.asyncio as aioredis

from couples_nudge.common.autopipeline import AutoPipeline
from couples_nudge.common.cjson_args import escaped_array, plain
from couples_nudge.common.couple_state import CoupleState, parse_couple
from couples_nudge.common.keys import Keys

__all__ = ["CoupleKeys", "Loaded", "NotifierState", "idempotency_key"]


LOAD: Final = """
-- What one delivery needs to decide, in one call.
-- KEYS: 1 couple hash, 2 sent zset, 3 seen zset, 4 outbox hash
-- ARGV: 1 "<seen since ms>|<seen before ms>|<occurrence id>|": one argument, not three (the
--       client packed each with a sprintf, ~1.3k instructions; branch h/notify12). The two
--       ints hold no '|', so the first two '|' end them and the rest is the occurrence's
--       prefix, any bytes ('.' matches every byte, NUL and newline too).
-- Returns the couple hash, the sent members, the content seen with the scheduled ms of its
-- last sighting (flat id, score list), and the outbox entries of this occurrence (flat field,
-- value list).
local since, before, prefix = string.match(ARGV[1], '^([^|]*)|([^|]*)|(.*)$')
local boxed = {}
local outbox = redis.call('HGETALL', KEYS[4])
for i = 1, #outbox, 2 do
  if string.sub(outbox[i], 1, #prefix) == prefix then
    boxed[#boxed + 1] = outbox[i]
    boxed[#boxed + 1] = outbox[i + 1]
  end
end
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('ZRANGE', KEYS[2], 0, -1),
  redis.call('ZRANGEBYSCORE', KEYS[3], since, '(' .. before, 'WITHSCORES'),
  boxed
}
"""

RECORD_SENT: Final = """#!lua flags=allow-oom
-- Record the sends of one occurrence and their outcomes, only while the couple exists (an
-- erasure may have won). Allowed when Redis is out of memory: see the module docstring.
-- KEYS: 1 couple hash, 2 sent zset, 3 seen zset, 4 outbox hash
-- ARGV: 1 a JSON array of strings (`record_args`), decoded by cjson (C) into `arg`:
--       1 now_ms, 2 retention_ms, 3 scheduled_ms, 4 repeat window ms,
--       5 couple field marking a channel dead ('' for none),
--       6.. pairs (idempotency key, content id or '' when nothing was shown);
--       2.. the outcome JSON for the outbox (or '') of each pair, in order.
--       The array's elements are JSON strings (numbers too: ZADD and tonumber read the text
--       as they read an argument), so what is written is byte for byte what the same strings
--       as arguments of their own wrote. 1 + r arguments instead of 5 + 3r: the client packed
--       each with a sprintf (~1.3k instructions; docs/performance.md, branch h/notify12).
-- Returns 1 if recorded, 0 if the couple is gone. Sightings older than the repeat window
-- can no longer affect a choice, so they are trimmed: the seen set stays bounded. Both sets
-- expire a retention (a window) and a day after their last write: a couple sent nothing
-- more (unsubscribed, paused) kept its records for ever, since only the next send trimmed
-- them (the day: slack between the service's clock and Redis's).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local arg = cjson.decode(ARGV[1])
local shown = false
local record = 1
for i = 6, #arg, 2 do
  record = record + 1
  redis.call('ZADD', KEYS[2], arg[1], arg[i])
  redis.call('ZREM', KEYS[2], arg[i] .. '|sending')
  if arg[i + 1] ~= '' then
    redis.call('ZADD', KEYS[3], 'GT', arg[3], arg[i + 1])
    shown = true
  end
  if ARGV[record] ~= '' then redis.call('HSET', KEYS[4], arg[i], ARGV[record]) end
end
if arg[5] ~= '' then redis.call('HSET', KEYS[1], arg[5], arg[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(arg[1]) - tonumber(arg[2]))
redis.call('PEXPIRE', KEYS[2], string.format('%.0f', tonumber(arg[2]) + 86400000))
if shown then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (tonumber(arg[3]) - tonumber(arg[4])))
  redis.call('PEXPIRE', KEYS[3], string.format('%.0f', tonumber(arg[4]) + 86400000))
end
return 1
"""

MARK_DEAD: Final = """
-- KEYS: 1 couple hash   ARGV: 1 field, 2 value. Never recreates an erased couple.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
"""


def record_args(
    now_ms: int,
    retention_ms: int,
    scheduled_ms: int,
    repeat_window_ms: int,
    dead: str,
    records: Sequence[tuple[str, str, bytes]],
) -> list[str | bytes]:
    """RECORD_SENT's arguments: first a JSON array of strings (the script decodes it with
    cjson): now_ms, retention_ms, scheduled_ms, the repeat window, `dead`, then each record's
    key and content id; then each record's outcome JSON as an argument of its own, as it is.

    Why: a send's call had 8 arguments besides its keys, now 2 (services/common/cjson_args.py:
    why, and the invariant that lets the array be written as it is when every string is
    `plain`). The outcomes stay apart: inside a JSON string every '"' of theirs would need
    escaping (a copy and a scan of each outcome, costing more than the argument they save).
    tests/integration/test_notify12_record_sent_args.py holds this against the script and
    the arguments before, on the test server."""
    text = f'["{now_ms}","{retention_ms}","{scheduled_ms}","{repeat_window_ms}","{dead}'
    probe = dead
    outcomes: list[str | bytes] = []
    for key, shown, outcome in records:
        text = f'{text}","{key}","{shown}'
        probe = f"{probe}{key}{shown}"
        outcomes.append(outcome)
    if plain(probe):
        return [f'{text}"]', *outcomes]
    strings = [str(now_ms), str(retention_ms), str(scheduled_ms), str(repeat_window_ms), dead]
    for key, shown, _ in records:
        strings += (key, shown)
    return [escaped_array(strings), *outcomes]


def idempotency_key(occurrence_id: str, partner_id: str, channel: str) -> str:
    return f"{occurrence_id}|{partner_id}|{channel}"


def dead_field(partner_id: str, channel: str) -> str:
    """The couple hash field that marks a partner's channel dead (couple_state.py)."""
    return f"dead:{partner_id}:{channel}"


class CoupleKeys(NamedTuple):
    """One couple's keys, in the KEYS order of LOAD and RECORD_SENT (all one hash tag)."""

    couple: str
    sent: str
    seen: str
    outbox: str


_KEYS_KEPT: Final = 4096  # couples whose keys are remembered (a nudge uses them ~5 times)


class Loaded(NamedTuple):
    couple: CoupleState
    sent: set[str]  # members of the sent zset: records, cap slots, "sending" marks
    seen: dict[str, int]  # content ids seen in the repeat window -> scheduled ms last seen
    outbox: dict[str, bytes]  # this occurrence's outcomes recorded but not yet published


_new_tuple = tuple.__new__


class NotifierState:
    """Every call goes through one AutoPipeline: concurrent nudges share round trips."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, pipe: AutoPipeline | None = None) -> None:
        self.redis = redis
        self.keys = keys
        self.pipe = pipe or AutoPipeline(redis)
        self._load = redis.register_script(LOAD)
        self._record_sent = redis.register_script(RECORD_SENT)
        self._mark_dead = redis.register_script(MARK_DEAD)
        self._couple_keys: dict[str, CoupleKeys] = {}

    def couple_keys(self, couple_id: str) -> CoupleKeys:
        """The couple's keys, built once per couple while its nudge is handled (a CRC32 and
        four formats; a delivery needs them about five times). `tuple.__new__`: a
        NamedTuple's own `__new__` is a Python function."""
        found = self._couple_keys.get(couple_id)
        if found is None:
            if len(self._couple_keys) >= _KEYS_KEPT:
                self._couple_keys.clear()
            found = _new_tuple(CoupleKeys, self.keys.delivery_keys(couple_id))
            self._couple_keys[couple_id] = found
        return found

    async def load(
        self, couple_id: str, occurrence_id: str, *, seen_since_ms: int, seen_before_ms: int
    ) -> Loaded:
        """Couple state, what is already sent, content seen in the window, and the outbox
        entries of this occurrence: one call."""
        flat, sent, seen, boxed = await self.pipe.script(
            self._load,
            self.couple_keys(couple_id),
            (f"{seen_since_ms}|{seen_before_ms}|{occurrence_id}|",),  # LOAD's one argument
        )
        if len(flat) & 1:  # HGETALL answers field, value pairs
            raise ValueError("LOAD: a couple hash of an odd length")
        pairs = iter(flat)
        # Built by C iterators (a comprehension is a frame of its own, ~1-2k instructions; a
        # NamedTuple's __new__ is Python: tuple.__new__ makes the same tuple, ~half the cost).
        # `dict(zip(...))` costs ~6k instructions even for nothing (its argument is looked up
        # for `keys` first): the lists that are usually empty (a new couple's records and
        # sightings, the outbox) are tested before.
        return _new_tuple(
            Loaded,
            (
                parse_couple(dict(zip(pairs, pairs, strict=False))),  # even: checked
                set(map(bytes.decode, sent)) if sent else set(),
                # content id -> ms: float() reads a score's bytes as int(float(ms)) did
                dict(
                    zip(map(bytes.decode, seen[::2]), map(int, map(float, seen[1::2])), strict=True)
                )
                if seen
                else {},
                dict(zip(map(bytes.decode, boxed[::2]), boxed[1::2], strict=True)) if boxed else {},
            ),
        )

    async def record_sent(
        self,
        couple_id: str,
        records: Sequence[tuple[str, str, bytes]],
        *,
        scheduled_ms: int,
        now_ms: int,
        retention_ms: int,
        repeat_window_ms: int,
        dead: str = "",
    ) -> bool:
        """Idempotency records (key, content id shown or "", outcome JSON for the outbox or
        b""), the seen items, both trimmed, and a dead channel's field (`dead`, if any),
        atomically, in one call. False when the couple is gone (nothing written)."""
        args = record_args(now_ms, retention_ms, scheduled_ms, repeat_window_ms, dead, records)
        recorded = await self.pipe.script(self._record_sent, self.couple_keys(couple_id), args)
        return bool(recorded)

    def unbox(self, couple_id: str, fields: Sequence[str]) -> asyncio.Future[Any]:
        """Delete outbox entries once their outcomes are on the outcomes stream: await the
        result for HDEL's reply. A plain function (no coroutine frame of its own: one a
        nudge), as `AutoPipeline.call`."""
        return self.pipe.call("HDEL", self.couple_keys(couple_id).outbox, *fields)

    async def mark_dead(self, couple_id: str, partner_id: str, channel: str, now_ms: int) -> None:
        field = dead_field(partner_id, channel)
        await self.pipe.script(self._mark_dead, [self.keys.couple(couple_id)], [field, now_ms])
