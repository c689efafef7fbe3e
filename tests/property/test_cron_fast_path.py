"""The fixed-time fast path of services.scheduler.rules agrees with croniter, match for match.

Expressions with one minute, one hour and every month skip croniter's iteration; the days
they name are found by calendar arithmetic. Walking both from the same naive wall times
must give the same matches (wall-clock candidates, before any DST resolution).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from unittest.mock import patch
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from services.scheduler import rules
from services.scheduler.rules import CronRule, _croniter_step, _fixed_time, fires_between

_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@st.composite
def fixed_exprs(draw: st.DrawFn) -> str:
    """Every day form the fast path takes: *, weekdays, month days, D#n, LD."""
    minute, hour = draw(st.integers(0, 59)), draw(st.integers(0, 23))
    form = draw(st.sampled_from(["daily", "weekdays", "month_days", "nth", "last"]))
    dom, dow = "*", "*"
    if form == "weekdays":
        days = draw(st.lists(st.integers(0, 7), min_size=1, max_size=3, unique=True))
        dow = ",".join(_NAMES[d % 7] if draw(st.booleans()) else str(d) for d in days)
    elif form == "month_days":
        days = draw(st.lists(st.integers(1, 31), min_size=1, max_size=3, unique=True))
        dom = ",".join(str(d) for d in days)
    elif form == "nth":
        dow = f"{draw(st.integers(0, 7))}#{draw(st.integers(1, 5))}"
    elif form == "last":
        dow = f"L{draw(st.integers(0, 7))}"
    return f"{minute} {hour} {dom} * {dow}"


naive_times = st.datetimes(datetime(1990, 1, 1), datetime(2090, 12, 31))


class TestFastPathAgainstCroniter:
    @settings(max_examples=400, deadline=None)
    @given(expr=fixed_exprs(), start=naive_times, offset=st.sampled_from([0, 1, 59, 60, 61]))
    def test_the_next_twelve_matches_are_croniters(
        self, expr: str, start: datetime, offset: int
    ) -> None:
        """From any wall time, the same twelve next matches, strictly after it."""
        fixed = _fixed_time(expr)
        assert fixed is not None, expr
        slow = _croniter_step(expr)
        fast_at = slow_at = start.replace(second=0) + timedelta(seconds=offset)
        for _ in range(12):
            fast, expected = fixed.next_after(fast_at), slow(slow_at)
            assert fast == expected, (expr, fast_at)
            assert fast is not None
            assert expected is not None
            fast_at, slow_at = fast, expected

    @settings(max_examples=200, deadline=None)
    @given(
        expr=fixed_exprs(),
        zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"]),
        cadence=st.sampled_from([1, 2, 3, 4]),
        anchor=st.dates(date(2020, 1, 1), date(2040, 12, 31)),
        start=st.datetimes(datetime(2021, 1, 1), datetime(2039, 12, 31), timezones=st.just(UTC)),
    )
    def test_fires_are_the_same_with_the_fast_path_switched_off(
        self,
        expr: str,
        zone: str,
        cadence: int,
        anchor: date,
        start: datetime,
    ) -> None:
        """Through DST resolution and week cadences, fires_between gives the same instants."""
        rule, tz = CronRule(expr, cadence, anchor), ZoneInfo(zone)
        end = start + timedelta(days=120)
        fast = list(fires_between(rule, tz, start, end))
        with patch.object(rules, "_fixed_time", lambda _expr: None):
            slow = list(fires_between(rule, tz, start, end))
        assert fast == slow
