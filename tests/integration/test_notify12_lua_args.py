"""LOAD's and RESERVE's arguments as one argument each, against the scripts and arguments before.

`NotifierState.load` sends "<seen since>|<seen before>|<occurrence id>|" as LOAD's one
argument (the script splits it at the first two '|'); `CapLedger.reserve` sends the
occurrence id, now, the window, the cap and each partner's id and channels as RESERVE's one
argument, a JSON array of strings (`caps.reserve_arg`, `cjson_args.escaped_array`), which the script
decodes with cjson; before, each was an argument of its own. Here both scripts of each pair
run on the test server, each on keys of its own (one hash tag each, as the service's), for
any text (quotes, backslashes, NUL, control characters, '|' and ',', any Unicode but lone
surrogates), any instants, and every branch of the scripts (LOAD: outbox entries of this
occurrence and of others, sightings inside and outside the window; RESERVE: an erased couple,
a slot held, a refusal recorded, a cap reached or not, several partners): the same replies
and the same bytes stored. `_OLD_LOAD` and `_OLD_RESERVE` are the scripts as they were (main at
the branch's base; their SHA-1s are pinned), called with the arguments one by one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import NamedTuple

import pytest
import redis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from couples_nudge.common.cjson_args import escaped_array, plain
from couples_nudge.common.keys import Keys
from couples_nudge.notifier.caps import RESERVE, reserve_arg
from couples_nudge.notifier.state import LOAD

_OLD_LOAD = """
-- What one delivery needs to decide, in one call.
-- KEYS: 1 couple hash, 2 sent zset, 3 seen zset, 4 outbox hash
-- ARGV: 1 seen since ms, 2 seen before ms, 3 "<occurrence id>|"
-- Returns the couple hash, the sent members, the content seen with the scheduled ms of its
-- last sighting (flat id, score list), and the outbox entries of this occurrence (flat field,
-- value list).
local boxed = {}
local prefix = ARGV[3]
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
  redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[1], '(' .. ARGV[2], 'WITHSCORES'),
  boxed
}
"""
_OLD_LOAD_SHA1 = "935934870724920d8ae1d2bb621dccf191d8e14d"

_OLD_RESERVE = """
-- Take one daily slot per partner for an occurrence, unless that partner's cap is reached,
-- and mark the sends about to start. The first write is always a ZADD (see the module).
-- KEYS: 1 couple hash, 2 sent zset, 3 outbox hash
-- ARGV: 1 occurrence id, 2 now_ms, 3 window_ms, 4 cap,
--       5.. pairs (partner id, comma-separated channels about to be sent)
-- Returns, per partner: 1 reserved (now or before), 0 over the cap (recorded, final);
-- or -1 alone when the couple is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local since = tonumber(ARGV[2]) - tonumber(ARGV[3])
local recent = nil
local out = {}
for i = 5, #ARGV, 2 do
  local partner = ARGV[i]
  local slot = ARGV[1] .. '|' .. partner .. '|cap'
  local refusal = ARGV[1] .. '|' .. partner .. '|capped'
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
      granted = used < tonumber(ARGV[4])
    end
    if granted then
      local marks = {}
      for channel in string.gmatch(ARGV[i + 1], '[^,]+') do
        marks[#marks + 1] = ARGV[2]
        marks[#marks + 1] = ARGV[1] .. '|' .. partner .. '|' .. channel .. '|sending'
      end
      if not held then
        marks[#marks + 1] = ARGV[2]
        marks[#marks + 1] = slot
      end
      redis.call('ZADD', KEYS[2], unpack(marks))
      out[#out + 1] = 1
    else
      redis.call('ZADD', KEYS[2], ARGV[2], refusal)
      redis.call('HSET', KEYS[3], refusal, ARGV[2])
      out[#out + 1] = 0
    end
  end
end
return out
"""
_OLD_RESERVE_SHA1 = "f1e5cb847d0c5c8ee31daa14380951ec8a43a34b"

# Any text a str can be encoded from (hiredis, like the JSON argument, refuses lone surrogates).
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_NASTY = st.sampled_from(
    ['"', "\\", "\x00", "\x01", "\n", "\x7f", "\u00e9", "\u540d", "\U0001f600", "|", ",", "%"]
)
_VALUE = st.one_of(_TEXT, _NASTY, st.lists(_NASTY, max_size=6).map("".join))
_MS = st.one_of(st.integers(0, 2**41), st.integers(-(2**53), 2**53))
_SLOW = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Side:
    """One script on keys of its own (one hash tag, as the service's: Keys.delivery_keys)."""

    def __init__(self, client: redis.Redis, prefix: str, script: str) -> None:
        self.client = client
        self.keys = Keys(prefix).delivery_keys("c1")
        self.sha = client.script_load(script)

    def call(self, keys: list[str], args: list[str | int | bytes]) -> object:
        """The reply, or the error's text without the script's line (both scripts raise the
        same errors: a ZADD of no members, for one, when a partner's channels are all '')."""
        try:
            return self.client.evalsha(self.sha, len(keys), *keys, *args)
        except redis.ResponseError as exc:
            return ("error", str(exc).split(" script: ")[0])

    def clear(self) -> None:
        self.client.delete(*self.keys)


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.close()


def test_the_old_scripts_are_the_ones_main_had() -> None:
    """Redis names a script by its SHA-1: the references are the scripts main ran."""
    for script, sha1 in ((_OLD_LOAD, _OLD_LOAD_SHA1), (_OLD_RESERVE, _OLD_RESERVE_SHA1)):
        assert hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest() == sha1


class LoadCase(NamedTuple):
    occurrence_id: str
    since_ms: int
    before_ms: int
    couple: dict[str, str]
    sent: dict[str, int]
    seen: dict[str, int]
    outbox: dict[str, str]


@st.composite
def _load_cases(draw: st.DrawFn) -> LoadCase:
    occurrence_id = draw(_VALUE)
    ours = st.tuples(st.just(occurrence_id + "|"), _VALUE).map("".join)
    return LoadCase(
        occurrence_id=occurrence_id,
        since_ms=draw(_MS),
        before_ms=draw(_MS),
        couple=draw(st.dictionaries(_VALUE, _VALUE, max_size=4)),
        sent=draw(st.dictionaries(_VALUE, _MS, max_size=3)),
        seen=draw(st.dictionaries(_VALUE, _MS, max_size=4)),
        outbox=draw(st.dictionaries(st.one_of(ours, _VALUE), _VALUE, max_size=4)),
    )


def _load(side: Side, case: LoadCase, args: list[str | int | bytes]) -> object:
    couple, sent, seen, outbox = side.keys
    for key, mapping in ((couple, case.couple), (outbox, case.outbox)):
        for field, value in mapping.items():
            side.client.hset(key, field, value)
    if case.sent:
        side.client.zadd(sent, case.sent)
    if case.seen:
        side.client.zadd(seen, case.seen)
    return side.call(list(side.keys), args)


@_SLOW
@given(case=_load_cases())
@example(case=LoadCase("o|1", 5, 10, {"id": "c1"}, {}, {"a": 5, "b": 9, "c": 10}, {"o|1|x": "1"}))
@example(case=LoadCase("\x00\n|", -5, 0, {}, {}, {"a": -5}, {"\x00\n||x": "1", "\x00\n|": "2"}))
def test_load_answers_as_with_three_arguments(
    client: redis.Redis, key_prefix: str, case: LoadCase
) -> None:
    old = Side(client, f"{key_prefix}:old", _OLD_LOAD)
    new = Side(client, f"{key_prefix}:new", LOAD)
    try:
        before = _load(old, case, [case.since_ms, case.before_ms, f"{case.occurrence_id}|"])
        # as NotifierState.load builds it
        after = _load(new, case, [f"{case.since_ms}|{case.before_ms}|{case.occurrence_id}|"])
        assert after == before
    finally:
        old.clear()
        new.clear()


class ReserveCase(NamedTuple):
    exists: bool
    occurrence_id: str
    now_ms: int
    window_ms: int
    cap: int
    sends: list[tuple[str, list[str]]]
    sent: dict[str, int]


@st.composite
def _reserve_cases(draw: st.DrawFn) -> ReserveCase:
    occurrence_id = draw(_VALUE)
    sends = draw(st.lists(st.tuples(_VALUE, st.lists(_VALUE, min_size=1, max_size=3)), max_size=3))
    partners = [partner for partner, _ in sends] or ["p"]
    others = st.one_of(_VALUE, st.just(occurrence_id))
    member = st.tuples(
        others, st.just("|"), st.sampled_from(partners), st.sampled_from(["|cap", "|capped", "|x"])
    ).map("".join)
    now_ms = draw(_MS)
    near = st.one_of(_MS, st.integers(now_ms - 10, now_ms + 10))
    return ReserveCase(
        exists=draw(st.sampled_from([True, True, True, False])),
        occurrence_id=occurrence_id,
        now_ms=now_ms,
        window_ms=draw(st.one_of(st.integers(0, 20), _MS)),
        cap=draw(st.integers(0, 3)),
        sends=sends,
        sent=draw(st.dictionaries(st.one_of(member, _VALUE), near, max_size=6)),
    )


def _reserve(side: Side, case: ReserveCase, args: list[str | int | bytes]) -> list[object]:
    couple, sent, _, outbox = side.keys
    if case.exists:
        side.client.hset(couple, "rev", "1")
    if case.sent:
        side.client.zadd(sent, case.sent)
    reply = side.call([couple, sent, outbox], args)
    return [
        reply,
        side.client.zrange(sent, 0, -1, withscores=True),
        list(side.client.hscan_iter(outbox)),
    ]


@_SLOW
@given(case=_reserve_cases())
@example(case=ReserveCase(True, "o1", 100, 50, 1, [("maya", ["email", "push"])], {}))
@example(case=ReserveCase(True, "o1", 100, 50, 1, [("maya", ["email"])], {"o0|maya|cap": 90}))
@example(case=ReserveCase(True, "o1", 100, 50, 1, [("maya", ["email"])], {"o1|maya|cap": 1}))
@example(case=ReserveCase(True, "o1", 100, 50, 1, [("maya", ["email"])], {"o1|maya|capped": 1}))
@example(case=ReserveCase(False, "o1", 100, 50, 1, [("maya", ["email"])], {}))
@example(case=ReserveCase(True, '"\\\x00', 100, 50, 2, [('"', ["\x00", ","]), ("b", ["e"])], {}))
def test_reserve_answers_and_writes_as_with_its_arguments_one_by_one(
    client: redis.Redis, key_prefix: str, case: ReserveCase
) -> None:
    old = Side(client, f"{key_prefix}:old", _OLD_RESERVE)
    new = Side(client, f"{key_prefix}:new", RESERVE)
    try:
        args: list[str | int | bytes] = [case.occurrence_id, case.now_ms, case.window_ms, case.cap]
        for partner_id, channels in case.sends:  # as main's CapLedger.reserve built them
            args += (partner_id, ",".join(channels))
        arg = reserve_arg(
            case.occurrence_id,
            case.sends,
            now_ms=case.now_ms,
            window_ms=case.window_ms,
            cap=case.cap,
        )
        assert _reserve(new, case, [arg]) == _reserve(old, case, args)
    finally:
        old.clear()
        new.clear()


@settings(max_examples=300, deadline=None)
@given(strings=st.lists(_VALUE, max_size=8))
@example(strings=[])
@example(strings=[""])
@example(strings=['"', "\\", "\x00", "\x01\n\u2028\U0001f600"])
def test_escaped_array_reads_back_as_the_strings(strings: list[str]) -> None:
    """The rare path's array reads back as the strings (raw control characters allowed,
    `strict=False`, as cjson allows them); the fast path's, written as it is, does too
    exactly when every string is `plain`."""
    assert json.loads(escaped_array(strings), strict=False) == strings
    as_is = '["' + '","'.join(strings) + '"]' if strings else "[]"
    if all(plain(s) for s in strings):
        assert json.loads(as_is, strict=False) == strings
    else:
        assert not plain("".join(strings))  # a probe of the concatenation sees it too
