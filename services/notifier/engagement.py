"""What partners answered, remembered so each answer is published once. Redis edge.

One hash per couple, `<prefix>:engaged:{sNN}:<couple>` (keys.py; erasure deletes it), that
expires when nothing was written to it for the action links' lifetime (and a day):

    a|<occurrence>|<partner>|<action>  "<first ms>|pending|<lease ms>" while a request
                                       publishes the answer's events, "<first ms>|done|" after
    s|<partner>|<kind>                 "<count>|<last occurrence>|<trigger occurrence>": the
                                       listening cadence's streak of unanswered nudges

Published once: ENGAGE claims an answer the first time (its first ms fixes every byte of the
events it publishes: ids and times are derived from it) and hands it to one request at a time
(a lease); DONE marks it published. A link followed again finds it done and publishes
nothing; a request whose publishing Redis refused gives its lease back (RELEASE), and one that
died mid-way leaves a lease that the next request takes over after LEASE_MS; either way the
next one publishes the same events again (same ids, same bytes: consumers dedupe). A request
that finds the answer "busy" (a double tap) waits for the other to finish. Answers older than
the links' lifetime are forgotten when a new one is claimed (ENGAGE) or a nudge is sent
(STREAK).

The streak (STREAK, per nudge sent to a partner): a nudge sent while the partner's previous
nudge of that kind got no answer counts that one as ignored; `limit` ignored in a row trigger
one "ignored" signal (and the count starts again). An answer (ENGAGE) resets it. A
redelivered nudge (same occurrence as the last) counts nothing and repeats its trigger.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple, cast

import redis.asyncio as aioredis

from couples_nudge.common.keys import Keys

__all__ = ["DONE", "ENGAGE", "LEASE_MS", "RELEASE", "STREAK", "Claimed", "EngagementStore"]

LEASE_MS: Final = 30_000
_DAY_MS: Final = 86_400_000

# Answers claimed longer ago than `keep` are forgotten: their links have expired, so none can
# come again. ENGAGE (a new answer) and STREAK (a nudge sent) both move the hash's expiry, so
# each trims, or an answering couple's hash, or one sent nudges but no longer answering, kept
# them for ever.
_FORGET_OLD_ANSWERS: Final = """
-- forget_old_answers(now, keep): KEYS[2] is the engaged hash in both scripts.
local function forget_old_answers(now, keep)
  local all = redis.call('HGETALL', KEYS[2])
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, 2) == 'a|' then
      local first = tonumber(string.match(all[i + 1], '^(%d+)|'))
      if first and now - first > keep then redis.call('HDEL', KEYS[2], all[i]) end
    end
  end
end
"""

ENGAGE: Final = (
    _FORGET_OLD_ANSWERS
    + """
-- Claim one answer (occurrence, partner, action) for publishing.
-- KEYS: 1 couple hash, 2 engaged hash
-- ARGV: 1 member "a|<occurrence>|<partner>|<action>", 2 now ms, 3 lease ms, 4 keep ms,
--       5 streak field "s|<partner>|<kind>"
-- Returns {state, first ms}: "publish" (this caller publishes: new, or a lapsed lease),
-- "done" (published already), "busy" (another request is publishing it) or "gone" (no
-- such couple: nothing is written).
if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone', 0} end
local now = tonumber(ARGV[2])
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then
  forget_old_answers(now, tonumber(ARGV[4]))  -- only when an answer is new
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '|pending|' .. ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  return {'publish', now}
end
local first, state, lease = string.match(cur, '^(%d+)|(%a+)|(%d*)$')
if state == 'done' then return {'done', tonumber(first)} end
if lease == '' or now - tonumber(lease) >= tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[2], ARGV[1], first .. '|pending|' .. ARGV[2])
  return {'publish', tonumber(first)}
end
return {'busy', tonumber(first)}
"""
)

DONE: Final = """
-- Mark a claimed answer published. KEYS: 1 engaged hash   ARGV: 1 member
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], string.match(cur, '^(%d+)') .. '|done|')
return 1
"""

RELEASE: Final = """
-- Give back the lease of a claimed answer whose events could not be published (Redis
-- refused them): the next request for it publishes at once instead of finding it "busy".
-- KEYS: 1 engaged hash   ARGV: 1 member, 2 the lease's ms (ENGAGE's `now` when it claimed)
-- Returns 1 if released; 0 if the lease is not that one any more (taken over, or done).
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local first, state, lease = string.match(cur, '^(%d+)|(%a+)|(%d*)$')
if state ~= 'pending' or lease ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], first .. '|pending|')
return 1
"""

STREAK: Final = (
    _FORGET_OLD_ANSWERS
    + """
-- One nudge of a kind sent to a partner: count the previous one as ignored if unanswered.
-- KEYS: 1 couple hash, 2 engaged hash
-- ARGV: 1 field "s|<partner>|<kind>", 2 occurrence id, 3 limit, 4 keep ms, 5 now ms
-- Returns 1 when this nudge completes `limit` ignored ones in a row (also when it is sent
-- again: a redelivery), else 0. Answers claimed longer ago than `keep` are forgotten here
-- too (as in ENGAGE): this moves the hash's expiry, so a couple that stopped answering but
-- is still sent nudges kept its old answers for ever.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local count, last, trigger = 0, '', ''
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  local c, l, t = string.match(cur, '^(%d+)|([^|]*)|([^|]*)$')
  if c then count, last, trigger = tonumber(c), l, t end
end
if last == ARGV[2] then
  if trigger == ARGV[2] then return 1 end
  return 0
end
if last ~= '' then count = count + 1 end
trigger = ''
if count >= tonumber(ARGV[3]) then count, trigger = 0, ARGV[2] end
forget_old_answers(tonumber(ARGV[5]), tonumber(ARGV[4]))
redis.call('HSET', KEYS[2], ARGV[1], count .. '|' .. ARGV[2] .. '|' .. trigger)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
if trigger == ARGV[2] then return 1 end
return 0
"""
)

ClaimState = Literal["publish", "done", "busy", "gone"]


class Claimed(NamedTuple):
    """What ENGAGE said of an answer: what to do with it, and the ms it was first claimed at
    (which fixes every byte of what it publishes)."""

    state: ClaimState
    first_ms: int


def answer_member(occurrence_id: str, partner_id: str, action: str) -> str:
    return f"a|{occurrence_id}|{partner_id}|{action}"


def streak_field(partner_id: str, kind: str) -> str:
    return f"s|{partner_id}|{kind}"


class EngagementStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, *, keep_ms: int) -> None:
        self.keys = keys
        self.keep_ms = keep_ms + _DAY_MS
        self._engage = redis.register_script(ENGAGE)
        self._done = redis.register_script(DONE)
        self._release = redis.register_script(RELEASE)
        self._streak = redis.register_script(STREAK)

    async def claim(
        self, couple_id: str, occurrence_id: str, partner_id: str, kind: str, action: str, *,
        now_ms: int,
    ) -> Claimed:  # fmt: skip
        state, first = await self._engage(
            keys=[self.keys.couple(couple_id), self.keys.engaged(couple_id)],
            args=[
                answer_member(occurrence_id, partner_id, action),
                now_ms,
                LEASE_MS,
                self.keep_ms,
                streak_field(partner_id, kind),
            ],
        )
        text = state.decode() if isinstance(state, bytes) else str(state)
        assert text in ("publish", "done", "busy", "gone")
        return Claimed(cast("ClaimState", text), int(first))

    async def done(self, couple_id: str, occurrence_id: str, partner_id: str, action: str) -> None:
        await self._done(
            keys=[self.keys.engaged(couple_id)],
            args=[answer_member(occurrence_id, partner_id, action)],
        )

    async def release(
        self, couple_id: str, occurrence_id: str, partner_id: str, action: str, *, lease_ms: int
    ) -> None:
        """Give back a claim whose publishing failed (RELEASE)."""
        await self._release(
            keys=[self.keys.engaged(couple_id)],
            args=[answer_member(occurrence_id, partner_id, action), lease_ms],
        )

    async def sent(
        self, couple_id: str, partner_id: str, kind: str, occurrence_id: str, *, limit: int,
        now_ms: int,
    ) -> bool:  # fmt: skip
        """A nudge was sent to the partner; True when it completes an ignored streak."""
        triggered = await self._streak(
            keys=[self.keys.couple(couple_id), self.keys.engaged(couple_id)],
            args=[streak_field(partner_id, kind), occurrence_id, limit, self.keep_ms, now_ms],
        )
        return int(triggered) == 1
