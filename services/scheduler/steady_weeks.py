"""Times-per-week first fires by integer arithmetic, in weeks without a UTC offset change.

`rules.next_fire` on a SpreadRule resolves each candidate wall-clock minute to an instant (the
DST rules of services/scheduler/wallclock.py), and `planning.quiet_occurrence` reads the
instant's local time in each recipient's zone. On the ingestion path every couple's
times-per-week schedules did that once each (a quarter of the CPU of ingesting the realistic
mix, whose appreciation is 3x a week for each partner).

The invariant this relies on: while a zone keeps one UTC offset, a wall-clock minute is one
instant (no gap, no overlap): the instant of the week's local Monday 00:00 plus the minutes
into the week, and an instant's local time of day is the instant plus the offset. `SteadyWeek`
holds a week (of the schedule's zone) in which the schedule's zone and every quiet window's
zone keep one whole-minute offset from a day before its Monday until two weeks after it: the
first fire after any instant of the week is in that week or the next, so it is found from
`rules.spread_minutes` alone, and it fires at its nominal instant when no quiet window holds
it. Offsets are read every 30 minutes over the span (no zone of the tz database changes its
offset twice within 30 minutes); a week with a change, and a nominal instant inside someone's
quiet hours, take the general way. A week carries the tags its spread draws hash
(`rules.week_tag`), and a shape its quiet windows' times of day as integers (`quiet_bounds`):
per couple only the seed is new. tests/property/test_shape_planner.py holds the result to
`shapes.plan_arms` around DST changes, and tests/unit/test_steady_weeks.py to `rules.next_fire`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Final, NamedTuple
from zoneinfo import ZoneInfo

from couples_nudge.scheduler.planning import QuietWindow
from couples_nudge.scheduler.rules import first_spread_minute, week_spread, week_tag
from couples_nudge.scheduler.wallclock import to_local

__all__ = [
    "QuietBound",
    "QuietBounds",
    "SteadyWeek",
    "first_spread_ms",
    "quiet_bounds",
    "quiet_free",
    "quiet_free_us",
    "steady_week",
]

_MINUTE_MS: Final = 60_000
_DAY_MS: Final = 86_400_000
_WEEK_MS: Final = 7 * _DAY_MS
_SPAN_MS: Final = 16 * _DAY_MS  # from a day before the Monday to the end of the next week
_STEP_MS: Final = 30 * _MINUTE_MS
_ONE_MS: Final = timedelta(milliseconds=1)
_EPOCH: Final = datetime(1970, 1, 1)
_LAST_MAX: Final = 4096


class SteadyWeek(NamedTuple):
    """A week of one zone in which it and the quiet windows' zones keep their offsets."""

    monday: date  # the week's local Monday
    start_ms: int  # the instant of that Monday 00:00 (epoch ms)
    until_ms: int  # the instant of the next Monday 00:00: the week holds start <= now < until
    quiet_offsets_ms: tuple[int, ...]  # each quiet zone's UTC offset, in the order asked for
    tag: bytes  # rules.week_tag of the week: what follows a seed in its hashed text
    next_tag: bytes  # the same for the next week


# The week each (zone, quiet zones) was last asked for: events of one moment share it.
_last: dict[tuple[ZoneInfo, tuple[ZoneInfo, ...]], SteadyWeek] = {}


def steady_week(
    zone: ZoneInfo, quiet_zones: tuple[ZoneInfo, ...], now: datetime, now_ms: int
) -> SteadyWeek | None:
    """The steady week of `zone` holding `now` (epoch ms `now_ms`), or None if it is not one."""
    key = (zone, quiet_zones)
    week = _last.get(key)
    if week is not None and week.start_ms <= now_ms < week.until_ms:
        return week
    local = to_local(now, zone)
    week = _week(zone, quiet_zones, local.date() - timedelta(days=local.weekday()))
    if week is not None:
        if len(_last) >= _LAST_MAX:
            _last.clear()
        _last[key] = week
    return week


def first_spread_ms(
    week: SteadyWeek, seed: str, times_per_week: int, start: int, width: int, now_ms: int
) -> int:
    """The nominal instant (epoch ms) of the spread rule's first fire strictly after `now_ms`,
    an instant of `week`: `rules.next_fire` of the rule seeded by `seed`, its window as
    `rules.window_minutes` gives it (kept per shape: shapes.py)."""
    elapsed = (now_ms - week.start_ms) // _MINUTE_MS  # whole minutes of the week gone
    text = seed.encode()
    minute = first_spread_minute(text + week.tag, times_per_week, start, width, elapsed)
    if minute is not None:
        return week.start_ms + minute * _MINUTE_MS
    minutes = week_spread(text + week.next_tag, times_per_week, start, width)
    return week.until_ms + minutes[0] * _MINUTE_MS  # every week has a fire


class QuietBound(NamedTuple):
    """A quiet window's times of day in its own zone, in microseconds into the day: quiet from
    `start_us` up to (not at) `end_us`, across midnight when `end_us` < `start_us` (the
    schema's quiet hours never start and end at the same time)."""

    start_us: int
    end_us: int


QuietBounds = tuple[QuietBound, ...]  # a schedule's quiet windows, in the schedule's order


def quiet_bounds(quiet: tuple[QuietWindow, ...]) -> QuietBounds:
    """The windows' times of day as `quiet_free_us` reads them (kept per shape: shapes.py)."""
    return tuple(QuietBound(_of_day_us(window.start), _of_day_us(window.end)) for window in quiet)


def quiet_free(week: SteadyWeek, quiet: tuple[QuietWindow, ...], nominal_ms: int) -> bool:
    """True when no window of `quiet` (their zones' offsets in `week`) holds the instant
    `nominal_ms` of the week or the next: `planning.quiet_occurrence` fires it as it is."""
    return quiet_free_us(week, quiet_bounds(quiet), nominal_ms)


def quiet_free_us(week: SteadyWeek, bounds: QuietBounds, nominal_ms: int) -> bool:
    """`quiet_free` with the windows as `quiet_bounds` gives them (the week's offsets are
    those of the same windows' zones, in the same order)."""
    offsets_ms = week.quiet_offsets_ms  # indexed: zip(strict=True) cost ~4k instructions
    for i, (start, end) in enumerate(bounds):
        local_us = (nominal_ms + offsets_ms[i]) % _DAY_MS * 1000  # time of day, in microseconds
        if start <= local_us < end if start < end else local_us >= start or local_us < end:
            return False
    return True


def _of_day_us(at: time) -> int:
    return ((at.hour * 60 + at.minute) * 60 + at.second) * 1_000_000 + at.microsecond


@lru_cache(maxsize=4096)
def _week(zone: ZoneInfo, quiet_zones: tuple[ZoneInfo, ...], monday: date) -> SteadyWeek | None:
    first = datetime(monday.year, monday.month, monday.day)
    offset = zone.utcoffset(first)
    if offset is None:  # pragma: no cover - ZoneInfo always answers
        return None
    start_ms = (first - _EPOCH - offset) // _ONE_MS
    since = start_ms - _DAY_MS
    if _steady_offset(zone, since) != offset // _ONE_MS:
        return None
    quiet_offsets: list[int] = []
    for quiet_zone in quiet_zones:
        quiet_offset = _steady_offset(quiet_zone, since)
        if quiet_offset is None:
            return None
        quiet_offsets.append(quiet_offset)
    following = monday + timedelta(days=7)
    return SteadyWeek(
        monday,
        start_ms,
        start_ms + _WEEK_MS,
        tuple(quiet_offsets),
        week_tag(monday),
        week_tag(following),
    )


@lru_cache(maxsize=4096)
def _steady_offset(zone: ZoneInfo, since_ms: int) -> int | None:
    """The zone's offset in ms if it keeps one, of whole minutes, for _SPAN_MS from since_ms."""
    offsets = {
        datetime.fromtimestamp(at / 1000, UTC).astimezone(zone).utcoffset()
        for at in range(since_ms, since_ms + _SPAN_MS + 1, _STEP_MS)
    }
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    if offset is None:  # pragma: no cover - ZoneInfo always answers
        return None
    offset_ms = offset // _ONE_MS
    return offset_ms if offset_ms % _MINUTE_MS == 0 else None
