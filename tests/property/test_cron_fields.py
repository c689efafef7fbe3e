"""couples_nudge.scheduler.cron_fields agrees with croniter, match for match, in cronie's day rule.

The compiled fields walk naive wall-clock times (before any DST resolution). The reference
is croniter itself, used only as a field interpreter: when either day field starts with
'*' (or '?') one croniter with day_or=False (days must match both fields); otherwise the
earlier of two croniters, one with only the day-of-month field and one with only the
day-of-week field (a day matching either) -- cronie's rule, without croniter's own
reading of it.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from croniter import CroniterBadDateError, CroniterError, croniter
from hypothesis import example, given, settings
from hypothesis import strategies as st

from couples_nudge.scheduler.cron_fields import CronFields
from couples_nudge.scheduler.rules import (
    _FIELD_RE,
    RuleError,
    _fields,
    _Parsed,
    _single_value_ranges,
    validate_cron,
)
from couples_nudge_schemas.preferences import _valid_cron
from tests.support.crons import any_crons

EIGHT_YEARS = timedelta(days=366 * 8)  # rules never looks further past a match
naive_times = st.datetimes(datetime(1990, 1, 1), datetime(2090, 12, 31))


def reference_next(expr: str, at: datetime) -> datetime | None:
    """The first match strictly after `at`, by croniter (None: none within 9 years)."""
    fields = [_single_value_ranges(field) for field in _FIELD_RE.findall(expr)]
    minute, hour, day, month, weekday = fields
    if day[0] in "*?" or weekday[0] in "*?":
        parts = [fields]
    else:
        parts = [[minute, hour, day, month, "*"], [minute, hour, "*", month, weekday]]
    found = []
    for part in parts:
        it = croniter(" ".join(part), at, day_or=False, max_years_between_matches=9)
        try:
            found.append(it.get_next(datetime))
        except CroniterBadDateError:
            continue
    return min(found, default=None)


FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")


def croniter_accepts(expr: str) -> bool:
    try:
        croniter(expr, datetime(2000, 1, 1))
    except (CroniterError, ValueError, TypeError, KeyError, IndexError):
        return False
    return True


def refusal(expr: str) -> str | None:
    try:
        validate_cron(expr)
    except RuleError as exc:
        return str(exc)
    return None


def whole_parse(expr: str) -> CronFields:
    """The fields compiled from croniter's parse of the whole expression at once."""
    fields = [_single_value_ranges(field) for field in _FIELD_RE.findall(expr)]
    parsed = croniter(" ".join(fields), datetime(2000, 1, 1))
    nth = tuple((day, tuple(n)) for day, n in parsed.nth_weekday_of_month.items())
    nearest = tuple(sorted(parsed.nearest_weekday))
    return CronFields.compile(
        fields,
        [
            _Parsed(tuple(values), nth if index == 4 else (), nearest if index == 2 else ())
            for index, values in enumerate(parsed.expanded)
        ],
    )


junk_fields = st.text(alphabet="0123456789*/,-?#LlWwHRjanJANmonMON", min_size=1, max_size=8) | (
    st.sampled_from(
        ["L-L", "15W-15W", "L5-L5", "5-5/0", "mon-mon/0", "1#1-1#1", "jan-JAN", "sun-7", "0-00/2"]
    )
)


class TestFieldByField:
    @settings(max_examples=600, deadline=None)
    @given(fields=st.lists(junk_fields, min_size=5, max_size=5))
    @example(fields=["*", "*", "3-1,L", "*", "7"])  # croniter: every day beside "*" only
    def test_an_expression_parses_exactly_when_each_field_does(self, fields: list[str]) -> None:
        """croniter accepts the whole expression exactly when it accepts each field alone, so
        the rules refuse what croniter refuses (naming a field it refuses), and beyond that
        only what their own checks refuse (ranges, H/R, n-th beside plain weekdays)."""
        expr = " ".join(fields)
        normalized = [_single_value_ranges(field) for field in fields]
        alone = [
            croniter_accepts(" ".join(field if i == j else "*" for j in range(5)))
            for i, field in enumerate(normalized)
        ]
        whole = croniter_accepts(" ".join(normalized))
        assert whole == all(alone)
        reason = refusal(expr)
        named = re.search(r": invalid (\S+) field", reason or "")
        if reason is None:
            assert whole
        elif named:
            assert not alone[FIELD_NAMES.index(named[1])]
        else:
            assert re.search(r"out of range|not supported|cannot be listed", reason), reason

    @settings(max_examples=600, deadline=None)
    @given(
        fields=st.lists(junk_fields, min_size=4, max_size=6),
        spaces=st.lists(st.sampled_from([" ", "  ", "\t", "\u00a0", "\u2003"]), min_size=6),
    )
    @example(fields=["0", "0", "*", "*", "*"], spaces=[" ", "\u00a0", " ", " ", " ", " "])
    @example(fields=["0", "0", "*", "*", "*", "\u2003"], spaces=[" "] * 6)
    def test_the_schema_checks_field_by_field_what_croniter_checks_whole(
        self, fields: list[str], spaces: list[str]
    ) -> None:
        """The schema's field-by-field check accepts exactly what it accepted before: five
        whitespace-separated fields and croniter.is_valid of the whole (odd spaces too)."""
        expr = "".join(space + field for space, field in zip(spaces, fields, strict=False))
        assert _valid_cron(expr) == (len(expr.split()) == 5 and croniter.is_valid(expr))

    @settings(max_examples=300, deadline=None)
    @given(expr=any_crons())
    def test_the_fields_are_those_of_the_whole_expression(self, expr: str) -> None:
        """Times, months and day masks compiled field by field equal those of one parse."""
        assert _fields(expr) == whole_parse(expr)


class TestNextAfterAgainstCroniter:
    @settings(max_examples=600, deadline=None)
    @given(expr=any_crons(), start=naive_times, seconds=st.sampled_from([0, 1, 59]))
    def test_the_next_twelve_matches_are_croniters(
        self, expr: str, start: datetime, seconds: int
    ) -> None:
        """From any wall time, the same next matches, strictly after it, in every field form."""
        fields = _fields(expr)
        at = start.replace(second=seconds, microsecond=0)
        for _ in range(12):
            expected, got = reference_next(expr, at), fields.next_after(at)
            if expected is None or expected - at > EIGHT_YEARS:
                assert got is None or got - at > EIGHT_YEARS, (expr, at, got)
                return
            assert got == expected, (expr, at)
            at = got

    @settings(max_examples=300, deadline=None)
    @given(expr=any_crons(), day=st.dates())
    def test_a_day_matches_when_croniter_has_a_match_on_it(self, expr: str, day: object) -> None:
        """Day by day (any year 1-9999), a day matches exactly when croniter finds a time on it."""
        assert isinstance(day, type(datetime(2000, 1, 1).date()))
        if not 1971 <= day.year <= 9990:
            day = day.replace(year=2000 + day.year % 100)
        midnight = datetime(day.year, day.month, day.day)
        expected = reference_next(expr, midnight - timedelta(minutes=1))
        on_day = expected is not None and expected.date() == day
        assert _fields(expr).matches_day(day) == on_day, (expr, day)
