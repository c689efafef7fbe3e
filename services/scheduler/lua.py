"""The scheduler's Lua scripts. Each runs atomically on one shard's keys (one hash slot)."""

from __future__ import annotations

from typing import Final

__all__ = ["APPLY_PLAN", "DUE", "ERASE", "FIRE", "SET_IF_NEWER"]

APPLY_PLAN: Final = """
-- Replace a couple's schedules if the revision is newer; keep each schedule's sequence.
-- KEYS: 1 couple hash, 2 timers zset, 3 schedules hash, 4 tombstones zset
-- ARGV: 1 revision, 2 occurred_ms, 3 couple digest, 4 profile json,
--       then triples (schedule id, "<nominal_ms>|<spec>", fire_ms)
-- Returns "applied", "stale" (revision not newer) or "erased" (erased after it occurred).
-- A couple hash without "rev" does not exist (every other writer needs it to exist), so a new
-- couple has no old schedules, sequences or dead channels to look up.
local erased = redis.call('ZSCORE', KEYS[4], ARGV[3])
if erased and tonumber(erased) >= tonumber(ARGV[2]) then return 'erased' end
local stored = redis.call('HGET', KEYS[1], 'rev')
if stored and tonumber(stored) >= tonumber(ARGV[1]) then return 'stale' end
local sids = {}
for i = 5, #ARGV, 3 do table.insert(sids, ARGV[i]) end
if stored then
  local new = {}
  for _, sid in ipairs(sids) do new[sid] = true end
  local old = redis.call('HGET', KEYS[1], 'sids')
  if old then
    for sid in string.gmatch(old, '[^,]+') do
      if not new[sid] then
        redis.call('ZREM', KEYS[2], sid)
        redis.call('HDEL', KEYS[3], sid)
      end
    end
  end
end
for i = 5, #ARGV, 3 do
  local sid = ARGV[i]
  local seq = '0'
  if stored then
    local prev = redis.call('HGET', KEYS[3], sid)
    if prev then seq = string.match(prev, '^(%d+)|') end
  end
  redis.call('HSET', KEYS[3], sid, seq .. '|' .. ARGV[i + 1])
  redis.call('ZADD', KEYS[2], ARGV[i + 2], sid)
end
if stored then
  -- A new revision restates the channels: give channels marked dead another chance.
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(field, 1, 5) == 'dead:' then redis.call('HDEL', KEYS[1], field) end
  end
end
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'profile', ARGV[4], 'sids', table.concat(sids, ','))
if erased then redis.call('ZREM', KEYS[4], ARGV[3]) end
return 'applied'
"""

DUE: Final = """
-- Due timers of one shard with their records, in one round trip.
-- KEYS: 1 timers zset, 2 schedules hash
-- ARGV: 1 now ms, 2 batch size, 3 slot pick (any integer >= 0)
-- With two or more full batches due, the batch starts at slot (pick mod min(batches, 8)):
-- replicas racing over a burst then mostly take different batches instead of computing the
-- same one and losing the compare-and-set. Otherwise it starts at the earliest timer.
-- Returns a flat list: schedule id, score, record (nil when the record is gone), ...
local limit = tonumber(ARGV[2])
local offset = 0
local slots = math.min(math.floor(redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1]) / limit), 8)
if slots > 1 then offset = (tonumber(ARGV[3]) % slots) * limit end
local due = redis.call(
  'ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, limit)
local out = {}
for i = 1, #due, 2 do
  out[#out + 1] = due[i]
  out[#out + 1] = due[i + 1]
  out[#out + 1] = redis.call('HGET', KEYS[2], due[i])
end
return out
"""

FIRE: Final = """
-- Fire due timers with compare-and-set on the timer score: replicas never double-fire.
-- KEYS: 1 timers zset, 2 schedules hash, 3 due stream
-- ARGV: 1 due stream maxlen, then quintuples
--       (schedule id, expected score, next fire ms or "", next nominal ms or "", payload or "")
-- An empty payload re-arms without publishing (a skipped or dropped occurrence); an empty
-- next nominal keeps the stored one (a deferred retry of the same occurrence).
-- Returns the schedule ids this call won.
local won = {}
for i = 2, #ARGV, 5 do
  local sid = ARGV[i]
  local score = redis.call('ZSCORE', KEYS[1], sid)
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    local record = redis.call('HGET', KEYS[2], sid)
    if record then
      local seq, nominal, spec = string.match(record, '^(%d+)|(%d*)|(.*)$')
      if ARGV[i + 3] ~= '' then nominal = ARGV[i + 3] end
      if ARGV[i + 4] ~= '' then
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', '__data__', ARGV[i + 4])
        seq = tostring(tonumber(seq) + 1)
      end
      if ARGV[i + 2] ~= '' then
        redis.call('HSET', KEYS[2], sid, seq .. '|' .. nominal .. '|' .. spec)
        redis.call('ZADD', KEYS[1], ARGV[i + 2], sid)
      else
        redis.call('HSET', KEYS[2], sid, seq .. '||' .. spec)
        redis.call('ZREM', KEYS[1], sid)
      end
    else
      redis.call('ZREM', KEYS[1], sid)
    end
    table.insert(won, sid)
  end
end
return won
"""

ERASE: Final = """
-- Forget a couple: its schedules, timers and every key of its own; leave a one-way tombstone.
-- KEYS: 1 couple hash, 2 timers zset, 3 schedules hash, 4 tombstones zset, 5.. other couple keys
-- ARGV: 1 couple digest, 2 occurred_ms, 3 tombstone retention ms
local old = redis.call('HGET', KEYS[1], 'sids')
if old then
  for sid in string.gmatch(old, '[^,]+') do
    redis.call('ZREM', KEYS[2], sid)
    redis.call('HDEL', KEYS[3], sid)
  end
end
redis.call('DEL', KEYS[1])
for i = 5, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('ZADD', KEYS[4], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
return 1
"""

SET_IF_NEWER: Final = """
-- Last-writer-wins field of an existing couple: "<occurred_ms>|<value>" replaces an older one.
-- KEYS: 1 couple hash   ARGV: 1 field, 2 occurred_ms, 3 value
-- Returns 1 if written, 0 if older than what is stored, -1 if the couple is unknown.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and tonumber(string.match(cur, '^(%d+)')) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return 1
"""
