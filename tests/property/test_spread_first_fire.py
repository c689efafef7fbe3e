"""`ShapePlanner.arms` takes a times-per-week arm's first fire in a steady week from
`rules.first_spread_minute` (h/ingest16): it stays the direct planner's (`plan_arms`) for every
count a week (1 to 7: each count keys the shuffle's days differently), windows of any width
(from a minute to nearly the whole day) and instants forwards and back, many couples (seeds)
per shape; and `first_spread_minute` is the first of `week_spread`'s minutes after any minute.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.common.clock import from_ms
from couples_nudge.scheduler import rules
from couples_nudge.scheduler.shapes import ShapePlanner, plan_arms
from couples_nudge_schemas import QuietHours, TimesPerWeekCadence, TimeWindow
from tests.unit.test_records import AUDIENCES, couple

START = datetime(2026, 3, 27, 23, tzinfo=UTC)  # two days before Europe's spring DST change
_MINUTES = st.integers(0, 1439).map(lambda m: time(m // 60, m % 60))
_WINDOW = st.tuples(_MINUTES, _MINUTES).filter(lambda w: w[0] < w[1])  # the schema's rule


@settings(max_examples=150, deadline=None)
@given(
    times=st.integers(1, 7),
    window=_WINDOW,
    audience=st.sampled_from(sorted(AUDIENCES)),
    quiet=st.sampled_from([None, QuietHours(start=time(22), end=time(7))]),
    steps=st.lists(st.integers(-2 * 86_400_000, 9 * 86_400_000), min_size=1, max_size=4),
)
def test_first_fires_as_planned_directly(
    times: int,
    window: tuple[time, time],
    audience: str,
    quiet: QuietHours | None,
    steps: list[int],
) -> None:
    cadence = TimesPerWeekCadence(
        repeat="times_per_week", times=times, between=TimeWindow(start=window[0], end=window[1])
    )
    planner = ShapePlanner(timedelta(hours=1))
    now = START
    for step in steps:
        for n in range(12):  # one shape, each couple its own seed
            prefs = couple(cadence, AUDIENCES[audience], couple_id=f"c{n}", maya_quiet=quiet)
            assert planner.arms(prefs, now) == plan_arms(
                prefs, min_interval=timedelta(hours=1), now=now
            )
        now = from_ms(int(now.timestamp() * 1000) + step)


@settings(max_examples=300)
@given(
    text=st.binary(max_size=40),
    times=st.integers(1, 7),
    start=st.integers(0, 1439),
    width=st.integers(1, 1440),
    after=st.integers(-1, 7 * 1440),
)
def test_the_first_of_week_spread_after(
    text: bytes, times: int, start: int, width: int, after: int
) -> None:
    later = [m for m in rules.week_spread(text, times, start, width) if m > after]
    assert rules.first_spread_minute(text, times, start, width, after) == (
        later[0] if later else None
    )
