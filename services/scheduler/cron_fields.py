"""A validated cron expression compiled to bitmasks: which days match, the next match, gaps.

croniter parses and validates (``rules._fields``); :meth:`CronFields.compile` reads the
fields croniter expands (``expanded``, ``nth_weekday_of_month``, ``nearest_weekday``) once
per expression, and everything after is integer arithmetic on naive wall-clock times. Pure:
no clock, no zone, no I/O.

Day-of-month and day-of-week combine as in cronie (and Vixie cron before it): when either
field *starts with* ``*`` -- ``*``, ``*/3``, ``*/1``, or ``?``, which croniter reads as ``*``
-- a day must match both; otherwise either (``1-31``, ``1,15``, ``L``, ``15W``, ``1-5``,
``L5``, ``0#1``). cronie's entry.c sets ``DOM_STAR``/``DOW_STAR`` from the first character
of the field, and its cron.c ANDs the two bit tests when either flag is set, else ORs them.
``L``, ``W``, ``#`` and ``LD`` (croniter's extensions) belong to their own field's test.

The invariant the day masks rely on: whether a day of a month matches depends only on the
month being in the month field, the month's length (28-31) and the weekday of its 1st --
so 7 x 4 day masks, computed once, answer for every month of every year.

The gap walk (:meth:`CronFields.first_gap_below`) is exact for consecutive matches of the
naive wall clock, which is what the minimum-interval check measures (in UTC): the
hour x minute grid is the same on every matching day, so within a day the gaps are the
grid's, and across days the gap from the last time of one matching day to the first of the
next is ``days * 1440 - span`` minutes, where ``span`` is the grid's first-to-last distance.
Dropping matches (at the window's ends) only merges gaps, so when the grid's smallest gap
and ``1440 - span`` both reach the limit, no two matches anywhere are closer.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from itertools import pairwise
from typing import Final, Protocol

__all__ = ["CronFields", "ParsedField", "and_days"]

_DAY_MINUTES: Final = 1440
#: How far the next match is searched (croniter's max_years_between_matches is 9 here;
#: rules stops at 8 years past the previous match anyway).
_MONTHS_SEARCHED: Final = 12 * 10
_STARS: Final = frozenset("*?")
_IN_MONTH: Final = tuple(((1 << shape % 4 + 28) - 1) << 1 for shape in range(28))  # days 1..n


class ParsedField(Protocol):
    """croniter's reading of one field (its ``expanded`` values; for day-of-month its ``W``
    days, for day-of-week its ``D#n``/``LD`` weekdays: ``(weekday, (n or "l", ...))``)."""

    @property
    def values(self) -> Sequence[int | str]: ...
    @property
    def nth(self) -> Sequence[tuple[int, Sequence[int | str]]]: ...
    @property
    def nearest(self) -> Sequence[int]: ...


def and_days(day_of_month: str, day_of_week: str) -> bool:
    """True when the two day fields are AND-ed: either starts with ``*`` (or ``?``), as cronie."""
    return day_of_month[:1] in _STARS or day_of_week[:1] in _STARS


@lru_cache(maxsize=4096)
def month_shape(year: int, month: int) -> int:
    """The index of a month's day mask: the cron weekday of its 1st (Sunday 0) * 4 + length - 28."""
    monday_first, length = calendar.monthrange(year, month)
    return (monday_first + 1) % 7 * 4 + length - 28


@dataclass(frozen=True, slots=True)
class CronFields:
    """What one cron expression matches, as sorted minutes of the day and day bitmasks."""

    times: tuple[int, ...]  # minutes of the day (hour * 60 + minute), ascending
    months: int  # bit m set when month m (1-12) matches
    day_masks: tuple[int, ...]  # per month_shape: bit d set when day d matches
    span: int  # times[-1] - times[0]
    smallest_gap: int  # the smallest gap between consecutive times of a day (1440 if one time)

    @classmethod
    def compile(cls, fields: Sequence[str], parsed: Sequence[ParsedField]) -> CronFields:
        """Compile the five written ``fields`` from croniter's reading of each."""
        minute, hour, day, month, weekday = parsed
        times, span, smallest_gap = _times(tuple(minute.values), tuple(hour.values))
        masks = _day_masks(
            tuple(day.values),
            tuple(day.nearest),
            tuple(weekday.values),
            tuple((d, tuple(nth)) for d, nth in weekday.nth) if weekday.nth else (),
            and_days(fields[2], fields[4]),
        )
        return cls(times, _month_bits(tuple(month.values)), masks, span, smallest_gap)

    def day_mask(self, year: int, month: int) -> int:
        """Bit d set when day d of that month matches (0 when the month does not)."""
        if not self.months >> month & 1:
            return 0
        return self.day_masks[month_shape(year, month)]

    def matches_day(self, day: date) -> bool:
        return bool(self.day_mask(day.year, day.month) >> day.day & 1)

    def next_after(self, local: datetime) -> datetime | None:
        """The first match strictly after the naive wall time ``local`` (None: not within
        ten years, or past year 9999)."""
        times = self.times
        minute = local.hour * 60 + local.minute + 1  # whole minutes: strictly after
        day = local.date()
        if minute < _DAY_MINUTES and self.matches_day(day):
            i = bisect_left(times, minute)
            if i < len(times):
                hour, minute = divmod(times[i], 60)
                return datetime(day.year, day.month, day.day, hour, minute)
        found = self._next_day(day.year, day.month, day.day + 1)
        if found is None:
            return None
        hour, minute = divmod(times[0], 60)
        return datetime(found.year, found.month, found.day, hour, minute)

    def _next_day(self, year: int, month: int, earliest: int) -> date | None:
        """The first matching day on or after day ``earliest`` (may be 32) of that month."""
        for _ in range(_MONTHS_SEARCHED):
            mask = self.day_mask(year, month) >> earliest
            if mask:
                return date(year, month, earliest + (mask & -mask).bit_length() - 1)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            if year > 9999:
                return None
            earliest = 1
        return None

    def can_be_closer_than(self, limit: int) -> bool:
        """False when no two matches anywhere are closer than ``limit`` minutes: the grid's
        smallest gap and the distance across midnight (1440 - span) both reach it."""
        return self.smallest_gap < limit or _DAY_MINUTES - self.span < limit

    def first_gap_below(self, start: datetime, end: datetime, limit: int) -> int | None:
        """The first gap, in minutes, shorter than ``limit`` minutes between consecutive
        matches in (start, end] (naive), walking forward in time; None when there is none.

        Equal to walking every match with :meth:`next_after` and stopping at the first
        short gap, without the walk in the common case (see the module docstring).
        """
        if not self.can_be_closer_than(limit):
            return None
        times = self.times
        low = _minutes(start)  # matches are strictly after
        high = _minutes(end)  # and at most
        previous: int | None = None
        for ordinal in self._days_between(start.date(), end.date()):
            base = ordinal * _DAY_MINUTES
            first, last = bisect_right(times, low - base), bisect_right(times, high - base)
            if first >= last:
                continue
            if previous is not None and base + times[first] - previous < limit:
                return base + times[first] - previous
            if self.smallest_gap < limit:
                for a, b in pairwise(times[first:last]):
                    if b - a < limit:
                        return b - a
            previous = base + times[last - 1]
        return None

    def _days_between(self, first: date, last: date) -> Iterator[int]:
        """Ordinals of the matching days from ``first`` to ``last`` inclusive, ascending."""
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            mask = self.day_mask(year, month)
            if (year, month) == (first.year, first.month):
                mask &= -1 << first.day
            if (year, month) == (last.year, last.month):
                mask &= (2 << last.day) - 1
            before_first = date(year, month, 1).toordinal() - 1
            while mask:
                bit = mask & -mask
                yield before_first + bit.bit_length() - 1
                mask ^= bit
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)


@lru_cache(maxsize=1024)
def _times(
    minutes: tuple[int | str, ...], hours: tuple[int | str, ...]
) -> tuple[tuple[int, ...], int, int]:
    """The minutes of the day the minute and hour fields name, ascending; their span (first to
    last) and smallest gap (1440 for one time)."""
    times = tuple(
        sorted(h * 60 + m for h in _numbers(hours, 0, 23) for m in _numbers(minutes, 0, 59))
    )
    smallest = min((b - a for a, b in pairwise(times)), default=_DAY_MINUTES)
    return times, times[-1] - times[0], smallest


@lru_cache(maxsize=1024)
def _month_bits(months: tuple[int | str, ...]) -> int:
    """Bit m set when month m (1-12) is in the expanded month field."""
    return sum(1 << m for m in _numbers(months, 1, 12))


@lru_cache(maxsize=4096)
def _day_masks(
    days: tuple[int | str, ...],
    nearest: tuple[int, ...],
    weekdays: tuple[int | str, ...],
    nth: tuple[tuple[int, tuple[int | str, ...]], ...],
    both: bool,
) -> tuple[int, ...]:
    """The matching days of a month, per month shape, as bits: the day fields ANDed or ORed."""
    dom_masks = _day_of_month_masks(days, nearest)
    dow_masks = _day_of_week_masks(weekdays, nth)
    return tuple(
        (dom & dow if both else dom | dow) & _IN_MONTH[shape]
        for shape, (dom, dow) in enumerate(zip(dom_masks, dow_masks, strict=True))
    )


def _numbers(values: Sequence[int | str], low: int, high: int) -> Sequence[int]:
    """The values of a minute, hour or month field (``"*"`` among them: all)."""
    return range(low, high + 1) if "*" in values else [int(value) for value in values]


def _minutes(moment: datetime) -> int:
    """A naive time as whole minutes since the proleptic epoch (seconds dropped)."""
    return moment.toordinal() * _DAY_MINUTES + moment.hour * 60 + moment.minute


def _day_of_month_masks(days: Sequence[int | str], nearest: Sequence[int]) -> list[int]:
    """croniter's expanded day-of-month (numbers, ``"l"``, or ``["*"]``) and its ``W`` days,
    as the bits of the matching days of a month, per month shape."""
    if nearest:  # croniter allows "15W" only alone in its field
        return [
            sum(1 << _nearest_weekday(shape // 4, shape % 4 + 28, day) for day in nearest)
            for shape in range(28)
        ]
    if "*" in days:
        return [-1] * 28
    fixed = sum(1 << int(day) for day in set(days) if day != "l")
    last = int("l" in days)
    return [fixed | last << shape % 4 + 28 for shape in range(28)]


def _day_of_week_masks(
    weekdays: Sequence[int | str], nth: Sequence[tuple[int, Sequence[int | str]]]
) -> list[int]:
    """croniter's expanded day-of-week (0-6, Sunday 0, or ``["*"]``) and its ``D#n``/``LD``
    days (which replace the plain weekdays), as bits, per month shape."""
    if nth:
        masks = []
        for shape in range(28):
            first, length, bits = shape // 4, shape % 4 + 28, 0
            for weekday, occurrences in nth:
                first_day = (int(weekday) - first) % 7 + 1
                for n in occurrences:
                    last = n == "l"
                    day = first_day + 7 * ((length - first_day) // 7 if last else int(n) - 1)
                    bits |= 1 << day
            masks.append(bits)
        return masks
    if "*" in weekdays:
        return [-1] * 28
    # Bit k of `weeks` is set when weekday k % 7 matches; day d of a month whose 1st is
    # weekday f falls on weekday (f + d - 1) % 7, so that month's bits are weeks >> f << 1.
    wanted = {int(weekday) % 7 for weekday in weekdays}
    weeks = sum(1 << k for k in range(38) if k % 7 in wanted)
    return [weeks >> shape // 4 << 1 for shape in range(28)]


def _nearest_weekday(first: int, length: int, day: int) -> int:
    """The weekday (Monday-Friday) nearest to ``day`` within the month, as croniter: a
    Saturday moves to Friday (to Monday the 3rd from a Saturday 1st), a Sunday to Monday
    (to Friday from a Sunday on the last day); a day past the month's end reads as its last."""
    day = min(day, length)
    weekday = (first + day - 1) % 7  # Sunday 0
    if weekday == 6:
        return day - 1 if day > 1 else day + 2
    if weekday == 0:
        return day + 1 if day < length else day - 2
    return day
