"""The minimum-interval check for raw cron equals the year walk it replaced.

The reference is the check as it was: walk every fire of the cron on the UTC wall clock
over the 366 days after `now` (fires_between, which the properties in
test_rules_properties.py and test_cron_fields.py hold to brute-force and croniter
references) and stop at the first gap shorter than the minimum interval. The check under
test derives that gap from the cron's fields (rules.first_gap_below). Zones do not enter:
the check is made in UTC, so a DST shift (Lord Howe's 30 minutes, Troll's 2 hours) never
counts against the user; the planner test draws zones to show the verdict ignores them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.scheduler.planning import PlanningError, _human, plan
from couples_nudge.scheduler.rules import CronRule, fires_between, first_gap_below
from couples_nudge_schemas import CronCadence, NudgePlan, Nudges, Partner, PreferencesSetData
from tests.support.crons import any_crons

YEAR = timedelta(days=366)
UTC_ZONE = ZoneInfo("UTC")
ZONES = (
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Antarctica/Troll",  # 2-hour DST shift
    "Europe/London",
    "America/New_York",
    "Asia/Kathmandu",  # +05:45, no DST
    "Pacific/Chatham",  # +12:45/+13:45
    "America/Santiago",  # transitions at midnight
    "Africa/Casablanca",  # DST suspended every Ramadan: transitions move year to year
    "America/Nuuk",  # rules changed in 2023
    "Asia/Tehran",  # DST abolished in 2022
    "UTC",
)
#: Minimum intervals: at least an hour (a walk of the fires of a year then stays short).
LIMITS = st.sampled_from(
    [timedelta(hours=h) for h in (1, 2, 3, 4, 6, 12, 23, 24, 25, 47, 48, 49, 24 * 7, 24 * 8)]
    + [timedelta(hours=4, seconds=30), timedelta(hours=24 * 31), timedelta(hours=24 * 32)]
)
NOWS = st.datetimes(datetime(1975, 1, 1), datetime(2090, 12, 31), timezones=st.just(UTC))
# Minutes with few matches (so that an hour between fires is possible), sometimes many.
SPARSE_MINUTES = st.one_of(
    st.integers(0, 59).map(str),
    st.sampled_from(["0,30", "*/30", "15-45/30", "59", "0-0", "5/40"]),
)
# Hours late and early in the day: fires on consecutive matching days are close (across
# midnight, and across month ends), so the days themselves decide.
WIDE_HOURS = st.sampled_from(["0,23", "1,22", "0-23/23", "22-2/4", "3,20", "23", "0"])
CRONS = st.one_of(
    any_crons(minutes=SPARSE_MINUTES),
    any_crons(minutes=SPARSE_MINUTES, hours=WIDE_HOURS),
    any_crons(),
)


def year_walk(rule: CronRule, now: datetime, limit: timedelta) -> timedelta | None:
    """The first gap shorter than `limit` among the year's consecutive fires, by walking."""
    fires = fires_between(rule, UTC_ZONE, now, now + YEAR)
    return next((b - a for a, b in pairwise(fires) if b - a < limit), None)


def partner(pid: str, zone: str) -> Partner:
    return Partner(
        partner_id=pid, name=pid.title(), timezone=zone, channels=["email"], email=f"{pid}@ex.org"
    )


def couple(expr: str, zones: tuple[str, str]) -> PreferencesSetData:
    partners = (partner("maya", zones[0]), partner("sam", zones[1]))
    cadence = CronCadence(repeat="cron", cron=expr)
    return PreferencesSetData(
        couple_id="c1",
        revision=1,
        partners=partners,
        nudges=Nudges(check_in=NudgePlan(cadence=cadence)),
    )


class TestFirstGapBelowIsTheYearWalk:
    @settings(max_examples=600, deadline=None)
    @given(expr=CRONS, now=NOWS, limit=LIMITS)
    def test_same_first_short_gap_as_the_walk(
        self, expr: str, now: datetime, limit: timedelta
    ) -> None:
        """For any cron, instant and limit: the first too-short gap the year walk finds, or None."""
        rule = CronRule(expr)
        assert first_gap_below(rule, now, now + YEAR, limit) == year_walk(rule, now, limit)

    @settings(max_examples=150, deadline=None)
    @given(expr=CRONS, now=NOWS, limit=LIMITS, zones=st.tuples(*[st.sampled_from(ZONES)] * 2))
    def test_the_planner_refuses_exactly_what_the_walk_refuses(
        self, expr: str, now: datetime, limit: timedelta, zones: tuple[str, str]
    ) -> None:
        """Whatever the partners' zones, plan() refuses with the walk's gap, or plans."""
        gap = year_walk(CronRule(expr), now, limit)
        prefs = couple(expr, zones)
        if gap is None:
            assert len(plan(prefs, min_interval=limit, now=now)) == 2
            return
        with pytest.raises(PlanningError) as caught:
            plan(prefs, min_interval=limit, now=now)
        assert str(caught.value) == (
            f"check_in: cron fires as often as every {_human(gap)}; "
            f"the minimum interval between nudges is {_human(limit)}"
        )
