"""Consent and deliverability in the couple hash: resubscribes and soft bounces. Redis edge.

The couple hash fields involved (services/common/couple_state.py):

    unsub:<partner>:<kind>:<channel>   "<occurred_ms>|1" unsubscribed, "<ms>|complaint" after
                                       a spam report, "<ms>|0" resubscribed (cleared)
    dead:<partner>:<channel>           "<ms>|hard" or "<ms>|soft" after bounces (the notifier
                                       writes "<ms>" after an SMTP 5xx)
    soft:<partner>:<channel>           "<count>|<first ms>": soft bounces counted in a window

Every write is last-writer-wins by the event's occurred_ms, like SET_IF_NEWER (lua.py), and
never recreates a couple that does not exist (an erasure may have won), nor touches one that
was erased after the event occurred and created again since (lua.ERASED_SINCE). A resubscribe
for a couple not created yet is parked as SET_IF_NEWER parks an unsubscribe (Keys.parked); a
bounce is not (the preferences.set that creates the couple gives every address its chance).
A preferences.set keeps unsub fields and drops dead and soft ones (APPLY_PLAN: a new address
gets a new chance).
"""

from __future__ import annotations

from typing import Final

import redis.asyncio as aioredis

from couples_nudge.common.keys import Keys, couple_digest
from couples_nudge.scheduler import lua

__all__ = ["RESUBSCRIBE", "SOFT_BOUNCE", "ConsentStore"]

RESUBSCRIBE: Final = (
    lua.BUMP
    + lua.ERASED_SINCE
    + """
-- Clear one partner's unsubscribes inside a scope (a kind or 'all', a channel or 'all').
-- KEYS: 1 couple hash, 2 the shard's change counter (lua.BUMP), 3 tombstones zset,
--       4 the couple's parked consent (Keys.parked)
-- ARGV: 1 partner id, 2 kind or 'all', 3 channel or 'all', 4 occurred_ms, 5 couple digest,
--       6 lua.PARKED_TTL_MS
-- An unsubscribe field is inside the scope when its kind and its channel both are ('all' in
-- the scope covers every value, 'all' included). Each one not newer than the event becomes
-- "<occurred_ms>|0"; so does the scope's own field, so an older unsubscribe of exactly this
-- scope that arrives later is stale. A couple that does not exist yet has this done to its
-- parked fields instead (lua.SET_IF_NEWER: APPLY_PLAN moves them into the couple it creates).
-- Returns how many were in force and are cleared, -2 if the couple was erased after the
-- event occurred, or -3 if parked.
if erased_since(KEYS[3], ARGV[5], ARGV[4]) then return -2 end
local into = 1
if redis.call('EXISTS', KEYS[1]) == 0 then
  into = 4  -- the parked hash is no state FIRE reads: no bump
else
  bump(KEYS[2])
end
local prefix = 'unsub:' .. ARGV[1] .. ':'
local at = tonumber(ARGV[4])
local cleared = 0
local fields = redis.call('HGETALL', KEYS[into])
for i = 1, #fields, 2 do
  local field, value = fields[i], fields[i + 1]
  if string.sub(field, 1, #prefix) == prefix then
    local kind, channel = string.match(string.sub(field, #prefix + 1), '^([^:]*):(.*)$')
    if (ARGV[2] == 'all' or kind == ARGV[2]) and (ARGV[3] == 'all' or channel == ARGV[3]) then
      local ms = tonumber(string.match(value, '^(%d+)')) or 0
      if ms <= at then
        if string.sub(value, -2) ~= '|0' then cleared = cleared + 1 end
        redis.call('HSET', KEYS[into], field, ARGV[4] .. '|0')
      end
    end
  end
end
local own = prefix .. ARGV[2] .. ':' .. ARGV[3]
if redis.call('HEXISTS', KEYS[into], own) == 0 then
  redis.call('HSET', KEYS[into], own, ARGV[4] .. '|0')
end
if into == 4 then
  redis.call('PEXPIRE', KEYS[4], ARGV[6])
  return -3
end
return cleared
"""
)

SOFT_BOUNCE: Final = (
    lua.BUMP
    + lua.ERASED_SINCE
    + """
-- Count one soft bounce of a partner's channel; at the limit, mark the channel dead.
-- KEYS: 1 couple hash, 2 the shard's change counter (lua.BUMP), 3 tombstones zset
-- ARGV: 1 partner id, 2 channel, 3 occurred_ms, 4 limit, 5 window ms, 6 couple digest
-- The field holds "<count>|<first ms>|<newest ms>" ("<count>|<first ms>" before 2026-12-07).
-- The count restarts when the first bounce counted is more than a window away. A bounce not
-- newer than the newest one counted is taken for a redelivery of it and not counted again
-- (events are applied at least once: a batch tried again, an entry reclaimed); relays report
-- in order, and one reported out of order only delays the limit by a bounce. Returns the
-- count (the limit or more: the channel is now dead, the count is dropped), -1 if the
-- couple is unknown, or -2 if it was erased after the bounce occurred.
if erased_since(KEYS[3], ARGV[6], ARGV[3]) then return -2 end
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local field = 'soft:' .. ARGV[1] .. ':' .. ARGV[2]
local at = tonumber(ARGV[3])
local count, first = 0, at
local current = redis.call('HGET', KEYS[1], field)
if current then
  local c, f, newest = string.match(current, '^(%d+)|(%d+)|?(%d*)$')
  if c and newest ~= '' and at <= tonumber(newest) then return tonumber(c) end
  if c and math.abs(at - tonumber(f)) <= tonumber(ARGV[5]) then
    count, first = tonumber(c), math.min(tonumber(f), at)
  end
end
bump(KEYS[2])
count = count + 1
if count >= tonumber(ARGV[4]) then
  local dead = 'dead:' .. ARGV[1] .. ':' .. ARGV[2]
  if redis.call('HEXISTS', KEYS[1], dead) == 0 then
    redis.call('HSET', KEYS[1], dead, ARGV[3] .. '|soft')
  end
  redis.call('HDEL', KEYS[1], field)
else
  redis.call('HSET', KEYS[1], field, count .. '|' .. first .. '|' .. ARGV[3])
end
return count
"""
)


class ConsentStore:
    """The scripts above, on one couple hash each."""

    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        self._resubscribe = redis.register_script(RESUBSCRIBE)
        self._soft_bounce = redis.register_script(SOFT_BOUNCE)

    async def resubscribe(
        self, couple_id: str, partner_id: str, kind: str, channel: str, occurred_ms: int
    ) -> int:
        """How many unsubscribes were cleared; -2: erased since; -3: parked (no couple yet)."""
        cleared = await self._resubscribe(
            keys=[*self._keys(couple_id), self.keys.parked(couple_id)],
            args=[
                partner_id,
                kind,
                channel,
                occurred_ms,
                couple_digest(couple_id),
                lua.PARKED_TTL_MS,
            ],
        )
        return int(cleared)

    async def soft_bounce(
        self,
        couple_id: str,
        partner_id: str,
        channel: str,
        occurred_ms: int,
        *,
        limit: int,
        window_ms: int,
    ) -> int:
        """The soft bounces counted in the window (>= limit: the channel is dead); -1: unknown
        couple; -2: erased since the bounce."""
        count = await self._soft_bounce(
            keys=self._keys(couple_id),
            args=[partner_id, channel, occurred_ms, limit, window_ms, couple_digest(couple_id)],
        )
        return int(count)

    def _keys(self, couple_id: str) -> list[str]:
        """The couple hash, its shard's change counter and tombstones: every script's KEYS."""
        shard = self.keys.shard_of(couple_id)
        return [self.keys.couple(couple_id), self.keys.changes(shard), self.keys.tombstones(shard)]
