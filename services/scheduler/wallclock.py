"""Local wall-clock times <-> instants, with the DST rules Debian's cron uses.

A schedule names *wall-clock* times ("every day at 02:30 in America/New_York").
Twice a year some of those names are not one instant:

* a wall time inside a spring-forward **gap** does not exist; it resolves to
  the first instant after the gap, i.e. the transition instant itself
  (02:30 on the US spring-forward day -> 03:00 EDT = 07:00 UTC), so every
  wall time in one gap resolves to the same instant;
* a wall time inside a fall-back **overlap** happens twice; it resolves to the
  first occurrence (``fold=0``).

:func:`resolve` is monotone (a later wall time never resolves to an earlier
instant), which is what lets :mod:`couples_nudge.scheduler.rules` walk candidates in
wall-clock order. All functions are pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["is_ambiguous", "is_nonexistent", "resolve", "to_local"]


def resolve(local: datetime, tz: ZoneInfo) -> datetime:
    """Naive local wall time -> aware UTC instant (gap -> transition instant, overlap -> first)."""
    first, second = _offsets(local, tz)
    if first >= second:  # the common case (equal), or an overlap: fold=0 is the first pass
        return (local - first).replace(tzinfo=UTC)
    return _end_of_gap(local, tz, first, second)


def is_nonexistent(local: datetime, tz: ZoneInfo) -> bool:
    """True when ``local`` falls in a spring-forward gap of ``tz``."""
    first, second = _offsets(local, tz)
    return first < second


def is_ambiguous(local: datetime, tz: ZoneInfo) -> bool:
    """True when ``local`` occurs twice in ``tz`` (a fall-back overlap)."""
    first, second = _offsets(local, tz)
    return first > second


def to_local(instant: datetime, tz: ZoneInfo) -> datetime:
    """Aware instant -> naive local wall time in ``tz`` (which pass of an overlap is dropped)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant must be timezone-aware, got naive {instant.isoformat()}")
    return instant.astimezone(tz).replace(tzinfo=None, fold=0)


def _offsets(local: datetime, tz: ZoneInfo) -> tuple[timedelta, timedelta]:
    """UTC offsets of ``local`` read with fold=0 and fold=1 (equal unless at a transition).

    For a gap, fold=0 gives the offset before the transition (the smaller one);
    for an overlap, fold=0 gives the first pass (the larger one). PEP 495.
    """
    if local.tzinfo is not None:
        raise ValueError(f"local wall time must be naive, got {local.isoformat()}")
    first = tz.utcoffset(local.replace(fold=0))
    second = tz.utcoffset(local.replace(fold=1))
    if first is None or second is None:  # pragma: no cover - ZoneInfo always answers
        raise ValueError(f"zone {tz.key} has no UTC offset for {local.isoformat()}")
    return first, second


def _end_of_gap(local: datetime, tz: ZoneInfo, before: timedelta, after: timedelta) -> datetime:
    """The transition instant that opens the gap containing ``local``.

    ``local`` read with the post-transition offset is an instant before the
    transition, read with the pre-transition offset one at or after it; the
    transition (a whole second in tzdata) lies in between, at most the gap's
    length apart (an hour, or a day for a skipped date), so bisecting on whole
    seconds takes under twenty steps. Only wall times inside a gap get here.
    """
    lo = math.floor((local - after).replace(tzinfo=UTC).timestamp())  # old offset
    hi = math.ceil((local - before).replace(tzinfo=UTC).timestamp())  # new offset
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)
