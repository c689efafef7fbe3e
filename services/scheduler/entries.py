"""What a preferences stream entry holds: its payload and the event in it, or why it has none.

Pure: no I/O. An entry is read as FastStream's single-entry subscriber reads one, so that a
batch gives every entry the same payload and outcome as one at a time:
- the `__data__` field is the payload; without one (or empty), the fields as a JSON object;
- FastStream's binary framing and a legacy {"data": "<string>"} envelope are unwrapped;
- a CloudEvents 1.0 structured-mode JSON object (`specversion`, `id`, `source`, `type`,
  `time`, `data`) is the same event in another form (schemas/cloudevents.py): it is read into
  the envelope, and a malformed one is refused with its own short reason.

XADD accepts any bytes as field names and values. An entry without a `__data__` payload whose
fields are not UTF-8 holds no event (FastStream's own subscriber fails on it, and its whole
batch with it): it is refused on its own, and its payload is the fields as JSON with the
undecodable bytes escaped, for the rejected stream. Reading never raises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final, NamedTuple

from faststream._internal._compat import dump_json
from faststream.redis.parser import BinaryMessageFormatV1

from couples_nudge.common.streams import DATA_FIELD, RAW_LIMIT
from couples_nudge_schemas import (
    MAX_EVENT_BYTES,
    EventRejected,
    PreferenceEvent,
    parse_preference,
)
from couples_nudge_schemas.cloudevents import parse_preference_cloudevent

__all__ = ["Read", "read_entry", "read_payload"]

_DATA = DATA_FIELD.encode()
_SPECVERSION = b'"specversion"'
# The largest stored payload that can still wrap a valid event (MAX_EVENT_BYTES): a JSON
# string with ASCII escapes spells a byte in at most six ("\u0000"; an emoji's four in twelve),
# plus FastStream's frame and headers. ~400 KB: parsed in milliseconds.
_WRAPPED_LIMIT: Final = 6 * MAX_EVENT_BYTES + 16 * 1024
NOT_TEXT = "entry: without a __data__ field, field names and values must be UTF-8 text"
BINARY_MODE = (
    "entry: CloudEvents binary mode (ce_* fields) is not read; put the structured-mode JSON "
    "(or the envelope) in the __data__ field"
)
_CE_PREFIX = b"ce_"


class Read(NamedTuple):
    """What an entry holds: its payload (for the rejected stream), and its event or refusal."""

    payload: bytes
    outcome: PreferenceEvent | EventRejected


# Read made without NamedTuple's __new__ frame on the path every entry takes (~0.3 us):
# the pair is built in the fields' order just above.
_new_read: Final = tuple.__new__


def read_entry(fields: Mapping[bytes, bytes]) -> Read:
    """The payload an entry's fields give, and the event it holds or why it was refused."""
    if data := fields.get(_DATA):
        # `read_payload`'s first step, without its call frame (~1k instructions an entry).
        try:
            return _new_read(Read, (data, parse_preference(data)))
        except EventRejected as refused:
            return _refused(data, refused)
    if any(name.startswith(_CE_PREFIX) for name in fields):  # rare: no __data__ at all
        # Binary mode's attributes as fields (the Kafka binding's ce_ headers): they would
        # be read as an envelope, and refused for a missing "type", which says nothing.
        return Read(_escaped(fields), EventRejected(BINARY_MODE))
    try:
        stored = dump_json(fields)  # what FastStream makes of them (bytes read as UTF-8)
    except UnicodeDecodeError:
        return Read(_escaped(fields), EventRejected(NOT_TEXT))
    return read_payload(stored)


def _escaped(fields: Mapping[bytes, bytes]) -> bytes:
    """The fields as JSON, undecodable bytes escaped, cut near RAW_LIMIT (the rejected stream
    keeps no more): escaping a megabyte of them would take a third of a second."""
    escaped: dict[str, str] = {}
    room = RAW_LIMIT
    for name, value in fields.items():
        if room <= 0:
            break
        key = name[:room].decode(errors="backslashreplace")
        escaped[key] = value[: max(0, room - len(name))].decode(errors="backslashreplace")
        room -= len(name) + len(value)
    return json.dumps(escaped).encode()


def read_payload(stored: bytes) -> Read:
    """The payload FastStream's single-entry subscriber hands over, and the event it holds.

    FastStream unwraps its own framing and a legacy {"data": "<string>"} envelope, at the
    cost of two JSON parses per entry. A valid event is neither (its "data" is an object),
    so it is validated as stored first; only a refused one is unwrapped and tried again.
    """
    try:
        return _new_read(Read, (stored, parse_preference(stored)))
    except EventRejected as refused:
        return _refused(stored, refused)


def _refused(stored: bytes, refused: EventRejected) -> Read:
    """`read_payload` of a payload that is not a valid event as stored (`refused`).

    One too large to hold a valid event in any wrapping is refused as it is: unwrapping runs
    FastStream's `json.loads` over all of it, twice (a 64 MB array of objects held the event
    loop 11 s and took 3.4 GB, where its size alone had already refused it)."""
    if len(stored) > _WRAPPED_LIMIT:
        return Read(stored, refused)
    if _SPECVERSION in stored:
        return Read(stored, _cloud_event(stored))
    try:
        payload, _headers = BinaryMessageFormatV1.parse(stored)
    except Exception:  # it catches its own errors today; a hostile frame must not escape
        return Read(stored, refused)
    if payload == stored:
        return Read(stored, refused)
    try:
        return Read(payload, parse_preference(payload))
    except EventRejected as exc:
        return Read(payload, _cloud_event(payload) if _SPECVERSION in payload else exc)


def _cloud_event(payload: bytes) -> PreferenceEvent | EventRejected:
    """A payload naming `specversion` was meant as a CloudEvent: its reason is the
    CloudEvent's (the envelope's would only list the CloudEvents attributes as unknown)."""
    try:
        return parse_preference_cloudevent(payload)
    except EventRejected as exc:
        return exc
