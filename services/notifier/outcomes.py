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
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any, Final, TypeVar

from pydantic import BaseModel

__all__ = ["built", "outcome_id", "plain_fields"]

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
    sha1 = _NS_SHA1.copy()
    sha1.update(about.encode())
    made = _new_uuid(uuid.UUID)
    _set_int(made, (int.from_bytes(sha1.digest()[:16]) & _CLEAR) | _SET)
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
