"""Hostile preferences stream entries, generated from a seed: each one invalid by construction.

Every generator yields the fields of one stream entry (names and values of any bytes). The
kinds: every single-field break of a valid event (each leaf given a value of the wrong type,
personal text, a control or separator character, a huge string; each required key removed;
an unknown key in each object), broken JSON (every truncation of a valid event, random bytes),
JSON that is not an event, binary field names and values, and oversized entries.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Iterator
from typing import Any, Final

from tests.support.events import example

__all__ = ["PERSONAL", "Fields", "hostile_entries", "single_field_breaks", "valid_entry"]

Fields = dict[bytes, bytes]
Path = tuple[str | int, ...]

DATA: Final = b"__data__"
# Personal text a careless publisher might put anywhere: it must reach no log and no reason.
PERSONAL: Final = "lena.private@example.test Lena Secret-Name"
# Keys whose absence leaves the example valid (defaults, optional plans): never removed.
_OPTIONAL: Final = frozenset(
    {"locale", "love_languages", "quiet_hours", "recipients", "timing", "focus_areas", "policy"}
    | {"date_night", "check_in", "appreciation", "discreet"}
)
_WRONG_FOR: Final[dict[type, list[Any]]] = {
    str: [7, True, 1.5, [], {}],
    int: ["1", True, False, 1.5, [], {}],
    bool: [1, 0, "true", []],
    list: ["x", {}, 3],
    dict: ["x", [], 3],
}
_CHARACTERS: Final = ["\x00", "\x01", "\x1b", "\x7f", "\u0085", "\u2028", "\u202e", "\u200b"]


def _data(event: Any) -> Fields:
    return {DATA: json.dumps(event).encode()}


def _paths(node: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _with(event: Any, path: Path, value: Any) -> Any:
    changed = copy.deepcopy(event)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


def _without(event: Any, path: Path) -> Any:
    changed = copy.deepcopy(event)
    target = changed
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return changed


def single_field_breaks(event: dict[str, Any]) -> Iterator[Fields]:
    """Every single-field break of a valid event (each one invalid, whatever the rest)."""
    for path, value in _paths(event):
        if not path:
            continue
        for wrong in _WRONG_FOR[type(value)]:
            yield _data(_with(event, path, wrong))
        if isinstance(value, str):
            yield _data(_with(event, path, PERSONAL))
            yield _data(_with(event, path, "x" * 60_000))  # under the size limit
            yield _data(_with(event, path, value + "y" * 70_000))  # over it
            for character in _CHARACTERS:
                yield _data(_with(event, path, value[:1] + character + value[1:]))
        if isinstance(value, dict):
            yield _data(_with(event, (*path, "unexpected"), 1))
            yield _data(_with(event, (*path, PERSONAL), 1))
            yield _data(_with(event, (*path, "k" * 50_000), 1))
        if isinstance(path[-1], str) and path[-1] not in _OPTIONAL:
            yield _data(_without(event, path))
    yield _data(_with(event, ("unexpected",), 1))


def _broken_json(raw: bytes, rng: random.Random) -> Iterator[Fields]:
    for end in range(len(raw)):  # every truncation: never a whole JSON object
        yield {DATA: raw[:end] or b" "}
    for _ in range(300):
        yield {DATA: b"\xff" + rng.randbytes(rng.randint(0, 300))}
    for _ in range(100):  # random edits of one byte that leave no valid JSON
        at = rng.randrange(len(raw))
        yield {DATA: raw[:at] + b'"\\' + raw[at:]}
    yield {DATA: b"[" * 60_000}
    yield {DATA: b'{"a":' * 10_000}
    yield {DATA: b"{" + b'"k": 1, ' * 5_000 + b'"k": 1}'}  # valid JSON, wrong everything


def _not_events(rng: random.Random) -> Iterator[Fields]:
    for value in [0, -1, 1.5, "text", None, True, [], [1, 2], {}, {"type": None}]:
        yield _data(value)
    for _ in range(100):
        yield _data({"type": "".join(rng.choices("abcdefg.", k=rng.randint(1, 40)))})
    yield _data({"type": "x" * 60_000})
    yield _data({"type": PERSONAL})
    yield _data({"type": "a " * 30_000})  # 60,000 characters in words, no @


def _binary_entries(rng: random.Random, valid: bytes) -> Iterator[Fields]:
    yield {b"\xff": b"x"}
    yield {b"\xff": b"\xfe"}
    yield {DATA: b"", b"\xff": b"\x00"}
    yield {DATA: b"", b"k": b"\xff"}
    yield {DATA: b"\xff\xfe\xfd"}
    yield {b"data": b"\xff" + valid}  # a legacy envelope that is not text
    yield {b"type": b"preferences.set.v1", b"data": b"{}"}  # plain fields: data is a string
    yield {b"\xff" * 1_000_000: b"x"}  # a megabyte field name
    yield {b"name": PERSONAL.encode(), b"email": b"lena.private@example.test"}
    for _ in range(200):
        name = rng.randbytes(rng.randint(1, 40))
        value = rng.randbytes(rng.randint(0, 200))
        fields = {name: value}
        if name == DATA and value:
            fields[DATA] = b"\xff" + value
        yield fields


def _oversized() -> Iterator[Fields]:
    yield {DATA: b"x" * 1_000_000}  # a megabyte of text without @
    yield {DATA: b"a@" * 500_000}
    yield {DATA: ("é" * 40_000).encode()}


def hostile_entries(seed: int, at_least: int) -> list[Fields]:
    """At least `at_least` hostile entries in a shuffled, reproducible order.

    The single-field breaks are made from two events (a set and an erasure) and repeated, so
    every kind of break recurs; the rest come once each.
    """
    rng = random.Random(seed)
    event = example()
    erased = {**{k: event[k] for k in ("event_id", "occurred_at", "producer")}}
    erased |= {"type": "couple.erased.v1", "data": {"couple_id": "c1"}}
    raw = json.dumps(event).encode()
    once = [
        *_broken_json(raw, rng),
        *_not_events(rng),
        *_binary_entries(rng, raw),
        *_oversized(),
        *single_field_breaks(erased),
    ]
    breaks = list(single_field_breaks(event))
    entries = once + breaks * max(1, -(-(at_least - len(once)) // len(breaks)))
    rng.shuffle(entries)
    return entries


def valid_entry(couple_id: str) -> Fields:
    """A valid preferences.set.v1 entry for its own couple."""
    event = example()
    event["event_id"] = str(uuid.uuid4())
    event["data"]["couple_id"] = couple_id
    return _data(event)
