"""The human-level daily cadence ({"repeat": "daily", "at": "HH:MM"}), planned from the schema
as the scheduler plans it, against the brute-force reference of test_rules_properties."""

from __future__ import annotations

from collections import Counter
from datetime import time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.scheduler.planning import rule_for
from couples_nudge.scheduler.rules import CronRule, fires_between, next_fire
from couples_nudge.scheduler.wallclock import to_local
from couples_nudge_schemas import DailyCadence
from tests.property.test_rules_properties import (
    GAP_CROSSES_MIDNIGHT,
    MINUTE,
    ZONES,
    local_midnight,
    reference_fires,
    transitions,
    windows,
)

zones = st.sampled_from(ZONES)
local_times = st.builds(time, st.integers(0, 23), st.integers(0, 59))


def daily_rule(at: time) -> CronRule:
    rule = rule_for(DailyCadence(repeat="daily", at=at), "c1/c/maya")
    assert isinstance(rule, CronRule)
    return rule


class TestDailyCadence:
    @settings(max_examples=150, deadline=None)
    @given(data=st.data(), zone=zones, at=local_times)
    def test_fires_equal_the_brute_force_reference(
        self, data: st.DataObject, zone: str, at: time
    ) -> None:
        """Every local day's HH:MM, DST gaps and overlaps resolved as the reference does."""
        tz, (start, end) = ZoneInfo(zone), data.draw(windows(zone, days=4))
        rule = daily_rule(at)
        assert list(fires_between(rule, tz, start, end)) == reference_fires(rule, tz, start, end)

    @settings(max_examples=150, deadline=None)
    @given(
        zone=st.sampled_from([z for z in ZONES if z not in GAP_CROSSES_MIDNIGHT]),
        at=local_times,
        data=st.data(),
    )
    def test_fires_exactly_once_per_local_calendar_day(
        self, zone: str, at: time, data: st.DataObject
    ) -> None:
        """Once per local day around a transition: never twice on a fall-back day, never
        skipped on a spring-forward day."""
        tz = ZoneInfo(zone)
        day = to_local(data.draw(st.sampled_from(transitions(zone))), tz).date()
        days = [day + timedelta(days=i) for i in range(-2, 3)]
        start = local_midnight(days[0], tz) - MINUTE
        end = local_midnight(days[-1] + timedelta(days=1), tz) - MINUTE
        fires = fires_between(daily_rule(at), tz, start, end)
        assert Counter(to_local(f, tz).date() for f in fires) == dict.fromkeys(days, 1)

    @settings(max_examples=100, deadline=None)
    @given(data=st.data(), zone=zones, at=local_times)
    def test_next_fire_is_the_first_reference_fire_after_any_instant(
        self, data: st.DataObject, zone: str, at: time
    ) -> None:
        """What the timer loop re-arms to is the reference's next fire."""
        tz, (start, end) = ZoneInfo(zone), data.draw(windows(zone))
        rule = daily_rule(at)
        reference = reference_fires(rule, tz, start, end + timedelta(days=2))
        after = data.draw(st.sampled_from([start, *reference[:-1]]))
        after += timedelta(seconds=data.draw(st.sampled_from([0, 1, 59, 60, 3600])))
        assert next_fire(rule, tz, after) == next(f for f in reference if f > after)
