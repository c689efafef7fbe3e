"""Properties of the listening cadence (services/common/listening.py): it never sends more
than the couple chose, never drops below the floor, and every change is reported."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from couples_nudge.common.listening import adjust, keeps, ladder, max_level, per_week, step_at

TIMES = st.integers(min_value=1, max_value=7)
SIGNALS = st.lists(st.sampled_from(["ignored", "done", "more", "skip"]), max_size=60)


class TestAdjustment:
    @given(times=TIMES, signals=SIGNALS)
    def test_levels_stay_between_the_chosen_rhythm_and_the_floor(
        self, times: int, signals: list[str]
    ) -> None:
        """Whatever the answers, the level stays in 0..max: never above the chosen rhythm,
        never below the floor; and the kept share is never more than all, never zero."""
        level = 0
        for signal in signals:
            change = adjust(level, signal, times)
            level = level if change is None else change.level
            assert 0 <= level <= max_level(times)
            step = step_at(times, level)
            assert 0 < step.kept <= step.out_of

    @given(times=TIMES, signals=SIGNALS)
    def test_every_change_is_reported_and_moves_one_step(
        self, times: int, signals: list[str]
    ) -> None:
        """A change comes back as an Adjustment (from, to) of exactly one step, in the
        direction of the signal; no change returns None."""
        level = 0
        for signal in signals:
            change = adjust(level, signal, times)
            if change is None:
                continue
            assert change.previous == level
            assert abs(change.level - level) == 1
            assert change.lowered == (signal == "ignored")
            level = change.level

    @given(times=TIMES)
    def test_the_floor_holds_and_the_top_holds(self, times: int) -> None:
        """At the floor, another ignored streak changes nothing; as chosen, done changes
        nothing."""
        assert adjust(max_level(times), "ignored", times) is None
        assert adjust(0, "done", times) is None
        assert adjust(0, "more", times) is None


class TestKeeps:
    @given(times=TIMES, level=st.integers(min_value=0, max_value=8), start=st.integers(0, 500))
    def test_a_step_keeps_exactly_kept_of_every_out_of(
        self, times: int, level: int, start: int
    ) -> None:
        """Any out_of consecutive nudges hold exactly `kept` sent ones: the rhythm is even,
        deterministic, and never more than chosen (kept <= out_of)."""
        step = step_at(times, level)
        window = [keeps(step, i) for i in range(start, start + step.out_of)]
        assert sum(window) == step.kept

    def test_examples_from_the_issue(self) -> None:
        """Weekly lowers to every other week; 3 a week lowers to 2."""
        assert ladder(per_week("e0 19 * * 5"))[1].kept * 2 == ladder(1)[1].out_of
        assert [(s.kept, s.out_of) for s in ladder(per_week("t3;12:00;20:00"))] == [
            (3, 3),
            (2, 3),
            (1, 3),
        ]
        assert per_week("e30 8 * * *") == 7
        assert per_week("e0 19 * * 5;2;2026-01-02") == 1
