"""The scheduler's Lua scripts. Each runs atomically on one shard's keys (one hash slot)."""

from __future__ import annotations

from typing import Final

__all__ = ["APPLY_PLAN", "DUE", "ERASE", "FIRE", "SET_IF_NEWER"]

APPLY_PLAN: Final = """
-- Replace a couple's profile and schedules if the revision is newer; keep each schedule's seq.
-- KEYS: 1 couple hash, 2 timers zset, 3 legacy schedules hash, 4 tombstones zset
-- ARGV: 1 revision, 2 occurred_ms, 3 couple digest, 4 couple id, 5 n profile fields,
--       then n pairs (field, value), then triples ("<kind code>/<target>", "<nominal_ms>|<spec>",
--       fire_ms): a schedule is the field "<kind code>/<target>" of the couple hash, and its
--       timer member is "<couple id>/<kind code>/<target>"
-- Returns "applied", "stale" (revision not newer) or "erased" (erased after it occurred).
-- A couple hash without "rev" does not exist (every other writer needs it to exist), so a new
-- couple has no old schedules, sequences or dead channels to look up. A new revision restates
-- everything but consent (pause, unsubscribe): the hash is rebuilt, which also gives it back
-- the compact listpack encoding, and channels marked dead get another chance.
-- The layout before issue 7 (records in KEYS[3], listed in the field "sids") is migrated.
local erased = redis.call('ZSCORE', KEYS[4], ARGV[3])
if erased and tonumber(erased) >= tonumber(ARGV[2]) then return 'erased' end
local stored = redis.call('HGET', KEYS[1], 'rev')
if stored and tonumber(stored) >= tonumber(ARGV[1]) then return 'stale' end
local first = 6 + 2 * tonumber(ARGV[5])
local out = {'rev', ARGV[1]}
for i = 6, first - 1 do out[#out + 1] = ARGV[i] end
local seqs = {}
if stored then
  local new = {}
  for i = first, #ARGV, 3 do new[ARGV[i]] = true end
  local prefix = ARGV[4] .. '/'
  local old = redis.call('HGETALL', KEYS[1])
  for i = 1, #old, 2 do
    local field, value = old[i], old[i + 1]
    if string.find(field, '/', 1, true) then
      if new[field] then seqs[field] = string.match(value, '^(%d+)|')
      else redis.call('ZREM', KEYS[2], prefix .. field) end
    elseif field == 'pause' or string.sub(field, 1, 6) == 'pause:'
        or string.sub(field, 1, 6) == 'unsub:' then
      out[#out + 1] = field
      out[#out + 1] = value
    elseif field == 'sids' then
      for sid in string.gmatch(value, '[^,]+') do
        local short = string.sub(sid, #prefix + 1)
        if new[short] then
          local prev = redis.call('HGET', KEYS[3], sid)
          if prev and not seqs[short] then seqs[short] = string.match(prev, '^(%d+)|') end
        else
          redis.call('ZREM', KEYS[2], sid)
        end
        redis.call('HDEL', KEYS[3], sid)
      end
    end
  end
  redis.call('DEL', KEYS[1])
end
for i = first, #ARGV, 3 do
  out[#out + 1] = ARGV[i]
  out[#out + 1] = (seqs[ARGV[i]] or '0') .. '|' .. ARGV[i + 1]
  redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[4] .. '/' .. ARGV[i])
end
redis.call('HSET', KEYS[1], unpack(out))
if erased then redis.call('ZREM', KEYS[4], ARGV[3]) end
return 'applied'
"""

DUE: Final = """
-- Due timers of one shard with their records, in one round trip.
-- KEYS: 1 timers zset, 2 legacy schedules hash
-- ARGV: 1 now ms, 2 batch size, 3 slot pick (any integer >= 0),
--       4 couple key prefix ("<prefix>:couple:{sNN}:", the shard's tag)
-- A timer "<couple>/<kind code>/<target>" has its record in the field "<kind code>/<target>"
-- of the hash ARGV[4] .. "<couple>". Those keys are not in KEYS (the due timers decide which
-- couples); they carry the shard's hash tag, so they are in this script's slot on a cluster.
-- With two or more full batches due, the batch starts at slot (pick mod min(batches, 8)):
-- replicas racing over a burst then mostly take different batches instead of computing the
-- same one and losing the compare-and-set. Otherwise it starts at the earliest timer.
-- Returns a flat list: schedule id, score (an integer), record, ... where record is
-- "<record>\\n<rev>\\n<s0>\\n<s1>\\n<q0>\\n<q1>" (see records.py), a legacy record from
-- KEYS[2], or nil when the record is gone.
local limit = tonumber(ARGV[2])
local offset = 0
local slots = math.min(math.floor(redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1]) / limit), 8)
if slots > 1 then offset = (tonumber(ARGV[3]) % slots) * limit end
local due = redis.call(
  'ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, limit)
local out = {}
for i = 1, #due, 2 do
  local sid = due[i]
  local couple, field = string.match(sid, '^([^/]*)/(.*)$')
  local record = false
  if couple then
    local row = redis.call('HMGET', ARGV[4] .. couple, field, 'rev', 's0', 's1', 'q0', 'q1')
    if row[1] then
      for j = 2, 6 do row[j] = row[j] or '' end
      record = table.concat(row, '\\n')
    end
  end
  if not record then record = redis.call('HGET', KEYS[2], sid) end
  out[#out + 1] = sid
  out[#out + 1] = tonumber(due[i + 1])  -- integral ms: an integer reply
  out[#out + 1] = record
end
return out
"""

FIRE: Final = """
-- Fire due timers with compare-and-set on the timer score: replicas never double-fire.
-- KEYS: 1 timers zset, 2 legacy schedules hash, 3 due stream
-- ARGV: 1 due stream maxlen, 2 couple key prefix (as in DUE), then quintuples
--       (schedule id, expected score, next fire ms or "", next nominal ms or "", payload or "")
-- A record lives in its couple's hash (see DUE), or in KEYS[2] in the layout before issue 7.
-- An empty payload re-arms without publishing (a skipped or dropped occurrence); an empty
-- next nominal keeps the stored one (a deferred retry of the same occurrence).
-- Returns the schedule ids this call lost (their score had changed: another replica fired
-- them, or they were re-planned); it won all others. In a burst it wins nearly every one.
-- The timers' scores are read with one ZMSCORE and the re-arms written with one ZADD (and one
-- ZREM) per call instead of one of each per timer (~5 % of the Redis time per fire).
local function each_slice(args, size, call)  -- unpack() has a stack limit: slices of `size`
  for from = 1, #args, size do call(unpack(args, from, math.min(from + size - 1, #args))) end
end
local ids = {}
for i = 3, #ARGV, 5 do ids[#ids + 1] = ARGV[i] end
local scores = {}
each_slice(ids, 200, function(...)
  for _, score in ipairs(redis.call('ZMSCORE', KEYS[1], ...)) do scores[#scores + 1] = score end
end)
local lost, seen, rearm, gone = {}, {}, {}, {}
for n = 1, #ids do
  local i = 3 + (n - 1) * 5
  local sid, score = ids[n], scores[n]
  -- A schedule twice in one call: only its first step compares with the score it was read at.
  if score and not seen[sid] and tonumber(score) == tonumber(ARGV[i + 1]) then
    seen[sid] = true
    local key, field = KEYS[2], sid
    local couple, short = string.match(sid, '^([^/]*)/(.*)$')
    local record = false
    if couple then
      record = redis.call('HGET', ARGV[2] .. couple, short)
      if record then key, field = ARGV[2] .. couple, short end
    end
    if not record then record = redis.call('HGET', KEYS[2], sid) end
    if record then
      local seq, nominal, spec = string.match(record, '^(%d+)|(%d*)|(.*)$')
      if ARGV[i + 3] ~= '' then nominal = ARGV[i + 3] end
      if ARGV[i + 4] ~= '' then
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', '__data__', ARGV[i + 4])
        seq = tostring(tonumber(seq) + 1)
      end
      if ARGV[i + 2] ~= '' then
        redis.call('HSET', key, field, seq .. '|' .. nominal .. '|' .. spec)
        rearm[#rearm + 1] = ARGV[i + 2]
        rearm[#rearm + 1] = sid
      else
        redis.call('HSET', key, field, seq .. '||' .. spec)
        gone[#gone + 1] = sid
      end
    else
      gone[#gone + 1] = sid
    end
  else
    lost[#lost + 1] = sid
  end
end
each_slice(rearm, 400, function(...) redis.call('ZADD', KEYS[1], ...) end)
each_slice(gone, 200, function(...) redis.call('ZREM', KEYS[1], ...) end)
return lost
"""

ERASE: Final = """
-- Forget a couple: its schedules, timers and every key of its own; leave a one-way tombstone.
-- KEYS: 1 couple hash, 2 timers zset, 3 legacy schedules hash, 4 tombstones zset,
--       5.. other couple keys
-- ARGV: 1 couple digest, 2 occurred_ms, 3 tombstone retention ms, 4 couple id
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.find(field, '/', 1, true) then redis.call('ZREM', KEYS[2], ARGV[4] .. '/' .. field) end
end
local old = redis.call('HGET', KEYS[1], 'sids')  -- the layout before issue 7
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
