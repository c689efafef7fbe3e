"""Recurrence rules and when they fire next.

A rule yields *local wall-clock* candidates (naive datetimes) in the couple's
IANA zone; :func:`couples_nudge.scheduler.wallclock.resolve` turns each into an
instant the way Debian's cron treats fixed-time jobs:

* a candidate inside a spring-forward gap fires once, at the transition
  instant (02:30 on the US spring-forward day -> 03:00 EDT = 07:00 UTC);
  several candidates inside one gap collapse into that single fire;
* a candidate inside a fall-back overlap fires once, at its first occurrence;
* so a daily rule fires once per local calendar day and a weekly rule once per
  local week. (Where a gap straddles midnight -- America/Nuuk jumps from
  Saturday 23:00 to Sunday 00:00 -- a Saturday 23:30 candidate fires at Sunday
  00:00: once for Saturday's schedule, but on Sunday's date.)

Unlike Debian's cron, rules with ``*`` in the minute or hour field get the same
treatment rather than running on elapsed time: "0 * * * *" in New York fires
at 01:00 EDT and then 02:00 EST on the fall-back day, not at 01:00 EST.

Rules:

* :class:`CronRule` -- a 5-field cron expression in local time, croniter syntax:
  lists, ranges, steps, names, ``L`` (last day of the month), ``L5`` (last
  Friday), ``sun#1``/``0#1`` (first Sunday), ``15W`` (nearest weekday),
  wrapping ranges (hours ``22-2``). Day-of-month and day-of-week combine as in
  cronie: AND-ed when either field starts with ``*`` (also ``*/2``, and ``?``),
  OR-ed otherwise (see :mod:`couples_nudge.scheduler.cron_fields`). Deliberate
  differences from croniter 7: an equal range such as ``5-5`` is the single
  value 5, as in every cron, not croniter's "whole cycle"; an n-th or last
  weekday listed with plain weekdays ("1,1#2") is refused. ``H``/``R``
  (hashed/random) values and ``@daily``-style macros are refused. Optionally
  only every 2nd..4th week, counted in Monday-weeks from an anchor date.
* :class:`SpreadRule` -- N distinct days per ISO week at seeded, uniformly
  spread minutes inside a daily window, so a million couples do not all fire
  at the same minute.

Everything here is pure: ``after``/``start`` come in as arguments, no clock and
no I/O. Returned instants are aware UTC with ``second == 0`` and
``microsecond == 0``. Candidates are *naive* wall-clock datetimes: croniter's
own timezone support is not used (croniter 7.0.0 fires "30 1 * * *" twice on a
fall-back day in America/New_York).

croniter parses and validates; it is never iterated. What it reads of each field
is compiled into :class:`couples_nudge.scheduler.cron_fields.CronFields` (minutes of
the day, month and day bitmasks), which finds next matches and the gaps the
minimum-interval check needs with integer arithmetic. Readings of valid fields,
compiled expressions and next fires are cached.

Errors: :class:`RuleError` (a ``ValueError``) for a bad expression, week
cadence or window; a plain ``ValueError`` for a naive ``after``/``start``/``end``.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise, takewhile
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from croniter import (  # type: ignore[import-untyped, unused-ignore]
    CroniterError,
    croniter,
)

from couples_nudge.scheduler.cron_fields import CronFields
from couples_nudge.scheduler.wallclock import resolve, to_local
from couples_nudge_schemas.preferences import CronFieldReading, cron_field_reading

__all__ = [
    "CronRule",
    "DailyWindow",
    "Rule",
    "RuleError",
    "SpreadRule",
    "fires_between",
    "first_gap_below",
    "min_gap",
    "next_fire",
    "spread_minutes",
    "validate_cron",
    "week_spread",
    "week_tag",
    "window_minutes",
]

#: How far past the previous candidate the search looks before giving up
#: (a leap-day rule can go 8 years between fires: 2096-02-29 -> 2104-02-29).
_SEARCH_YEARS = 8
_SEARCH_SPAN = timedelta(days=366 * _SEARCH_YEARS + 1)
_MINUTE = timedelta(minutes=1)
_UTC = ZoneInfo("UTC")
_WEEK = timedelta(weeks=1)
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_FIELD_RE = re.compile(r"\S+", re.ASCII)  # croniter's own field splitting
_NUMBERS_RE = re.compile(r"(\d+)(?:-(\d+))?", re.ASCII)
_WEEKDAY_NAMES = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # cron's 0-7
_LAST_WEEKDAY_RE = re.compile(r"[0-7]l", re.ASCII | re.IGNORECASE)
# An equal range of numbers or names, without a step or with a non-zero one ("5-5/0" stays,
# for croniter to refuse; so do "L-L" and "15W-15W").
_EQUAL_RANGE_RE = re.compile(
    r"(\d+|[a-z]{3})-(\d+|[a-z]{3})(?:/0*[1-9]\d*)?", re.ASCII | re.IGNORECASE
)
_PARSE_START = datetime(2000, 1, 1)
_CRONITER_ERRORS = (CroniterError, ValueError, TypeError, KeyError, IndexError)
_HASHED_RE = re.compile(r"(?:^|,)[hr](?:$|[(/,])", re.ASCII | re.IGNORECASE)


class RuleError(ValueError):
    """A rule that can never be scheduled: bad cron expression, week cadence or window."""


@dataclass(frozen=True, slots=True)
class CronRule:
    """A 5-field cron expression in local wall-clock time, optionally every N-th week."""

    expr: str
    every_weeks: int = 1
    anchor: date | None = None

    def __post_init__(self) -> None:
        validate_cron(self.expr)
        if isinstance(self.every_weeks, bool) or not isinstance(self.every_weeks, int):
            raise RuleError(f"every_weeks must be an int from 1 to 4, got {self.every_weeks!r}")
        if not 1 <= self.every_weeks <= 4:
            raise RuleError(f"every_weeks must be from 1 to 4, got {self.every_weeks}")
        if self.anchor is not None and (
            isinstance(self.anchor, datetime) or not isinstance(self.anchor, date)
        ):
            raise RuleError(f"anchor must be a date, got {self.anchor!r}")
        if self.every_weeks > 1 and self.anchor is None:
            raise RuleError(
                f"every_weeks={self.every_weeks} needs an anchor date to count weeks from"
            )


@dataclass(frozen=True, slots=True)
class SpreadRule:
    """N times a week at deterministic, seeded local times inside a daily window.

    For each ISO week, ``blake2b(f"{seed}\\0{iso_year:04d}-W{iso_week:02d}",
    digest_size=64, person=b"nudge-spread")`` is read as sixteen little-endian
    uint32 draws: draws 0-5 shuffle the weekdays Mon..Sun (Fisher-Yates, i = 6..1,
    j = draw % (i + 1)) and the first ``times_per_week`` are the days; draw 6 + d
    picks minute ``draw % width`` of the window for weekday d. The same seed and
    week give the same times in every process and release; window_end is
    exclusive; both bounds are whole minutes.
    """

    times_per_week: int
    window_start: time
    window_end: time
    seed: str

    def __post_init__(self) -> None:
        n = self.times_per_week
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 7:
            raise RuleError(f"times_per_week must be an int from 1 to 7, got {n!r}")
        for name in ("window_start", "window_end"):
            value = getattr(self, name)
            if not isinstance(value, time):
                raise RuleError(f"{name} must be a datetime.time, got {value!r}")
            if value.tzinfo is not None:
                raise RuleError(f"{name} must be a naive local time, got {value.isoformat()}")
            if value.second or value.microsecond:
                raise RuleError(f"{name} must be a whole minute, got {value.isoformat()}")
        if self.window_end <= self.window_start:
            raise RuleError(
                f"window_end {self.window_end:%H:%M} must be after "
                f"window_start {self.window_start:%H:%M}"
            )
        if not isinstance(self.seed, str) or not self.seed:
            raise RuleError(f"seed must be a non-empty string, got {self.seed!r}")


Rule = CronRule | SpreadRule


def validate_cron(expr: str) -> None:
    """Raise :class:`RuleError` unless ``expr`` is a 5-field cron expression croniter accepts."""
    _fields(expr)  # a valid expression is compiled at once: every rule built gets walked


def next_fire(rule: Rule, tz: ZoneInfo, after: datetime) -> datetime | None:
    """The first instant strictly after ``after`` (aware) at which ``rule`` fires, in UTC.

    None when the rule has no candidate within 8 years (e.g. "0 0 30 2 *").
    """
    _require_aware("after", after)
    if isinstance(rule, CronRule):
        return _next_cron_fire(rule, tz, after)
    return _next_spread_fire(rule, tz, after)


@lru_cache(maxsize=16_384)
def _next_cron_fire(rule: CronRule, tz: ZoneInfo, after: datetime) -> datetime | None:
    """Memoized: at a busy instant thousands of schedules share one rule, zone and instant.

    ``next(_instants(...))`` without its generators when the first candidate will do (every
    week in the cadence, and past ``after`` once resolved: all but DST and cadence edges).
    """
    if rule.every_weeks == 1:
        local_after = to_local(after, tz)
        local = _fields(rule.expr).next_after(local_after)
        if local is not None and local <= _add_or_max(local_after, _SEARCH_SPAN):
            instant = _whole_minute(resolve(local, tz))
            if instant > after:
                return instant
    return next(_instants(rule, tz, after), None)


def fires_between(rule: Rule, tz: ZoneInfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every fire in (start, end], ascending, each instant once."""
    _require_aware("start", start)
    _require_aware("end", end)
    return takewhile(lambda instant: instant <= end, _instants(rule, tz, start))


def min_gap(rule: Rule, tz: ZoneInfo, start: datetime, horizon: timedelta) -> timedelta | None:
    """The smallest interval between consecutive fires in (start, start + horizon].

    None when fewer than two fires fall in that span. The gap rule shortens
    intervals at spring-forward: "30 * * * *" in New York fires 01:30 EST,
    03:00 EDT (for 02:30), 03:30 EDT -- 30 minutes apart on that one day.
    """
    fires = fires_between(rule, tz, start, start + horizon)
    return min((b - a for a, b in pairwise(fires)), default=None)


def first_gap_below(
    rule: CronRule, start: datetime, end: datetime, limit: timedelta
) -> timedelta | None:
    """The first gap shorter than ``limit`` between consecutive fires in (start, end], on the
    UTC wall clock, walking forward in time; None when no two fires are that close.

    Exactly what walking ``fires_between(rule, UTC, start, end)`` and stopping at the first
    short gap finds (the year walk the minimum-interval check used to make), derived from
    the expression's fields instead: see :mod:`couples_nudge.scheduler.cron_fields`.
    """
    _require_aware("start", start)
    _require_aware("end", end)
    if rule.every_weeks > 1:  # never for raw cron; the walk is the definition
        fires = fires_between(rule, _UTC, start, end)
        return next((b - a for a, b in pairwise(fires) if b - a < limit), None)
    minutes = max(-(-limit // _MINUTE), 0)  # whole-minute gaps: gap < limit <=> gap < ceil
    fields = _fields(rule.expr)
    if not fields.can_be_closer_than(minutes):
        return None
    gap = fields.first_gap_below(to_local(start, _UTC), to_local(end, _UTC), minutes)
    return None if gap is None else gap * _MINUTE


# --- iteration --------------------------------------------------------------


def _instants(rule: Rule, tz: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Resolved fires strictly after ``after``, strictly increasing.

    ``resolve`` is monotone in wall-clock time, so walking candidates after the
    local wall time of ``after`` and dropping every instant not past the last
    one handles both DST cases: the rest of a gap (same transition instant) and
    the second pass of an overlap (candidates resolve to the first pass,
    which is already over).
    """
    last = after
    local_after = to_local(after, tz)
    candidates = (
        _cron_candidates(rule, local_after)
        if isinstance(rule, CronRule)
        else _spread_candidates(rule, local_after)
    )
    for local in candidates:
        instant = _whole_minute(resolve(local, tz))
        if instant > last:
            last = instant
            yield instant


def _cron_candidates(rule: CronRule, local_after: datetime) -> Iterator[datetime]:
    """Naive wall-clock matches of ``rule`` strictly after ``local_after``, ascending."""
    step = _fields(rule.expr).next_after
    horizon = _add_or_max(local_after, _SEARCH_SPAN)
    current = local_after
    while True:
        local = step(current)
        if local is None or local > horizon:
            return
        if rule.every_weeks > 1 and not _in_cadence(rule, local.date()):
            # Jump to the Monday of the next week in the cadence instead of
            # walking every candidate of the off weeks ("* * * * *" has 10080).
            monday = _monday(local.date())
            skip = _off_weeks_left(rule, monday)
            current = datetime.combine(monday + skip, time()) - _MINUTE
            continue
        horizon = _add_or_max(local, _SEARCH_SPAN)
        current = local
        yield local


def _spread_candidates(rule: SpreadRule, local_after: datetime) -> Iterator[datetime]:
    """Naive wall-clock times of ``rule``, week by week from the week of ``local_after``."""
    monday = _monday(local_after.date())
    while True:
        for local in _spread_week(rule, monday):
            if local > local_after:
                yield local
        monday += _WEEK


def _next_spread_fire(rule: SpreadRule, tz: ZoneInfo, after: datetime) -> datetime:
    """``next(_instants(rule, tz, after))`` without generators or a datetime per candidate:
    a couple's times-per-week schedule is planned on the ingestion path, once per couple.

    Candidates compare as whole minutes into the week first: a minute ``m`` is after the local
    time of ``after`` exactly when ``m`` is past the minutes elapsed, rounded down (the
    instant check alone would do; this skips resolving the ones before). Every week has a
    candidate, so this ends (in the next week but for DST edges).
    """
    local_after = to_local(after, tz)
    monday = _monday(local_after.date())
    first_minute = datetime(monday.year, monday.month, monday.day)
    elapsed = (local_after - first_minute) // _MINUTE
    while True:
        for minute in _spread_minutes(rule, monday):
            if minute > elapsed:
                instant = _whole_minute(resolve(first_minute + _MINUTE * minute, tz))
                if instant > after:
                    return instant
        monday += _WEEK
        first_minute += _WEEK
        elapsed = -1  # every minute of a later week is after


def _spread_week(rule: SpreadRule, monday: date) -> list[datetime]:
    """The rule's wall-clock times in the ISO week starting on ``monday``, ascending."""
    first_minute = datetime(monday.year, monday.month, monday.day)
    return [first_minute + _MINUTE * minute for minute in _spread_minutes(rule, monday)]


# A 64-byte digest's sixteen little-endian uint32 draws, but the last three, never read (the
# last day's is draw 12): three ints fewer to build a call.
_DRAWS = struct.Struct("<13I")
_SPREAD_HASH = hashlib.blake2b(digest_size=64, person=b"nudge-spread")  # copied per week


def _spread_minutes(rule: SpreadRule, monday: date) -> list[int]:
    """The rule's times in the ISO week starting on ``monday``, as minutes into it, ascending."""
    return spread_minutes(
        rule.seed, rule.times_per_week, rule.window_start, rule.window_end, monday
    )


def spread_minutes(
    seed: str, times_per_week: int, window_start: time, window_end: time, monday: date
) -> list[int]:
    """A spread rule's times in the ISO week starting on ``monday``, as minutes into it,
    ascending; the rule given by its parts (a valid one: no :class:`SpreadRule` is built).

    See :class:`SpreadRule` for the derivation. Taking the first N of one
    shuffle means a larger N adds days without moving the others; the modulo
    bias of a 32-bit draw is below 2**-20 even for a full-day window.
    """
    start, width = window_minutes(window_start, window_end)
    return week_spread(seed.encode() + week_tag(monday), times_per_week, start, width)


def week_spread(text: bytes, times_per_week: int, start: int, width: int) -> list[int]:
    """`spread_minutes` from the text it hashes (the seed in UTF-8, then `week_tag`) and the
    window as `window_minutes` gives it: for callers that keep those per week and per rule."""
    draws, days = _draws_and_days(text, times_per_week)
    minutes = []
    for day in days:  # a loop: a list comprehension's own function frame costs ~2k more
        minutes.append(1440 * day + start + draws[6 + day] % width)
    return minutes


def first_spread_minute(
    text: bytes, times_per_week: int, start: int, width: int, after: int
) -> int | None:
    """The first of `week_spread`'s minutes after `after` (None: none is), without its list:
    ShapePlanner.arms asks this once per times-per-week arm of every couple it plans."""
    draws, days = _draws_and_days(text, times_per_week)
    for day in days:
        minute = 1440 * day + start + draws[6 + day] % width
        if minute > after:
            return minute
    return None


def _draws_and_days(text: bytes, times_per_week: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The digest's 13 draws of `text` and the days (0 Monday, ascending) its shuffle gives."""
    digest = _SPREAD_HASH.copy()
    digest.update(text)
    draws: tuple[int, ...] = _DRAWS.unpack_from(digest.digest())
    # The shuffle's six choices (draws[0] % 7, ..., draws[5] % 2) as one mixed-radix number:
    # there are only 7! shuffles, and the days each gives are computed once (_spread_days).
    shuffle = (
        (((draws[0] % 7 * 6 + draws[1] % 6) * 5 + draws[2] % 5) * 4 + draws[3] % 4) * 3
        + draws[4] % 3
    ) * 2 + draws[5] % 2
    # An int key: a dict read, ~1/4 of an lru_cache call. The days depend only on the choices
    # of the swaps at i >= times_per_week (see _SAME_DAYS), so the others are dropped from it.
    key = shuffle // _SAME_DAYS[times_per_week] * 8 + times_per_week
    days = _DAYS.get(key)
    if days is None:
        days = _DAYS[key] = _spread_days(shuffle, times_per_week)
    return draws, days


_DAYS: dict[int, tuple[int, ...]] = {}  # _spread_days by its key (_draws_and_days): 8,660 at most

# How many shuffles give each count of days the same days: times! (index: times, 1 to 7).
# The swap at index i (Fisher-Yates, i from 6 down to 1) moves elements among positions 0..i
# only; once i < times, it only reorders the first `times`, whose set (sorted) is the days. The
# choices of those swaps are the shuffle number's least significant digits (radixes 2 to
# times, product times!): `shuffle // times!` tells the days apart as well as the shuffle does.
# A miss (~15k instructions) is so 1/times! as likely: 840 keys for 3 a week, not 5,040.
_SAME_DAYS: Final = (1, 1, 2, 6, 24, 120, 720, 5040)


def _spread_days(shuffle: int, times_per_week: int) -> tuple[int, ...]:
    """The first `times_per_week` weekdays (0 Monday) of a Fisher-Yates shuffle of the seven,
    ascending; `shuffle` holds its choices as `week_spread` numbers them (the first, of 7,
    most significant)."""
    choices = []
    for radix in range(2, 8):  # the last choice (of 2) first
        shuffle, choice = divmod(shuffle, radix)
        choices.append(choice)
    days = [0, 1, 2, 3, 4, 5, 6]
    for i in range(6, 0, -1):  # Fisher-Yates over the 7 weekdays: swap i with choice j <= i
        j = choices[i - 1]
        days[i], days[j] = days[j], days[i]
    return tuple(sorted(days[:times_per_week]))


@lru_cache(maxsize=1024)
def week_tag(monday: date) -> bytes:
    """What follows the seed in a week's hashed text: "\\0<ISO year>-W<ISO week>" in UTF-8."""
    iso_year, iso_week, _ = monday.isocalendar()
    return f"\x00{iso_year:04d}-W{iso_week:02d}".encode()


class DailyWindow(NamedTuple):
    """A spread rule's daily window in whole minutes: its first minute of the day (`start`)
    and how many minutes it spans from there (`width`)."""

    start: int
    width: int


@lru_cache(maxsize=1024)
def window_minutes(window_start: time, window_end: time) -> DailyWindow:
    """A daily window in whole minutes of the day (the schema's windows are whole minutes)."""
    start = window_start.hour * 60 + window_start.minute
    return DailyWindow(start, window_end.hour * 60 + window_end.minute - start)


# --- helpers ----------------------------------------------------------------


@lru_cache(maxsize=4096)
def _fields(expr: str) -> CronFields:
    """The compiled fields of a valid ``expr`` (croniter parses each field, CronFields walks);
    RuleError for an invalid one. Validating and compiling are one step, one cache entry: the
    rule of a new expression is built, checked for frequency and fired at once."""
    if not isinstance(expr, str):
        raise RuleError(f"cron expression must be a string, got {type(expr).__name__}")
    fields = _FIELD_RE.findall(expr)
    if len(fields) != len(_FIELDS):
        hint = " (macros such as @daily are not supported)" if expr.strip()[:1] == "@" else ""
        raise RuleError(
            f"cron expression {expr!r}: expected 5 fields "
            f"(minute hour day-of-month month day-of-week), got {len(fields)}{hint}"
        )
    known = _KNOWN_FIELDS
    parsed = [known.get(key) or _new_field(expr, *key) for key in enumerate(fields)]
    # The fields as written: compile reads only their first characters (the day rule), which
    # the equal-range rewrite (_single_value_ranges) never changes.
    return CronFields.compile(fields, parsed)


#: croniter's reading of one field: its ``expanded`` values, and for the day fields the
#: ``D#n``/``LD`` weekdays (``nth_weekday_of_month``) and ``W`` days (``nearest_weekday``).
_Parsed = CronFieldReading


#: croniter's reading of each valid field seen, by (position, field as written). Fields are
#: parsed one by one (the others "*"), each once: fields repeat across expressions far more
#: than whole expressions do, and croniter's parse is most of the cost of a new expression
#: (30-100 us a field). That is exact because croniter's checks and ours are all within one
#: field (ranges, names, steps, "?" in a day field, "W" alone, "#" beside plain weekdays), so
#: an expression is valid exactly when each of its fields is, and a field reads the same in
#: any expression (but for croniter writing a full day field as "*" beside a day field with
#: "*", which names the same days). tests/property/test_cron_fields.py holds both to
#: croniter's whole-expression parse. croniter's reading itself comes from the schema's cache
#: (``_parse_field``); this one keeps the fields that also passed the rules' own checks.
_KNOWN_FIELDS: dict[tuple[int, str], _Parsed] = {}
_KNOWN_FIELDS_MAX = 16_384


def _new_field(expr: str, index: int, field: str) -> _Parsed:
    """A field new to the rules, checked and remembered (a reading is a non-empty tuple)."""
    reading = _check_field(expr, index, field)
    if len(_KNOWN_FIELDS) >= _KNOWN_FIELDS_MAX:
        _KNOWN_FIELDS.clear()  # the fields in use come back at once
    _KNOWN_FIELDS[index, field] = reading
    return reading


def _check_field(expr: str, index: int, field: str) -> _Parsed:
    """croniter's reading of one field, parsed alone; a RuleError naming it when it is wrong."""
    name, low, high = _FIELDS[index]
    if _HASHED_RE.search(field):
        raise RuleError(
            f"cron expression {expr!r}: {name} field {field!r}: "
            "H (hashed) and R (random) values are not supported"
        )
    for item in field.split(","):
        base = item.split("/", 1)[0]
        if index == 4 and "#" in base:
            base, nth = base.split("#", 1)
            if nth.isdigit() and not 1 <= int(nth) <= 5:
                raise RuleError(
                    f"cron expression {expr!r}: {name} {item!r}: occurrence {nth} "
                    "out of range (1-5)"
                )
        numbers = _NUMBERS_RE.fullmatch(base)
        for value in numbers.groups() if numbers else ():
            if value is not None and not low <= int(value) <= high:
                raise RuleError(
                    f"cron expression {expr!r}: {name} {int(value)} out of range ({low}-{high})"
                )
    parsed = _parse_field(index, _single_value_ranges(field))
    if parsed is None:
        hint = ""
        if index == 4 and _LAST_WEEKDAY_RE.fullmatch(field):
            day = _WEEKDAY_NAMES[int(field[0])]
            hint = f" (croniter writes the last {day} of the month as 'L{field[0]}')"
        raise RuleError(f"cron expression {expr!r}: invalid {name} field {field!r}{hint}")
    if index == 4:
        _check_weekday_forms(expr, field)
    if index == 2 and parsed.values == ("*",) and "l" in field.lower():
        _check_last_day_list(expr, field)
    return parsed


def _parse_field(index: int, field: str) -> _Parsed | None:
    """croniter's reading of one field alone (the others ``*``), None when it refuses it.

    The schema's remembered reading (``cron_field_reading``): the schema has just checked
    the same field of the same event, so a new field is parsed once, not twice. Its cache
    stands for croniter here (croniter parses a field alike whatever the others are)."""
    try:
        return cron_field_reading(index, field)
    except _CRONITER_ERRORS:
        return None


def _check_last_day_list(expr: str, field: str) -> None:
    """Refuse "L" listed with 30 other days that leave one out ("3-1,L": all days but the 2nd).

    croniter counts "L" as one of the month's 31 days, and beside a day-of-week field with "*"
    reads such a list as every day ("*"); beside any other weekday field, as the days written.
    The same field would mean two things, so it is refused (the days alone say it).
    """
    beside_weekday = croniter(f"* * {_single_value_ranges(field)} * 1", _PARSE_START)
    days = set(beside_weekday.expanded[2])
    if days != {"*"} and not set(range(1, 31)) <= days:  # 1-30 and L: every day
        raise RuleError(
            f"cron expression {expr!r}: day-of-month field {field!r}: L cannot be listed with "
            "30 other days (croniter reads that as every day); list the days without L"
        )


def _check_weekday_forms(expr: str, field: str) -> None:
    """Refuse n-th ("1#2") or last ("L5") weekdays listed with plain weekdays ("1,1#2").

    croniter refuses most such lists and reads the rest ("1,1#2", "0-6,1#2") as the n-th
    weekday alone; a cron reader would expect the plain weekdays too.
    """
    items = field.split(",")
    special = [item for item in items if "#" in item or item[:1] in "lL"]
    if special and len(special) < len(items):
        raise RuleError(
            f"cron expression {expr!r}: day-of-week field {field!r}: n-th (#) and last (L) "
            "weekdays cannot be listed with plain weekdays"
        )


@lru_cache(maxsize=4096)
def _single_value_ranges(field: str) -> str:
    """Rewrite equal ranges ("5-5", "mon-mon/2") to their single value, as cron reads them.

    croniter 7 deliberately reads an equal range as the whole cycle, so "5-5 * * * *"
    would fire every minute; Vixie/Debian cron and every cron manual mean minute 5.
    """
    items = []
    for item in field.split(","):
        match = _EQUAL_RANGE_RE.fullmatch(item)
        if match and _same_bound(match[1], match[2]):
            item = match[1]
        items.append(item)
    return ",".join(items)


def _same_bound(first: str, second: str) -> bool:
    if first.isdigit() and second.isdigit():
        return int(first) == int(second)
    return first.lower() == second.lower()


def _in_cadence(rule: CronRule, day: date) -> bool:
    return _off_weeks_left(rule, _monday(day)) == timedelta(0)


def _off_weeks_left(rule: CronRule, monday: date) -> timedelta:
    """How far from ``monday`` to the Monday of the next week in the rule's cadence."""
    assert rule.anchor is not None  # guaranteed by CronRule for every_weeks > 1
    weeks = (monday - _monday(rule.anchor)).days // 7
    return _WEEK * (-weeks % rule.every_weeks)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _whole_minute(instant: datetime) -> datetime:
    """Round up to the minute; only pre-1972 sub-minute offsets (LMT) ever need it."""
    if instant.second or instant.microsecond:
        return instant.replace(second=0, microsecond=0) + _MINUTE
    return instant


def _add_or_max(moment: datetime, span: timedelta) -> datetime:
    try:
        return moment + span
    except OverflowError:
        return datetime.max


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {moment.isoformat()}")
