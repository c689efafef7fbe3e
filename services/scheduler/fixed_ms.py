"""`clock.epoch_ms` for the ingestion path: an instant's exact epoch milliseconds, cheaper.

`epoch_ms(instant)` is `(instant - _EPOCH) // 1 ms`. An event's `occurred_at` carries
pydantic-core's `TzInfo` (one shared object per offset), not `datetime.UTC`, so that
subtraction asks each side's tzinfo for its `utcoffset` through a method call by name (~3.7k
instructions), and the timedelta floor division converts both deltas to microseconds (~2.4k):
~7.7k an event (callgrind), twice an event with the planner's `now`.

The invariant: a fixed-offset tzinfo (exactly `datetime.timezone` or pydantic-core's `TzInfo`,
whose `utcoffset` does not depend on the instant) gives every instant the same offset. Two
aware datetimes with the same tzinfo object subtract as naive ones (CPython compares the
tzinfo by identity first), so `instant - epoch` with the epoch written in the instant's own
tzinfo is its local wall time since 1970-01-01 00:00, and its offset (read once per tzinfo
object and kept with it) is then taken off in microseconds, exactly: floor((local - offset) /
1 ms), which is what `epoch_ms` computes. Any other tzinfo (a ZoneInfo: its offset moves) goes
to `epoch_ms` itself. tests/property/test_fixed_ms.py holds both equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Final

from pydantic_core import TzInfo

from couples_nudge.common.clock import epoch_ms

__all__ = ["instant_ms"]

_FIXED_TYPES: Final = frozenset({timezone, TzInfo})
_MS: Final = timedelta(milliseconds=1)


@dataclass(slots=True, frozen=True)
class _Fixed:
    """A fixed-offset tzinfo, its epoch and its offset in milliseconds."""

    tz: tzinfo | None
    epoch: datetime  # 1970-01-01 00:00 in `tz`
    offset_ms: int


def instant_ms(instant: datetime) -> int:
    """`clock.epoch_ms(instant)`, exactly (see the module docstring)."""
    global _last
    tz = instant.tzinfo
    fixed = _UTC if tz is UTC else _last
    if fixed.tz is not tz:
        if type(tz) not in _FIXED_TYPES:
            return epoch_ms(instant)
        fixed = _last = _fixed(tz)
        if fixed.tz is not tz:
            return epoch_ms(instant)
    # The same tzinfo object: no utcoffset call. The offset in whole ms (`_fixed`): taken
    # off after the floor division as exactly as before it.
    return (instant - fixed.epoch) // _MS - fixed.offset_ms


def _fixed(tz: tzinfo | None) -> _Fixed:
    assert tz is not None  # a fixed-offset type
    offset = tz.utcoffset(None)
    assert offset is not None  # a fixed-offset tzinfo always has one
    offset_us = offset // _US
    if offset_us % 1000:  # an offset with a part of a millisecond (none in practice): never
        return _NEVER  # matched by no instant (its tzinfo is private): epoch_ms each time
    return _Fixed(tz, datetime(1970, 1, 1, tzinfo=tz), offset_us // 1000)


_US: Final = timedelta(microseconds=1)
_NEVER_TZ: Final = timezone(timedelta(0), "never matched")  # a private object
_NEVER: Final = _Fixed(_NEVER_TZ, datetime(1970, 1, 1, tzinfo=_NEVER_TZ), 0)
# The planner's clock gives datetime.UTC (a `timezone`), an event pydantic-core's TzInfo: a
# slot each, so that the two alternating do not replace each other.
_UTC: Final = _fixed(UTC)
_last = _UTC
