"""shapes._window_clear (h/ingest15): a spread arm's week is clear exactly when no minute of
its daily window, on any day of the week or the next, is inside a quiet window, as
steady_weeks.quiet_free_us reads each nominal instant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.common.clock import epoch_ms
from couples_nudge.scheduler.rules import DailyWindow
from couples_nudge.scheduler.shapes import _window_clear
from couples_nudge.scheduler.steady_weeks import QuietBound, quiet_free_us, steady_week

_ZONES = [
    ZoneInfo(name)
    for name in (
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "Asia/Kolkata",  # +05:30
        "Asia/Kathmandu",  # +05:45
        "Australia/Lord_Howe",  # half-hour DST
        "Pacific/Chatham",  # +12:45 / +13:45
        "America/St_Johns",  # -03:30
    )
]
_MINUTE_US = 60_000_000
_DAY_US = 86_400_000_000
# Quiet bounds as quiet_bounds gives them (whole minutes), and some that are not whole.
_BOUND = st.one_of(st.integers(0, 1439).map(lambda m: m * _MINUTE_US), st.integers(0, _DAY_US - 1))


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(_ZONES),
    quiet=st.lists(st.tuples(st.sampled_from(_ZONES), _BOUND, _BOUND), max_size=2),
    start=st.integers(0, 1438),
    data=st.data(),
    hours=st.integers(0, 24 * 365 * 2),
)
def test_clear_exactly_when_every_minute_is_quiet_free(
    zone: ZoneInfo,
    quiet: list[tuple[ZoneInfo, int, int]],
    start: int,
    data: st.DataObject,
    hours: int,
) -> None:
    """Every day of the week and the next, every minute of the window, each window's zone."""
    width = data.draw(st.integers(1, 1440 - start - 1 if start < 1439 else 1))
    now = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=hours)
    week = steady_week(zone, tuple(z for z, _, _ in quiet), now, epoch_ms(now))
    if week is None:
        return  # an offset change: the general way, not this check
    bounds = tuple(QuietBound(a, b) for _, a, b in quiet)
    free = all(
        quiet_free_us(week, bounds, week.start_ms + (1440 * day + start + j) * 60_000)
        for day in range(14)
        for j in range(width)
    )
    assert _window_clear(week, DailyWindow(start, width), bounds) == free


def test_the_realistic_couples_window_is_clear() -> None:
    """09:00-21:00 against quiet hours 22:00-07:00 in the same zone: clear (no quiet check)."""
    zone = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 3, 10, tzinfo=UTC)
    week = steady_week(zone, (zone,), now, epoch_ms(now))
    assert week is not None
    quiet = (QuietBound(22 * 60 * _MINUTE_US, 7 * 60 * _MINUTE_US),)
    assert _window_clear(week, DailyWindow(540, 720), quiet)
    # To 22:20: the last minutes are quiet.
    assert not _window_clear(week, DailyWindow(540, 800), quiet)
    assert _window_clear(week, DailyWindow(540, 780), quiet)  # to 22:00, its last minute 21:59
