"""APPLY_PLAN's arguments as one JSON array, against the script and arguments before.

`ScheduleStore._apply_call` sends the revision, occurred_ms, digest, couple id, the count of
schedules, the profile pairs, the record pairs and the (fire_ms, member) pairs as one
argument, a JSON array of strings (`store._json`), which APPLY_PLAN decodes with cjson;
before, each was an argument of its own. Here both run on the test server, each on keys of
its own, for any profile text (quotes, backslashes, NUL, control characters, any
Unicode but lone surrogates), any arms, and every branch of the script (a new couple; a known
couple with kept seqs and consent, snooze and level fields; the legacy "sids" layout; erased;
stale): the same results and the same bytes stored (the couple hash's fields and values in
their order, the timers' members and scores, the legacy hash, the tombstones).
`_OLD_APPLY_PLAN` and `_old_args` are the script and the argument list as they were (main at
0e9cf43; the script's SHA-1 is pinned).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple, cast

import pytest
import redis
import redis.asyncio as aioredis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from couples_nudge.common.keys import Keys, couple_digest
from couples_nudge.scheduler import lua
from couples_nudge.scheduler.store import Arm, ScheduleStore, _json, build_arm

_OLD_APPLY_PLAN = (
    lua.BUMP
    + """
-- Replace a couple's profile and schedules if the revision is newer; keep each schedule's seq.
-- KEYS: 1 couple hash, 2 timers zset, 3 legacy schedules hash, 4 tombstones zset,
--       5 the shard's change counter (BUMP)
-- ARGV: 1 revision, 2 occurred_ms, 3 couple digest, 4 couple id (also the field "id"),
--       5 p profile fields but "id", 6 r schedules, then p pairs (field, value), then r
--       pairs (record field "<kind code>/<target>", "0|<nominal_ms>|<spec>": the record of a
--       new schedule), then r pairs (fire_ms, timer member "<couple id>/<kind code>/<target>"),
--       in the same order: a schedule is the field "<kind code>/<target>" of the couple hash
-- Returns "applied", "stale" (revision not newer) or "erased" (erased after it occurred).
-- A couple hash without "rev" does not exist (every other writer needs it to exist), so a new
-- couple has no old schedules, sequences or dead channels to look up: its fields and timers
-- are written as given, one HSET and one ZADD over ranges of ARGV (no table is built: a
-- tenth of the script's CPU on bulk ingestion). A new revision of a known couple restates
-- everything but consent (pause, unsubscribe) and the partners' answers (snoozes, the
-- listening cadence's levels): the hash is rebuilt, which also gives it back the compact
-- listpack encoding, and channels marked dead get another chance; each record kept keeps its
-- seq (the "0" before its first "|" is replaced by the stored one).
-- The layout before issue 7 (records in KEYS[3], listed in the field "sids") is migrated.
local erased = redis.call('ZSCORE', KEYS[4], ARGV[3])
if erased and tonumber(erased) >= tonumber(ARGV[2]) then return 'erased' end
local stored = redis.call('HGET', KEYS[1], 'rev')
if stored and tonumber(stored) >= tonumber(ARGV[1]) then return 'stale' end
-- A new couple changes no state a lookahead can have read (the module docstring): no bump,
-- but for the shard's first (without a counter, prepared fires could not use FIRE_AHEAD).
if stored or redis.call('EXISTS', KEYS[5]) == 0 then bump(KEYS[5]) end
local records = 7 + 2 * tonumber(ARGV[5])
local timers = records + 2 * tonumber(ARGV[6])
if not stored then
  redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'id', ARGV[4], unpack(ARGV, 7, timers - 1))
else
  local out = {'rev', ARGV[1], 'id', ARGV[4]}
  for i = 7, records - 1 do out[#out + 1] = ARGV[i] end
  local new, seqs = {}, {}
  for i = records, timers - 1, 2 do new[ARGV[i]] = true end
  local prefix = ARGV[4] .. '/'
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
    local seq = seqs[ARGV[i]]
    out[#out + 1] = ARGV[i]
    out[#out + 1] = seq and seq .. string.sub(ARGV[i + 1], 2) or ARGV[i + 1]
  end
  redis.call('HSET', KEYS[1], unpack(out))
end
if timers <= #ARGV then redis.call('ZADD', KEYS[2], unpack(ARGV, timers)) end  -- every timer
if erased then redis.call('ZREM', KEYS[4], ARGV[3]) end
return 'applied'
"""
)
_OLD_SHA1 = "97b2ac2b4a48131cac80592f92309eb2c6d4d60a"

# Any text a str can be encoded from (hiredis, like the JSON argument, refuses lone surrogates).
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_NASTY = st.sampled_from(
    ['"', "\\", "\x00", "\x01", "\n", "\x7f", "é", "名", "😀", "\u2028", "/", ","]
)
_VALUE = st.one_of(_TEXT, _NASTY, st.lists(_NASTY, max_size=6).map("".join))
_TARGET = _VALUE.map(lambda text: text.replace("/", "_"))  # a record field has one "/"
_KEPT = st.sampled_from(["pause", "pause:sam", "unsub:maya:email", "snz:d/both", "lvl:maya", "x"])


class Revision(NamedTuple):
    revision: int
    profile: dict[str, str]
    arms: list[Arm]


class Case(NamedTuple):
    couple_id: str
    legacy: bool  # the couple stored in the layout before issue 7 instead of a first revision
    first: Revision
    kept: dict[str, str]  # fields written between the revisions (consent, snoozes, levels)
    seqs: dict[int, int]  # arm index of the first revision -> a seq its record reached
    erased_ms: int | None  # a tombstone's score, if the couple was erased
    second: Revision


@st.composite
def _revision(draw: st.DrawFn, couple_id: str, revision: int) -> Revision:
    profile = draw(st.dictionaries(_VALUE, _VALUE, max_size=6))
    arms = [
        build_arm(f"{couple_id}/{kind}/{target}", spec, nominal_ms, fire_ms)
        for kind, target, spec, nominal_ms, fire_ms in draw(
            st.lists(
                st.tuples(
                    st.sampled_from("dca"),
                    st.one_of(st.sampled_from(["both", "maya"]), _TARGET),
                    _VALUE,
                    st.integers(0, 2**53),
                    st.one_of(st.integers(0, 2**53), st.integers(0, 2**63)),
                ),
                max_size=5,
            )
        )
    ]
    return Revision(revision, profile, arms)


@st.composite
def _cases(draw: st.DrawFn) -> Case:
    couple_id = draw(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True))
    first = draw(_revision(couple_id, draw(st.integers(1, 3))))
    newer = draw(st.sampled_from([1, 1, 1, 2, 0, -1]))  # mostly a newer revision
    second = draw(_revision(couple_id, first.revision + newer))
    keeps = draw(st.booleans())
    if first.arms and keeps:  # the next revision keeps some of the first's schedules
        second = second._replace(arms=second.arms + first.arms[: draw(st.integers(1, 3))])
    indexes = st.integers(0, max(len(first.arms) - 1, 0))
    return Case(
        couple_id,
        draw(st.booleans()),
        first,
        draw(st.dictionaries(_KEPT, _VALUE, max_size=3)),
        draw(st.dictionaries(indexes, st.integers(1, 99), max_size=3)) if first.arms else {},
        draw(st.one_of(st.none(), st.integers(500, 1500))),
        second,
    )


def _old_args(
    couple_id: str, revision: int, occurred_ms: int, profile: Mapping[str, str], arms: Sequence[Arm]
) -> list[str | int]:
    """APPLY_PLAN's arguments as `ScheduleStore._apply_call` made them before (0e9cf43)."""
    args: list[str | int] = [
        revision,
        occurred_ms,
        couple_digest(couple_id),
        couple_id,
        len(profile),
        len(arms),
    ]
    for item in profile.items():
        args += item
    fires: list[str | int] = []
    for schedule_id, _spec, _nominal_ms, fire_ms, field, record in arms:
        args += (field, record)
        fires += (fire_ms, schedule_id)
    return args + fires


def _pairs(fields: object) -> list[tuple[bytes, bytes]]:
    return list(cast("dict[bytes, bytes]", fields).items())


class Side:
    """One script and argument layout on keys of its own."""

    def __init__(self, client: redis.Redis, keys: Keys, *, old: bool) -> None:
        self.client, self.keys, self.old = client, keys, old
        # Only its argument building is used: an asyncio client that never connects.
        self.store = ScheduleStore(aioredis.Redis(), keys, due_maxlen=10)
        self.sha = client.script_load(_OLD_APPLY_PLAN if old else lua.APPLY_PLAN)

    def apply(self, couple_id: str, rev: Revision, occurred_ms: int) -> bytes:
        keys, args = self.store._apply_call(
            couple_id, rev.revision, occurred_ms, rev.profile, rev.arms
        )
        if self.old:
            args = cast(
                "Any", _old_args(couple_id, rev.revision, occurred_ms, rev.profile, rev.arms)
            )
        return cast("bytes", self.client.evalsha(self.sha, len(keys), *keys, *args))

    def run(self, case: Case) -> list[object]:
        keys, client, cid = self.keys, self.client, case.couple_id
        couple = keys.couple(cid)
        seen: list[object] = []
        if case.legacy:
            sids = [arm.schedule_id for arm in case.first.arms]
            client.hset(
                couple,
                mapping={"rev": str(case.first.revision), "sids": ",".join(sids), "profile": "{}"},
            )
            for n, arm in enumerate(case.first.arms):
                client.hset(keys.schedules(0), arm.schedule_id, f"{5 + n}|{arm.nominal_ms}|x")
                client.zadd(keys.timers(0), {arm.schedule_id: arm.fire_ms})
        else:
            seen.append(self.apply(cid, case.first, 1000))
        for index, seq in case.seqs.items():
            arm = case.first.arms[index]
            client.hset(couple, arm.field, f"{seq}|{arm.nominal_ms}|{arm.spec}")
        if case.kept:
            client.hset(couple, mapping=cast("dict[Any, Any]", case.kept))
        if case.erased_ms is not None:
            client.zadd(keys.tombstones(0), {couple_digest(cid): case.erased_ms})
        seen.append(self.apply(cid, case.second, 1000))
        seen.append(self.apply(cid, case.second, 1000))  # a replay: stale (or erased)
        if self.old and case.erased_ms is not None:
            # The old script removed the tombstone of a couple it created again; APPLY_PLAN
            # keeps it since 2026-12-07 (lua.ERASED_SINCE): put back, the rest compares.
            client.zadd(keys.tombstones(0), {couple_digest(cid): case.erased_ms})
        seen += [
            _pairs(client.hgetall(couple)),  # in the hash's order
            client.zrange(keys.timers(0), 0, -1, withscores=True),
            _pairs(client.hgetall(keys.schedules(0))),
            client.zrange(keys.tombstones(0), 0, -1, withscores=True),
            client.exists(keys.changes(0)),
        ]
        return seen

    def clear(self) -> None:
        names = list(self.client.scan_iter(match=f"{self.keys.prefix}:*", count=1000))
        if names:
            self.client.delete(*names)


@pytest.fixture
def sides(redis_url: str, key_prefix: str) -> Iterator[tuple[Side, Side]]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield (
            Side(client, Keys(f"{key_prefix}:old"), old=True),
            Side(client, Keys(f"{key_prefix}:new"), old=False),
        )
    finally:
        client.close()


def test_the_old_script_is_the_one_main_had() -> None:
    """Redis names a script by its SHA-1: the reference is the script main ran."""
    assert hashlib.sha1(_OLD_APPLY_PLAN.encode(), usedforsecurity=False).hexdigest() == _OLD_SHA1


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_cases())
def test_the_same_results_and_bytes_as_the_arguments_one_by_one(
    sides: tuple[Side, Side], case: Case
) -> None:
    old, new = sides
    try:
        assert new.run(case) == old.run(case)
    finally:
        old.clear()
        new.clear()


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(strings=st.lists(_VALUE, max_size=20))
@example(strings=[])
@example(strings=[""])
@example(strings=["a" * 100_000, "\x00", '"', "\\"])
def test_cjson_decodes_the_array_to_the_same_bytes(
    sides: tuple[Side, Side], strings: list[str]
) -> None:
    """Both encodings (the joined fast path, the C encoder for quotes, backslashes and NUL)."""
    client = sides[1].client
    decoded = client.eval("return cjson.decode(ARGV[1])", 0, _json(strings))
    assert decoded == [text.encode() for text in strings]


def test_a_lone_surrogate_fails_as_hiredis_fails_it() -> None:
    """Unencodable text is refused before anything is sent, with the UnicodeEncodeError that
    hiredis raised for it when it went as an argument of its own."""
    with pytest.raises(UnicodeEncodeError):
        _json(["ok", "\ud800"])
    with pytest.raises(UnicodeEncodeError):
        _json(["ok", '"\ud800'])
