"""The scheduler's Lua scripts. Each runs atomically on one shard's keys (one hash slot).

The shard's change counter (Keys.changes, BUMP): FIRE publishes a step only if the record and
couple fields it was prepared from (state_of) are still what was read. AHEAD returns the
counter with its page, and a FIRE call given that value compares it once: while it has not
moved, FIRE takes the states as read instead of reading each again (one HMGET a fire, ~2 us of
Redis per fire, ~20 % of FIRE). The invariant this rests on: every script that can change what
state_of returns for a timer of the shard (a record, "rev", "s0", "s1", "q0", "q1", the couple
hash itself, the legacy hash) bumps the counter in the same script, with two exceptions: FIRE
(and FIRE_AHEAD, its form for prepared steps) rewrites only the record of a timer whose score
it moves in the same call, and the score is still compared for every step; APPLY_PLAN creating
a couple changes no state a reader can have taken as read (below). The
scheduler's other writers of the couple hash (consent, snoozes, pauses, cadence levels) bump
too, though FIRE does not read what they write. The notifier's writes (lua in
services/notifier: "dead:" fields) do not: FIRE never reads them.
tests/unit/test_change_counter.py lists every script that writes a couple hash or timers and
fails when one does not bump and is not one of those exceptions. A bump sets the counter to
the server's clock in microseconds (or one more than it was, if that is later), not a plain
count: after a loss of state, or a failover to a replica that missed the last bumps, a count
could come back to a value read before with other records behind it; a clock reading does not
(as long as the servers' clocks agree to within the time a failover takes). Redis must not
evict keys (`noeviction`, docs/operations.md): an evicted record would not bump the counter.
A FIRE call without a counter value (`tick`'s, or a chunk read over pages apart) checks every
state as before. Prepared steps read at one counter value go through FIRE_AHEAD, which sends no
states at all and does nothing once the counter has moved (the caller then sends them through
FIRE): what a burst costs Redis at its instant is per argument and per call as much as per
command: 17-24 % less per fire at the instant (docs/performance.md).
FIRE_AHEAD is sent each step as its couple id and makes the schedule id "<couple>/<field>"
from its group's record field: the client splits the schedule id at its first "/", where
state_of does, so the timer member, couple key and field are the ones AHEAD read.

APPLY_PLAN creating a couple (its hash has no "rev", so it does not exist: see APPLY_PLAN) does
not bump. FIRE takes as read only a state read from a couple hash (one holding "\\n"); no such
state of this couple can have been read before the script, its hash not existing, and a timer
of it read meanwhile had no state (or a legacy one), which FIRE always reads again; the other
states of the shard it does not touch. It still bumps a shard without a counter (its first
couple, or after a loss of state), so that lookaheads read one. A known couple's new revision
bumps. The bump was ~12 % of APPLY_PLAN's Redis instructions on bulk ingestion of new couples
(docs/performance.md).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "AHEAD",
    "APPLY_PLAN",
    "BUMP",
    "CLAIM",
    "DUE",
    "ERASE",
    "ERASED_SINCE",
    "FIRE",
    "FIRE_AHEAD",
    "HEARTBEAT",
    "JAR_ADD",
    "JAR_REMOVE",
    "LEASE",
    "PARKED_TTL_MS",
    "SET_IF_NEWER",
]

# How long consent applied before its couple exists waits for the couple's preferences.set
# (Keys.parked, SET_IF_NEWER): a day after its last write, far longer than replicas or a
# republishing publisher take to deliver the set; a couple that never comes leaves nothing.
PARKED_TTL_MS: Final = 86_400_000

BUMP: Final = """
-- bump(key): move the shard's change counter (see the module docstring) to the server's clock
-- in microseconds, or one past its value if that is not behind: it only grows on a server,
-- and a server that lost it (a loss of state, a failover to a replica that had not yet seen
-- the last bumps) gives a value no read before saw, its clock being past those reads.
local function bump(key)  -- two calls (TIME, SET ... GET); a third only if the clock is behind
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local old = tonumber(redis.call('SET', key, string.format('%.0f', now), 'GET'))
  if old and old >= now then redis.call('SET', key, string.format('%.0f', old + 1)) end
end
"""

# Erasure's tombstone outlives the couple (NUDGE_TOMBSTONE_RETENTION), also when a newer
# preferences.set creates it again: every script that applies a couple's event asks it first,
# so an event from before the erasure (a replay, a redelivery, a late publisher) never brings
# back what was erased, whether the couple exists again or not.
ERASED_SINCE: Final = """
-- erased_since(tombstones, digest, at): the couple was erased at or after `at` (ms).
local function erased_since(key, digest, at)
  local erased = redis.call('ZSCORE', key, digest)
  return erased ~= false and tonumber(erased) >= tonumber(at)
end
"""

APPLY_PLAN: Final = (
    BUMP
    + ERASED_SINCE
    + """
-- Replace a couple's profile and schedules if the revision is newer; keep each schedule's seq.
-- KEYS: 1 couple hash, 2 timers zset, 3 legacy schedules hash, 4 tombstones zset,
--       5 the shard's change counter (BUMP), 6 the couple's parked consent (Keys.parked)
-- ARGV: 1 a JSON array of strings, decoded by cjson (C) into `arg`: 1 revision, 2 occurred_ms,
--       3 couple digest, 4 couple id (also the field "id"), 5 r schedules, then p pairs
--       (profile field but "id", value), then r pairs (record field "<kind code>/<target>",
--       "0|<nominal_ms>|<spec>": the record of a new schedule), then r pairs (fire_ms, timer
--       member "<couple id>/<kind code>/<target>"), in the same order: a schedule is the field
--       "<kind code>/<target>" of the couple hash. Every element is a JSON string (numbers
--       too: tonumber and ZADD read the text as they read an argument), so what is written is
--       byte for byte what the same strings as arguments of their own wrote (store._json).
--       One argument instead of 6 + 2p + 4r: the client packed each with a sprintf (~1.3k
--       instructions); Redis parses fewer and cjson's decoding costs it about what that saves
--       (docs/performance.md, branch h/applyargs).
-- Returns "applied", "stale" (revision not newer) or "erased" (erased after it occurred).
-- A couple hash without "rev" does not exist (every other writer needs it to exist), so a new
-- couple has no old schedules, sequences or dead channels to look up: its fields and timers
-- are written as given, one HSET and one ZADD over ranges of the decoded array (no other
-- table is built: a tenth of the script's CPU on bulk ingestion), and the consent fields
-- parked for it (SET_IF_NEWER, RESUBSCRIBE) are moved in: the set writes no such field, so
-- each parked one is the newest there is (one HGETALL of KEYS[6], for new couples only).
-- A new revision of a known couple restates everything but consent (pause, unsubscribe) and
-- the partners' answers (snoozes, the listening cadence's levels): the hash is rebuilt, which
-- also gives it back the compact listpack encoding, and channels marked dead get another
-- chance; each record kept keeps its seq (the "0" before its first "|" is replaced by the
-- stored one).
-- The layout before issue 7 (records in KEYS[3], listed in the field "sids") is migrated.
local arg = cjson.decode(ARGV[1])
local rev, digest, couple = arg[1], arg[3], arg[4]
if erased_since(KEYS[4], digest, arg[2]) then return 'erased' end
local stored = redis.call('HGET', KEYS[1], 'rev')
if stored and tonumber(stored) >= tonumber(rev) then return 'stale' end
-- A new couple changes no state a lookahead can have read (the module docstring): no bump,
-- but for the shard's first (without a counter, prepared fires could not use FIRE_AHEAD).
if stored or redis.call('EXISTS', KEYS[5]) == 0 then bump(KEYS[5]) end
local timers = #arg - 2 * tonumber(arg[5]) + 1
local records = timers - 2 * tonumber(arg[5])
if not stored then
  redis.call('HSET', KEYS[1], 'rev', rev, 'id', couple, unpack(arg, 6, timers - 1))
  local parked = redis.call('HGETALL', KEYS[6])  -- consent applied before it (SET_IF_NEWER)
  if #parked > 0 then
    redis.call('HSET', KEYS[1], unpack(parked))
    redis.call('DEL', KEYS[6])
  end
else
  local out = {'rev', rev, 'id', couple}
  for i = 6, records - 1 do out[#out + 1] = arg[i] end
  local new, seqs = {}, {}
  for i = records, timers - 1, 2 do new[arg[i]] = true end
  local prefix = couple .. '/'
  local old = redis.call('HGETALL', KEYS[1])
  for i = 1, #old, 2 do
    local field, value = old[i], old[i + 1]
    if string.find(field, '/', 1, true) then
      if new[field] then seqs[field] = string.match(value, '^(%d+)|')
      else redis.call('ZREM', KEYS[2], prefix .. field) end
    elseif field == 'pause' or string.sub(field, 1, 6) == 'pause:'
        or string.sub(field, 1, 6) == 'unsub:' or string.sub(field, 1, 4) == 'snz:'
        or string.sub(field, 1, 4) == 'lvl:' then
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
  for i = records, timers - 1, 2 do
    local seq = seqs[arg[i]]
    out[#out + 1] = arg[i]
    out[#out + 1] = seq and seq .. string.sub(arg[i + 1], 2) or arg[i + 1]
  end
  redis.call('HSET', KEYS[1], unpack(out))
end
if timers <= #arg then redis.call('ZADD', KEYS[2], unpack(arg, timers)) end  -- every timer
return 'applied'  -- a tombstone stays (ERASED_SINCE): older events of the couple stay out
"""
)

# What DUE, AHEAD and FIRE read of one timer's record, in one place so that FIRE compares
# exactly what the others returned. A timer "<couple>/<kind code>/<target>" has its record in the
# field "<kind code>/<target>" of the hash prefix .. "<couple>", returned joined with what the
# couple's records share: "<record>\\n<rev>\\n<s0>\\n<s1>\\n<q0>\\n<q1>" (see records.py);
# else a record of the layout before issue 7 from the shard hash `legacy`. Also returns the key
# and field holding the record; false when there is none. Those couple keys are not in KEYS
# (the timers decide which couples); they carry the shard's hash tag, so they are in the
# script's slot on a cluster.
_STATE_OF = """
local function state_of(prefix, legacy, sid)
  local couple, field = string.match(sid, '^([^/]*)/(.*)$')
  if couple then
    local row = redis.call('HMGET', prefix .. couple, field, 'rev', 's0', 's1', 'q0', 'q1')
    if row[1] then
      for j = 2, 6 do row[j] = row[j] or '' end
      return table.concat(row, '\\n'), prefix .. couple, field
    end
  end
  local record = redis.call('HGET', legacy, sid)
  if record then return record, legacy, sid end
  return false
end
"""

DUE: Final = (
    _STATE_OF
    + """
-- Due timers of one shard with their records, in one round trip.
-- KEYS: 1 timers zset, 2 legacy schedules hash
-- ARGV: 1 now ms, 2 batch size, 3 slot pick (any integer >= 0),
--       4 couple key prefix ("<prefix>:couple:{sNN}:", the shard's tag)
-- With two or more full batches due, the batch starts at slot (pick mod min(batches, 8)):
-- replicas racing over a burst then mostly take different batches instead of computing the
-- same one and losing the compare-and-set. Otherwise it starts at the earliest timer.
-- Returns a flat list: schedule id, score (an integer), state (state_of; nil: no record), ...
local limit = tonumber(ARGV[2])
local offset = 0
local slots = math.min(math.floor(redis.call('ZCOUNT', KEYS[1], '-inf', ARGV[1]) / limit), 8)
if slots > 1 then offset = (tonumber(ARGV[3]) % slots) * limit end
local due = redis.call(
  'ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'WITHSCORES', 'LIMIT', offset, limit)
local out = {}
for i = 1, #due, 2 do
  out[#out + 1] = due[i]
  out[#out + 1] = tonumber(due[i + 1])  -- integral ms: an integer reply
  out[#out + 1] = state_of(ARGV[4], KEYS[2], due[i])
end
return out
"""
)

AHEAD: Final = (
    _STATE_OF
    + """
-- Timers due soon (after < score <= horizon) with their records, read before their instant so
-- that the timer loop can prepare their FIRE calls (timer_loop, lookahead.py). Reads nothing
-- due already: that is DUE's. Pages in the zset's order, resuming after the member `cursor`
-- wherever it is now (ZRANK), or from the start of the window when it is gone: a caller
-- keeps what it prepared by schedule id, so a page read twice costs time, not correctness.
-- KEYS: 1 timers zset, 2 legacy schedules hash, 3 the shard's change counter
-- ARGV: 1 after ms, 2 horizon ms, 3 limit, 4 couple key prefix, 5 cursor member or ""
-- Returns the change counter as the page was read (false: none yet; FIRE's `read at`), then as
-- DUE does: schedule id, score, state, ...; fewer than `limit` timers: the last page.
local limit = tonumber(ARGV[3])
local after, horizon = tonumber(ARGV[1]), tonumber(ARGV[2])
local rows
local rank = ARGV[5] ~= '' and redis.call('ZRANK', KEYS[1], ARGV[5])
if rank then
  rows = redis.call('ZRANGE', KEYS[1], rank + 1, rank + limit, 'WITHSCORES')
else
  rows = redis.call(
    'ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], ARGV[2], 'WITHSCORES', 'LIMIT', 0, limit)
end
local out = {redis.call('GET', KEYS[3])}
for i = 1, #rows, 2 do
  local score = tonumber(rows[i + 1])
  if score > horizon then break end
  if score > after then
    out[#out + 1] = rows[i]
    out[#out + 1] = score
    out[#out + 1] = state_of(ARGV[4], KEYS[2], rows[i])
  end
end
return out
"""
)

# What FIRE and FIRE_AHEAD share: slices under unpack()'s stack limit, and the timers a call
# re-arms or removes, written with one ZADD and one ZREM per call instead of one per timer.
_TIMERS = """
local function each_slice(args, size, call)  -- unpack() has a stack limit: slices of `size`
  for from = 1, #args, size do call(unpack(args, from, math.min(from + size - 1, #args))) end
end
local rearm, gone = {}, {}
local function rearm_at(sid, next_ms)  -- next_ms "": the rule never fires again
  if next_ms ~= '' then
    rearm[#rearm + 1] = next_ms
    rearm[#rearm + 1] = sid
  else
    gone[#gone + 1] = sid
  end
end
local function write_timers(timers)
  each_slice(rearm, 400, function(...) redis.call('ZADD', timers, ...) end)
  each_slice(gone, 200, function(...) redis.call('ZREM', timers, ...) end)
end
"""

FIRE: Final = (
    _STATE_OF
    + _TIMERS
    + """
-- Fire due timers with compare-and-set on the timer score: replicas never double-fire.
-- KEYS: 1 timers zset, 2 legacy schedules hash, 3 due stream, 4 the shard's change counter
-- ARGV: 1 due stream maxlen, 2 couple key prefix (as in DUE), 3 now ms,
--       4 the change counter when every step's state was read (AHEAD's), or "" (unknown),
--       then sextuples (schedule id, expected score, next fire ms or "", state as read or ""
--       (none), record to write or "", payload or "")
-- A step goes ahead only if its timer holds the expected score, that score is not after `now`
-- and its record and the couple fields it shares (state_of) are still what the caller read:
-- a revision, an erasure, a re-created couple or a re-plan between the read and this call
-- (a lookahead read can be seconds old) never publishes a payload built from the old state.
-- While the change counter is still ARGV[4], nothing but FIRE (which moves the score of what
-- it rewrites) has changed a state since the read (the module docstring), so a step's state
-- read as a record of its couple hash is taken as read, not read again.
-- Then it publishes the payload (if any), writes the record the caller computed (next seq and
-- nominal; the caller read the record it replaces) and re-arms the timer, or removes it when
-- there is no next fire or no record.
-- Returns {lost, stale}: the schedule ids whose score had changed (another replica fired them,
-- or they were re-planned or erased), and those whose score held but whose state did not (or
-- whose score is still ahead): their timers are untouched and the next DUE reads them afresh.
-- The timers' scores are read with one ZMSCORE per call (and written with _TIMERS').
local ids = {}
for i = 5, #ARGV, 6 do ids[#ids + 1] = ARGV[i] end
local unchanged = ARGV[4] ~= '' and redis.call('GET', KEYS[4]) == ARGV[4]
local scores = {}
each_slice(ids, 200, function(...)
  for _, score in ipairs(redis.call('ZMSCORE', KEYS[1], ...)) do scores[#scores + 1] = score end
end)
local now = tonumber(ARGV[3])
local lost, stale, seen = {}, {}, {}
for n = 1, #ids do
  local i = 5 + (n - 1) * 6
  local sid, score, expected = ids[n], scores[n], tonumber(ARGV[i + 1])
  -- A schedule twice in one call: only its first step compares with the score it was read at.
  if not score or seen[sid] or tonumber(score) ~= expected then
    lost[#lost + 1] = sid
  else
    seen[sid] = true
    local state, key, field
    if unchanged and string.find(ARGV[i + 3], '\\n', 1, true) then  -- a couple hash's record
      local couple
      couple, field = string.match(sid, '^([^/]*)/(.*)$')
      state, key = ARGV[i + 3], ARGV[2] .. couple
    else
      state, key, field = state_of(ARGV[2], KEYS[2], sid)
    end
    if expected > now or (state or '') ~= ARGV[i + 3] then
      stale[#stale + 1] = sid
    elseif not state then
      gone[#gone + 1] = sid
    else
      if ARGV[i + 5] ~= '' then
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[1], '*', '__data__', ARGV[i + 5])
      end
      if ARGV[i + 4] ~= '' then redis.call('HSET', key, field, ARGV[i + 4]) end
      rearm_at(sid, ARGV[i + 2])
    end
  end
end
write_timers(KEYS[1])
return {lost, stale}
"""
)

FIRE_AHEAD: Final = (
    _TIMERS
    + """
-- FIRE for steps prepared ahead (lookahead.py) while the shard's change counter is still the
-- value every step's state was read at: FIRE would take each state as read (the module
-- docstring), so the states are not sent at all, nor each step's expected score (the steps of
-- one call share their instant), and steps re-armed at one instant for one record field share
-- their next fire and field ("<kind code>/<target>": a burst's date nights all have one).
-- Redis's work per fire at the instant is what a burst's lateness is made of, and each
-- argument costs it two allocations and a hash (the call's string and Lua's), as does each
-- string the script makes. So a step is sent as its couple id, and one concatenation each
-- makes its timer member and its couple hash's key (splitting the schedule id with
-- string.match was ~4 % of a fire's instructions); re-arming is inlined, not a Lua call.
-- KEYS: 1 timers zset, 2 due stream, 3 the shard's change counter
-- ARGV: 1 due stream maxlen, 2 couple key prefix (as in DUE), 3 now ms, 4 the change counter
--       every step's state was read at (AHEAD's), 5 the score every step's timer was read at,
--       then groups: next fire ms (or "": no next fire), record field, k, then k triples
--       (couple id: the schedule id is "<couple id>/<field>", record to write or "", payload
--       or "")
-- Returns false and does nothing when the counter has moved (or is gone): the caller then
-- sends the steps through FIRE, which compares each state. Else as FIRE: {lost, stale}, each
-- step compared with its timer's score (exactly once), stale when the instant is still ahead.
-- The due stream is trimmed once per call (XTRIM) rather than by each XADD.
local call = redis.call
if call('GET', KEYS[3]) ~= ARGV[4] then return false end
local now, expected, prefix, due = tonumber(ARGV[3]), tonumber(ARGV[5]), ARGV[2], KEYS[2]
local lost, stale, seen = {}, {}, {}
local published = false
local g = 6
while g <= #ARGV do
  local next_ms, field, first = ARGV[g], ARGV[g + 1], g + 3
  local last, tail = g + 2 + 3 * tonumber(ARGV[g + 2]), '/' .. field
  local ids, scores, k = {}, nil, 0
  for i = first, last, 3 do
    k = k + 1
    ids[k] = ARGV[i] .. tail
  end
  if k <= 200 then  -- a chunk's group: ZMSCORE's reply as it comes, not copied
    scores = call('ZMSCORE', KEYS[1], unpack(ids))
  else
    scores = {}
    each_slice(ids, 200, function(...)
      for _, score in ipairs(call('ZMSCORE', KEYS[1], ...)) do scores[#scores + 1] = score end
    end)
  end
  local rearmed, armed = next_ms ~= '', #rearm
  for n = 1, k do
    local i = first + (n - 1) * 3
    local sid, score = ids[n], scores[n]
    -- The score as ZMSCORE writes it is the text sent (integral ms): compared as text first.
    if not score or seen[sid] or (score ~= ARGV[5] and tonumber(score) ~= expected) then
      lost[#lost + 1] = sid
    elseif expected > now then
      stale[#stale + 1] = sid
    else
      seen[sid] = true
      if ARGV[i + 2] ~= '' then
        call('XADD', due, '*', '__data__', ARGV[i + 2])
        published = true
      end
      if ARGV[i + 1] ~= '' then call('HSET', prefix .. ARGV[i], field, ARGV[i + 1]) end
      if rearmed then  -- rearm_at's work, without a Lua call (or a length) per fire
        rearm[armed + 1], rearm[armed + 2] = next_ms, sid
        armed = armed + 2
      else
        gone[#gone + 1] = sid
      end
    end
  end
  g = last + 1
end
write_timers(KEYS[1])
if published then call('XTRIM', due, 'MAXLEN', '~', ARGV[1]) end
return {lost, stale}
"""
)

LEASE: Final = """
-- Hold, renew or give up a shard's firing lease (services/scheduler/leases.py).
-- KEYS: 1 the shard's lease; ARGV: 1 the replica's holder id, 2 time to live ms (0: release)
-- Returns 1 when the caller holds it for the time to live from now, else 0 (another replica
-- does, or the caller released it).
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then
  if holder then redis.call('DEL', KEYS[1]) end
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""

HEARTBEAT: Final = """
-- A scheduler replica says it is alive; returns how many are (seen within the time to live).
-- KEYS: 1 the replicas zset; ARGV: 1 holder id, 2 time to live ms (0: leaving)
-- Dated by the server's clock, the one clock every replica shares: dated by each host's, a
-- replica killed with its clock an hour ahead was counted live for that hour (under `fair`,
-- the survivors held too few shards and the rest fired nothing), and one behind was dropped.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
if ttl == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return redis.call('ZCARD', KEYS[1])
end
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
return redis.call('ZCARD', KEYS[1])
"""

CLAIM: Final = """
-- The next chunk of an instant's prepared fires for the calling replica (timer_loop.fire_ahead):
-- replicas count the chunks off one counter, which expires once the instant is long past.
-- KEYS: 1 the instant's counter; ARGV: 1 its time to live, ms. Returns 0, 1, 2, ...
local taken = redis.call('INCR', KEYS[1])
if taken == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return taken - 1
"""

ERASE: Final = (
    BUMP
    + """
-- Forget a couple: its schedules, timers and every key of its own; leave a one-way tombstone.
-- KEYS: 1 couple hash, 2 timers zset, 3 legacy schedules hash, 4 tombstones zset,
--       5 the shard's change counter (BUMP), 6.. other couple keys
-- ARGV: 1 couple digest, 2 occurred_ms, 3 tombstone retention ms, 4 couple id
bump(KEYS[5])
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
for i = 6, #KEYS do redis.call('DEL', KEYS[i]) end
redis.call('ZADD', KEYS[4], 'GT', ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
return 1
"""
)

SET_IF_NEWER: Final = (
    BUMP
    + ERASED_SINCE
    + """
-- Last-writer-wins field of a couple: "<occurred_ms>|<value>" replaces an older one.
-- KEYS: 1 couple hash, 2 the shard's change counter (BUMP), 3 tombstones zset,
--       4 (optional) the couple's parked consent (Keys.parked)
-- ARGV: 1 field, 2 occurred_ms, 3 value, 4 couple digest, 5 PARKED_TTL_MS (with KEYS[4])
-- A couple that does not exist yet has its field written to KEYS[4] instead, by the same
-- rule, for APPLY_PLAN to move into the couple hash it creates (a pause applied by one
-- replica before the preferences.set another holds); without KEYS[4] nothing is written.
-- Returns 1 if written, 0 if older than what is stored (or parked), -1 if the couple is
-- unknown, -2 if it was erased after the event occurred (ERASED_SINCE), -3 if parked.
if erased_since(KEYS[3], ARGV[4], ARGV[2]) then return -2 end
local into = 1
if redis.call('EXISTS', KEYS[1]) == 0 then
  if #KEYS < 4 then return -1 end
  into = 4
end
local cur = redis.call('HGET', KEYS[into], ARGV[1])
if cur and tonumber(string.match(cur, '^(%d+)')) > tonumber(ARGV[2]) then return 0 end
if into == 4 then  -- the parked hash is no state FIRE reads: no bump
  redis.call('HSET', KEYS[4], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
  redis.call('PEXPIRE', KEYS[4], ARGV[5])
  return -3
end
bump(KEYS[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '|' .. ARGV[3])
return 1
"""
)

JAR_ADD: Final = (
    ERASED_SINCE
    + """
-- One idea into a couple's date jar (the jar hash has the couple's shard tag).
-- KEYS: 1 couple hash, 2 jar hash, 3 tombstones zset
-- ARGV: 1 idea id, 2 entry JSON, 3 most ideas a jar holds, 4 couple digest, 5 occurred_ms,
--       6 the partner who added it
-- Returns "added"; "present" (the id is in the jar: a replay, or the same id again: the first
-- text stays); "full"; "not_partner" (added_by is not one of the couple's partners);
-- "unknown_couple" (no preferences.set yet); "erased" (erased after the idea was added).
if erased_since(KEYS[3], ARGV[4], ARGV[5]) then return 'erased' end
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown_couple' end
local partner = false
for _, s in ipairs(redis.call('HMGET', KEYS[1], 's0', 's1')) do
  if s and string.match(s, '^([^|]*)') == ARGV[6] then partner = true end
end
if not partner then return 'not_partner' end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 'present' end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[3]) then return 'full' end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 'added'
"""
)

JAR_REMOVE: Final = """
-- One idea out of a couple's date jar, and out of the set drawn since the last refill.
-- KEYS: 1 jar hash, 2 jar draws hash   ARGV: 1 idea id
-- Returns "removed", or "absent" when it was not in the jar (a no-op).
redis.call('HDEL', KEYS[2], 'd:' .. ARGV[1])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then return 'removed' end
return 'absent'
"""
