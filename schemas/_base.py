"""Building blocks shared by every event: strict base model, the envelope, constrained types.

Every model is strict (no type coercion), forbids unknown fields and is immutable. Events are
always validated from JSON bytes, where pydantic's strict mode still reads ISO 8601 strings as
datetimes and UUIDs.
"""

from __future__ import annotations

import functools
import re
import uuid
import zoneinfo
from datetime import time
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "Envelope",
    "LocalTime",
    "Name",
    "Producer",
    "SafeId",
    "StrictModel",
    "TimeZoneName",
]


class StrictModel(BaseModel):
    """Strict, closed, immutable: the base of every schema model."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_zone(name: str) -> str:
    if name not in _known_zones():
        raise ValueError(f"unknown IANA time zone {name!r}")
    return name


def _check_local_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time must not carry a UTC offset; the partner's zone applies")
    if value.second or value.microsecond:
        raise ValueError("local times have minute precision (HH:MM)")
    return value


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters are not allowed")
    if value != value.strip():
        raise ValueError("leading or trailing whitespace is not allowed")
    return value


# Ids end up inside Redis keys and hash tags, so they exclude braces, colons and whitespace.
SafeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_check_zone)]
LocalTime = Annotated[time, AfterValidator(_check_local_time)]
Name = Annotated[
    str, StringConstraints(min_length=1, max_length=40), AfterValidator(_check_printable)
]
Producer = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\w.:/-]+$")]


class Envelope(StrictModel):
    """What every event carries: a versioned type, a unique id, when it happened, who sent it."""

    event_id: uuid.UUID
    occurred_at: AwareDatetime
    producer: Producer = Field(description="Name of the publishing app or service.")
