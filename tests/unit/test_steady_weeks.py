"""Times-per-week first fires by integer arithmetic equal `rules.next_fire`, in steady weeks."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from couples_nudge.common.clock import epoch_ms
from couples_nudge.scheduler.planning import QuietWindow, quiet_occurrence
from couples_nudge.scheduler.rules import SpreadRule, next_fire, window_minutes
from couples_nudge.scheduler.steady_weeks import first_spread_ms, quiet_free, steady_week

BERLIN = ZoneInfo("Europe/Berlin")
QUIET = QuietWindow(time(18), time(20), "defer", "America/New_York")


class TestSteadyWeeks:
    @pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Asia/Kolkata"])
    def test_first_fire_is_next_fire(self, zone: str) -> None:
        """Every hour of two steady weeks, for several seeds: the same nominal instant."""
        tz = ZoneInfo(zone)
        start = datetime(2026, 6, 1, tzinfo=UTC)
        for hour in range(0, 14 * 24, 5):
            now = start + timedelta(hours=hour, seconds=hour * 7 % 60)
            week = steady_week(tz, (), now, epoch_ms(now))
            assert week is not None
            for seed in ("c1/a/p1", "c2/a/p2", "c3/a/both"):
                rule = SpreadRule(3, time(9), time(21), seed)
                nominal = next_fire(rule, tz, now)
                assert nominal is not None
                start_min, width = window_minutes(time(9), time(21))
                got = first_spread_ms(week, seed, 3, start_min, width, epoch_ms(now))
                assert got == epoch_ms(nominal)

    def test_no_steady_week_around_a_dst_change(self) -> None:
        """Within two weeks before Europe's spring change, or a day after it: the general way."""
        for day in (16, 20, 28, 29, 30):
            now = datetime(2026, 3, day, 12, tzinfo=UTC)
            assert steady_week(BERLIN, (), now, epoch_ms(now)) is None
        quiet_zone = (ZoneInfo("America/New_York"),)  # its change (8 March) in the span
        now = datetime(2026, 2, 25, 12, tzinfo=UTC)
        assert steady_week(BERLIN, (), now, epoch_ms(now)) is not None
        assert steady_week(BERLIN, quiet_zone, now, epoch_ms(now)) is None

    def test_quiet_free_is_quiet_occurrence(self) -> None:
        """Every quarter hour of a steady day: free exactly when quiet_occurrence moves nothing."""
        now = datetime(2026, 6, 1, tzinfo=UTC)
        week = steady_week(BERLIN, (ZoneInfo(QUIET.timezone),), now, epoch_ms(now))
        assert week is not None
        for quarter in range(4 * 24 * 7):
            nominal = now + timedelta(minutes=15 * quarter)
            occurrence = quiet_occurrence((QUIET,), nominal)
            free = occurrence.fire_at == nominal and not occurrence.dropped
            assert quiet_free(week, (QUIET,), epoch_ms(nominal)) == free
