"""RECORD_SENT's arguments as one JSON array, against the script and arguments before.

`NotifierState.record_sent` sends now_ms, retention_ms, scheduled_ms, the repeat window, the
dead channel's field and each record's key and content id as one argument, a JSON array of
strings (`state.record_args`), which RECORD_SENT decodes with cjson, then each record's
outcome JSON as an argument of its own; before, each was an argument of its own. Here both
run on the test server, each on keys of its own (one hash tag each, as the service's), for
any text (quotes, backslashes, NUL, control
characters, any Unicode but lone surrogates), any outcome bytes, any instants, and every
branch of the script (an erased couple; a record with and without a content shown and an
outcome; a dead channel's field or none; sends and sightings trimmed or kept): the same
replies and the same bytes stored (the couple hash's fields and values in their order, the
sent and seen zsets' members and scores, the outbox). `_OLD_RECORD_SENT` is the script as it
was (main at the branch's base; its SHA-1 is pinned), called with the arguments one by one.
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

from couples_nudge.common.keys import Keys
from couples_nudge.notifier.state import RECORD_SENT, record_args

_OLD_RECORD_SENT = """#!lua flags=allow-oom
-- Record the sends of one occurrence and their outcomes, only while the couple exists (an
-- erasure may have won). Allowed when Redis is out of memory: see the module docstring.
-- KEYS: 1 couple hash, 2 sent zset, 3 seen zset, 4 outbox hash
-- ARGV: 1 now_ms, 2 retention_ms, 3 scheduled_ms, 4 repeat window ms,
--       5 couple field marking a channel dead ('' for none),
--       6.. triples (idempotency key, content id or '' when nothing was shown,
--                    outcome JSON for the outbox or '')
-- Returns 1 if recorded, 0 if the couple is gone. Sightings older than the repeat window
-- can no longer affect a choice, so they are trimmed: the seen set stays bounded.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local shown = false
for i = 6, #ARGV, 3 do
  redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i] .. '|sending')
  if ARGV[i + 1] ~= '' then
    redis.call('ZADD', KEYS[3], 'GT', ARGV[3], ARGV[i + 1])
    shown = true
  end
  if ARGV[i + 2] ~= '' then redis.call('HSET', KEYS[4], ARGV[i], ARGV[i + 2]) end
end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], ARGV[5], ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if shown then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (tonumber(ARGV[3]) - tonumber(ARGV[4])))
end
return 1
"""

_OLD_SHA1 = "944e2ebba2623c1337f7402fda3fc1932453ef89"

# Any text a str can be encoded from (hiredis, like the JSON argument, refuses lone surrogates).
_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
_NASTY = st.sampled_from(
    ['"', "\\", "\x00", "\x01", "\n", "\x7f", "\u00e9", "\u540d", "\U0001f600", "\u2028", "|", ","]
)
_VALUE = st.one_of(_TEXT, _NASTY, st.lists(_NASTY, max_size=6).map("".join))
_NONEMPTY = _VALUE.filter(bool)
_OUTCOME = st.one_of(
    st.just(b""),
    _VALUE.map(str.encode),
    st.binary(max_size=40),
    st.just(b'{"event_id":"e1","detail":"a \\"quote\\" and \\\\ \\u0000"}'),
)
_MS = st.one_of(st.integers(0, 2**41), st.integers(-(2**53), 2**53))
# The retention and the repeat window are durations (the settings refuse negative ones): the
# script now also sets the sets' expiry from them, a day past each, which no run here outlives.
_SPAN = st.one_of(st.integers(0, 2**41), st.integers(0, 2**53))


class Record(NamedTuple):
    key: str
    shown: str  # "" when nothing was shown
    outcome: bytes  # b"" when nothing goes to the outbox


class Case(NamedTuple):
    exists: bool  # the couple hash exists (else: erased, nothing written)
    now_ms: int
    retention_ms: int
    scheduled_ms: int
    window_ms: int
    dead: str
    records: list[Record]
    sent: dict[str, int]  # members already in the sent zset -> score
    seen: dict[str, int]  # content ids already seen -> score
    outbox: dict[str, bytes]


@st.composite
def _cases(draw: st.DrawFn) -> Case:
    records = draw(
        st.lists(
            st.builds(
                Record,
                _NONEMPTY,
                st.one_of(st.just(""), _NONEMPTY),
                _OUTCOME,
            ),
            max_size=3,
        )
    )
    known = [r.key for r in records] + [f"{r.key}|sending" for r in records]
    shown = [r.shown for r in records if r.shown]
    member = st.one_of(st.sampled_from(known), _NONEMPTY) if known else _NONEMPTY
    content = st.one_of(st.sampled_from(shown), _NONEMPTY) if shown else _NONEMPTY
    return Case(
        exists=draw(st.sampled_from([True, True, True, False])),
        now_ms=draw(_MS),
        retention_ms=draw(st.one_of(st.integers(0, 2**40), _SPAN)),
        scheduled_ms=draw(_MS),
        window_ms=draw(st.one_of(st.integers(0, 2**40), _SPAN)),
        dead=draw(st.one_of(st.just(""), _NONEMPTY)),
        records=records,
        sent=draw(st.dictionaries(member, _MS, max_size=4)),
        seen=draw(st.dictionaries(content, _MS, max_size=4)),
        outbox=draw(st.dictionaries(member, _OUTCOME.filter(bool), max_size=2)),
    )


class Side:
    """One script and its argument building, on keys of its own (one hash tag, as the
    service's: Keys.delivery_keys)."""

    def __init__(self, client: redis.Redis, prefix: str, *, old: bool) -> None:
        self.client = client
        self.old = old
        self.keys = Keys(prefix).delivery_keys("c1")
        self.sha = client.script_load(_OLD_RECORD_SENT if old else RECORD_SENT)

    def args(self, case: Case) -> list[str | int | bytes]:
        if self.old:  # as main's NotifierState.record_sent built them
            args: list[str | int | bytes] = [
                case.now_ms,
                case.retention_ms,
                case.scheduled_ms,
                case.window_ms,
                case.dead,
            ]
            for record in case.records:
                args += record
            return args
        return list(
            record_args(
                case.now_ms,
                case.retention_ms,
                case.scheduled_ms,
                case.window_ms,
                case.dead,
                case.records,
            )
        )

    def run(self, case: Case) -> list[object]:
        couple, sent, seen, outbox = self.keys
        if case.exists:
            self.client.hset(couple, mapping={"rev": "1", "id": "c1", "p": "x"})
        if case.sent:
            self.client.zadd(sent, case.sent)
        if case.seen:
            self.client.zadd(seen, case.seen)
        for field, value in case.outbox.items():
            self.client.hset(outbox, field, value)
        try:
            reply = self.client.evalsha(self.sha, 4, *self.keys, *self.args(case))
        except redis.ResponseError as exc:  # the error's text without the script's line
            reply = ("error", str(exc).split(" script: ")[0])
        return [
            reply,
            self.client.hgetall(couple),
            list(self.client.hscan_iter(couple)),  # the fields in their stored order
            self.client.zrange(sent, 0, -1, withscores=True),
            self.client.zrange(seen, 0, -1, withscores=True),
            list(self.client.hscan_iter(outbox)),
        ]

    def clear(self) -> None:
        self.client.delete(*self.keys)


@pytest.fixture
def sides(redis_url: str, key_prefix: str) -> Iterator[tuple[Side, Side]]:
    client = redis.Redis.from_url(redis_url)
    old = Side(client, f"{key_prefix}:old", old=True)
    new = Side(client, f"{key_prefix}:new", old=False)
    try:
        yield old, new
    finally:
        old.clear()
        new.clear()
        client.close()


def test_the_old_script_is_the_one_main_had() -> None:
    """Redis names a script by its SHA-1: the reference is the script main ran."""
    assert hashlib.sha1(_OLD_RECORD_SENT.encode(), usedforsecurity=False).hexdigest() == _OLD_SHA1


def test_the_script_keeps_allow_oom() -> None:
    """RECORD_SENT follows a send that has happened: refusing it under OOM would send again."""
    assert RECORD_SENT.startswith("#!lua flags=allow-oom\n")


_BIG = Record("k|maya|email", "item-1", b'{"x":"' + b'\\"' * 50_000 + b'"}')


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=_cases())
@example(case=Case(True, 10, 5, 7, 3, "", [], {}, {}, {}))
@example(case=Case(False, 10, 5, 7, 3, "dead:maya:email", [_BIG], {}, {}, {}))
@example(case=Case(True, 10**12, 1, 10**12, 1, "dead:maya:email", [_BIG], {"a": 1}, {"b": 2}, {}))
@example(
    case=Case(
        True,
        2_000,
        1_000,
        1_500,
        100,
        '\x00"\\',
        [Record('"\\\x00\U0001f600', '\x00"', b'\x00\xff\xfe\\u0000"'), Record("k2", "", b"")],
        {'"\\\x00\U0001f600|sending': 1_999, "old": 999},
        {'\x00"': 1_600, "stale": 1_399},
        {"k2": b"v"},
    )
)
def test_the_same_replies_and_bytes_as_the_arguments_one_by_one(
    sides: tuple[Side, Side], case: Case
) -> None:
    old, new = sides
    try:
        assert new.run(case) == old.run(case)
    finally:
        old.clear()
        new.clear()


@settings(max_examples=300, deadline=None)
@given(
    dead=_VALUE,
    records=st.lists(st.builds(Record, _VALUE, _VALUE, _OUTCOME), max_size=4),
    ms=st.tuples(_MS, _MS, _MS, _MS),
)
@example(dead="", records=[], ms=(0, 0, 0, 0))
@example(dead='"', records=[Record("a", "", b"")], ms=(1, 2, 3, 4))
@example(dead="", records=[Record('"', "", b"x")], ms=(1, 2, 3, 4))
@example(dead="\\", records=[Record("a", "\x00", b"x")], ms=(1, 2, 3, 4))
def test_the_first_argument_is_json_of_the_same_strings(
    dead: str, records: list[Record], ms: tuple[int, int, int, int]
) -> None:
    """Both paths (as written, json.dumps's): the first argument is a JSON array that a JSON
    reader decodes to the strings the old script got as arguments (raw control characters
    allowed, `strict=False`, as cjson allows them), the outcomes follow as they are."""
    first, *outcomes = record_args(*ms, dead, records)
    assert isinstance(first, str)
    expected = [str(n) for n in ms] + [dead]
    for key, shown, _ in records:
        expected += [key, shown]
    assert json.loads(first, strict=False) == expected
    assert outcomes == [record.outcome for record in records]
