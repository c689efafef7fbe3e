"""Outcome events built from values already known to be valid.

Each send makes one outcome (NudgeSent). Through pydantic that cost ~92k instructions (every
field validated again, three Python calls for the event id's and the instants' text checks,
UUIDv5 in Python's `UUID.__init__`) of the ~640k a message spends outside rendering
(callgrind, in-process drain). Two shortcuts, each with the invariant it relies on:

1. `built` makes a model without validating it (as `model_construct` does, without its
   per-field Python loop). Invariant: every value it is given is already valid for its field:
   it comes from the validated, frozen NudgeDue (occurrence, couple, kind, instant, note), is a
   constant or a Literal of this code (type, producer, channel, reason, permanent, attempt),
   or is checked here, by the field's own rule, before (`plain_fields`: partner id, device
   reference, content id and error lengths). A value that fails a check takes the validating
   constructor, which raises as it always did. tests/property/test_outcome_build.py: equal to
   the validated model (fields, fields set, JSON bytes) for any values, and the same errors.
2. `outcome_id` makes the UUID from its 128-bit integer with the version and variant bits set
   as `uuid.UUID(bytes=..., version=5)` sets them, without `UUID.__init__`'s argument checks
   (`UUID` keeps only `int` and `is_safe`). Property test: equal to `uuid.uuid5` for any name.
3. `SentOutcomes` makes a send's NudgeSent and its JSON together, without `built`'s keyword
   dict and template and without pydantic's serializer (`built` + `streams.encode` cost ~63k
   instructions an outcome, callgrind, 2026-12-06; this ~40k, plus ~14k once per delivery):
   the model's two `__dict__`s as literals in field order, and the text from pieces. The
   nudge's part of the text (instants, occurrence, couple, kind, note, producer) is made
   once per delivery; an instant in UTC by `utc_text` (a whole second's text cached, ~1k a
   hit against ~10k for `isoformat`), any other by pydantic itself. Invariant: every string
   put in the text is its own JSON (printable ASCII without a quote or a backslash: checked
   once per delivery for the nudge's values, per outcome for the content id; partner ids
   pass SafeId, device references DeviceRef) and every value is valid for its field as for
   `built`, else `make` answers None and the delivery takes `built` and the serializer.
   tests/property/test_outcome_build.py: the same model (fields, fields set, hash) and the
   serializer's very bytes, for any values; the cases it refuses. The models' `__dict__`s are
   copies of two per-delivery templates (the nudge's values in place, field order kept) with
   the send's values set (h/notify14: ~3k instructions less than two dict literals and
   `format(int, "032x")`); the event id's text is its integer's 16 bytes, `hex()`. Invariant:
   the templates are never given away (each model gets a copy); tests pin both.
4. The NudgeSent and NudgeSentData that `SentOutcomes.make` builds share one fields set per
   model (`_SENT_FIELDS`, `_SENT_DATA_FIELDS`), not a copy each (issue 20, h/notify13).
   Invariant: nothing changes a model's `model_fields_set` in place: pydantic reads it, or
   copies it before it changes it (`model_copy`, `copy`), and its one change in place,
   `__setattr__`'s `add`, cannot happen on these frozen models; nor does our code.
   tests/property/test_outcome_build.py checks the shared sets unchanged after use.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Final, NamedTuple, TypeVar

from pydantic import AwareDatetime, BaseModel, TypeAdapter

from couples_nudge_schemas import Channel as ChannelName
from couples_nudge_schemas import NudgeKind, NudgeSent, NudgeSentData

__all__ = ["Encoded", "SentOutcomes", "built", "outcome_id", "plain_fields", "utc_text"]

M = TypeVar("M", bound=BaseModel)

_NS: Final = uuid.UUID("1f6f3c5e-2b8a-4b0e-9d1c-7e5a3b2c4d6f")
_NS_SHA1: Final = hashlib.sha1(_NS.bytes, usedforsecurity=False)  # the namespace, hashed once
# uuid.UUID(version=5): variant RFC 4122 (bits 10 at 62-63), version 5 (bits 76-79).
_CLEAR: Final = ~((0xC000 << 48) | (0xF000 << 64))
_SET: Final = (0x8000 << 48) | (5 << 76)
_new_uuid = uuid.UUID.__new__
# `cls.__new__(cls)` for a pydantic model, which defines no __new__ of its own (a test pins
# it): `cls.__new__` would go through the model metaclass's `__getattr__` hook (~1.5k
# instructions a read, twice an outcome).
_new_model = object.__new__
_SAFE_UUID: Final = uuid.SafeUUID.unknown
# Slots set by calling their descriptors' `__set__`, what `object.__setattr__` ends in after
# looking the name up on the class (~0.7k instructions less a model; tests pin the slots): a
# UUID's two (`int`, `is_safe`), a pydantic model's four (BaseModel's `__dict__`, fields set,
# extras, private values).
_set_int: Final = vars(uuid.UUID)["int"].__set__
_set_is_safe: Final = vars(uuid.UUID)["is_safe"].__set__
_set_dict: Final = vars(BaseModel)["__dict__"].__set__
_set_fields_set: Final = vars(BaseModel)["__pydantic_fields_set__"].__set__
_set_extra: Final = vars(BaseModel)["__pydantic_extra__"].__set__
_set_private: Final = vars(BaseModel)["__pydantic_private__"].__set__


def outcome_id(about: str) -> uuid.UUID:
    """``uuid.uuid5(_NS, about)``: SHA-1 of the namespace and the name (the namespace's part
    hashed once per process), the UUID made from its integer (see the module docstring, 2)."""
    return _uuid_of(_outcome_int(about))


def _outcome_int(about: str) -> int:
    """The 128-bit integer of `outcome_id(about)`."""
    sha1 = _NS_SHA1.copy()
    sha1.update(about.encode())
    return (int.from_bytes(sha1.digest()[:16]) & _CLEAR) | _SET


def _uuid_of(value: int) -> uuid.UUID:
    """`uuid.UUID(int=value)` for a version 5 integer (`_outcome_int`): module docstring, 2."""
    made = _new_uuid(uuid.UUID)
    _set_int(made, value)
    _set_is_safe(made, _SAFE_UUID)
    return made


_SAFE_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # schemas' SafeId
_DEVICE_REF: Final = re.compile(r"[0-9a-f]{16}")  # outcomes.DeviceRef
_CONTENT_MAX: Final = 64  # NudgeSentData.content_id
_ERROR_MAX: Final = 200  # NudgeFailedData.error


def plain_fields(
    partner_id: str | None,
    device: str | None = None,
    content_id: str | None = None,
    error: str | None = None,
) -> bool:
    """Whether the values an outcome takes from outside the NudgeDue pass their fields' rules
    (then `built` may skip validation: see the module docstring, 1)."""
    return (
        (partner_id is None or _SAFE_ID.fullmatch(partner_id) is not None)
        and (device is None or _DEVICE_REF.fullmatch(device) is not None)
        and (content_id is None or len(content_id) <= _CONTENT_MAX)
        and (error is None or len(error) <= _ERROR_MAX)
    )


_templates: dict[type[BaseModel], dict[str, Any]] = {}


def built(cls: type[M], /, **values: Any) -> M:
    """`cls(**values)` without validation, for values already valid (module docstring, 1):
    the fields in their declared order, defaults for those not given, `model_fields_set` as
    the constructor sets it."""
    template = _templates.get(cls)
    if template is None:  # defaults taken once: a factory's value would be shared, so none
        if any(info.default_factory is not None for info in cls.model_fields.values()):
            raise TypeError(f"{cls.__name__}: a field with a default factory")
        template = _templates[cls] = {
            name: None if info.is_required() else info.default
            for name, info in cls.model_fields.items()
        }
    fields = template.copy()
    fields.update(values)
    model = _new_model(cls)
    _set_dict(model, fields)
    _set_fields_set(model, set(values))
    _set_extra(model, None)
    _set_private(model, None)
    return model


class Encoded(NamedTuple):
    """An outcome and its JSON, the bytes `streams.encode(event)` gives."""

    event: NudgeSent
    data: bytes


_new_tuple = tuple.__new__


def _json_plain(text: str) -> bool:
    """Whether `text` is printable ASCII without a quote or a backslash: its JSON string is
    the text itself, quoted. (str methods: a regex costs ~2k instructions a short text.)"""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


# NudgeSentData's fields `SentOutcomes.make` gives (attempt keeps its default) and the
# envelope's: the fields sets `built` gives those calls.
_SENT_DATA_SET: Final = frozenset(NudgeSentData.model_fields) - {"attempt"}
_SENT_SET: Final = frozenset(NudgeSent.model_fields)
# The one fields set every outcome `make` builds shares, per model (module docstring, 4).
_SENT_DATA_FIELDS: Final = set(_SENT_DATA_SET)
_SENT_FIELDS: Final = set(_SENT_SET)


# pydantic's own JSON of a pair of instants: the texts `SentOutcomes` puts in its outcomes
# when `utc_text` does not cover one of them.
_INSTANTS: Final = TypeAdapter(tuple[AwareDatetime, AwareDatetime]).serializer
# The tzinfo pydantic gives an instant read with "Z" (one object: a test pins it).
_PYDANTIC_UTC: Final = TypeAdapter(AwareDatetime).validate_json(b'"2000-01-01T00:00:00Z"').tzinfo
_SECONDS: dict[int, str] = {}  # epoch second -> "YYYY-MM-DDTHH:MM:SS" (UTC)
_SECONDS_KEPT: Final = 1024


def utc_text(at: datetime, ms: int) -> str | None:
    """`at` as pydantic writes it in JSON (without the quotes) when it is in UTC (`UTC` or
    pydantic's own "Z" tzinfo), from `ms`, its epoch milliseconds (`clock.epoch_ms(at)`,
    which the caller has): its whole second's text, made once per second, the microseconds
    when not zero, "Z". None for any other tzinfo (then pydantic writes it)."""
    zone = at.tzinfo
    if zone is not UTC and zone is not _PYDANTIC_UTC:
        return None
    second = ms // 1000
    text = _SECONDS.get(second)
    if text is None:
        if len(_SECONDS) >= _SECONDS_KEPT:
            _SECONDS.clear()
        text = _SECONDS[second] = at.replace(microsecond=0, tzinfo=None).isoformat()
    micro = at.microsecond
    return f"{text}.{micro:06d}Z" if micro else f"{text}Z"


class SentOutcomes:
    """The "sent" outcomes of one delivery and their JSON, without pydantic's serializer: the
    nudge's part of the text is made once (its instants, ids, kind and note), each outcome's
    event id, partner, channel, device and content are put in it (module docstring, 3)."""

    __slots__ = (
        "_data",
        "_event",
        "_head",
        "_tail",
    )

    def __init__(
        self,
        producer: str,
        occurrence_id: str,
        couple_id: str,
        kind: NudgeKind,
        scheduled_at: datetime,
        scheduled_ms: int,
        note: str | None,
        now: datetime,
        now_ms: int,
    ) -> None:
        self._head: str | None = None  # None: the serializer's path for every outcome
        # The two models' `__dict__`s in field order, the delivery's values in place: `make`
        # copies them (a C copy of the table) and sets the send's own values, instead of
        # building a 10- and a 5-key dict per outcome (~3k instructions less).
        self._data: dict[str, Any] = {
            "occurrence_id": occurrence_id,
            "couple_id": couple_id,
            "kind": kind,
            "scheduled_at": scheduled_at,
            "partner_id": None,
            "channel": None,
            "device": None,
            "content_id": None,
            "attempt": 1,
            "note": note,
        }
        self._event: dict[str, Any] = {
            "event_id": None,
            "occurred_at": now,
            "producer": producer,
            "type": "nudge.sent.v1",
            "data": None,
        }
        plain = f"{producer}{occurrence_id}{couple_id}{kind}{note or ''}"
        if not _json_plain(plain):  # never for a validated NudgeDue's values
            return
        sent, scheduled = utc_text(now, now_ms), utc_text(scheduled_at, scheduled_ms)
        if sent is None or scheduled is None:
            sent, scheduled = _INSTANTS.to_json((now, scheduled_at)).decode()[2:-2].split('","')
        self._head = (
            f'","occurred_at":"{sent}","producer":"{producer}","type":"nudge.sent.v1",'
            f'"data":{{"occurrence_id":"{occurrence_id}","couple_id":"{couple_id}",'
            f'"kind":"{kind}","scheduled_at":"{scheduled}","partner_id":"'
        )
        note_text = "null" if note is None else f'"{note}"'
        self._tail = f'","attempt":1,"note":{note_text}}}}}'

    def make(
        self,
        key: str,
        partner_id: str,
        channel: ChannelName,
        device: str | None,
        content_id: str,
    ) -> Encoded | None:
        """The NudgeSent of the send whose idempotency key is `key`, and its JSON; None when a
        value needs pydantic (to validate it, or to write it as JSON)."""
        head = self._head
        if (
            head is None
            or _SAFE_ID.fullmatch(partner_id) is None
            or (device is not None and _DEVICE_REF.fullmatch(device) is None)
            or len(content_id) > _CONTENT_MAX
            or not _json_plain(content_id)
        ):
            return None
        value = _outcome_int(key)
        event_id = _uuid_of(value)
        fields = self._data.copy()
        fields["partner_id"] = partner_id
        fields["channel"] = channel
        fields["device"] = device
        fields["content_id"] = content_id
        data = _new_model(NudgeSentData)
        _set_dict(data, fields)
        _set_fields_set(data, _SENT_DATA_FIELDS)
        _set_extra(data, None)
        _set_private(data, None)
        fields = self._event.copy()
        fields["event_id"] = event_id
        fields["data"] = data
        event = _new_model(NudgeSent)
        _set_dict(event, fields)
        _set_fields_set(event, _SENT_FIELDS)
        _set_extra(event, None)
        _set_private(event, None)
        h = value.to_bytes(16).hex()  # the UUID's hex: bytes.hex, not format(int, "032x")
        device_text = "null" if device is None else f'"{device}"'
        text = (
            f'{{"event_id":"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}{head}{partner_id}'
            f'","channel":"{channel}","device":{device_text},"content_id":"{content_id}'
            f"{self._tail}"
        )
        return _new_tuple(Encoded, (event, text.encode()))
