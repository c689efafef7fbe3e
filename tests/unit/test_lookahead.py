"""The pure parts of looking ahead: which prepared steps go out when, and what FIRE writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from couples_nudge.scheduler.firing import occurred_field, record_after
from couples_nudge.scheduler.lookahead import (
    FRESH_MS,
    LEAD_MARGIN,
    PREPARE_S_PRIOR,
    Ahead,
    PrepareCost,
    Prepared,
    fresh,
    lead_ms,
    restamped,
)
from couples_nudge.scheduler.store import Fire

T = 1_796_407_200_000


def _prepared(sid: str, at: int, next_fire: int | None = T + 604_800_000) -> Prepared:
    return Prepared(Fire(sid, at, next_fire, b"0|1|x", b"1|2|x", b"{}"), "date_night", None)


class TestAhead:
    def test_nothing_is_taken_before_its_instant_and_each_schedule_once(self) -> None:
        ahead = Ahead()
        for step in (_prepared("a", T), _prepared("a", T), _prepared("b", T + 5)):
            ahead.add(step)
        assert len(ahead) == 2
        assert ahead.next_instant() == T
        assert ahead.take(T - 1) == ([], 0)
        taken, dropped = ahead.take(T)
        assert [(at, [p.step.schedule_id for p in group]) for at, group in taken] == [(T, ["a"])]
        assert dropped == 0
        assert ahead.next_instant() == T + 5
        ahead.add(_prepared("a", T + 9))  # taken, so it may be prepared again
        assert len(ahead) == 2

    def test_instants_come_oldest_first_and_the_cursor_resets_when_empty(self) -> None:
        ahead = Ahead(cursor="c9/d/both")
        ahead.add(_prepared("b", T + 5))
        ahead.add(_prepared("a", T))
        taken, _ = ahead.take(T + 5)
        assert [at for at, _ in taken] == [T, T + 5]
        assert (len(ahead), ahead.cursor) == (0, "")

    def test_steps_no_longer_fresh_are_dropped(self) -> None:
        """Too long after the instant, or at the schedule's next fire: the normal path."""
        ahead = Ahead()
        ahead.add(_prepared("old", T - FRESH_MS))
        ahead.add(_prepared("next", T - 10, next_fire=T))
        ahead.add(_prepared("last", T - 10, next_fire=None))
        ahead.add(_prepared("ok", T - 10))
        taken, dropped = ahead.take(T)
        assert dropped == 1  # too late for the whole instant: dropped when taken
        assert [p.step.schedule_id for _, group in taken for p in group] == ["next", "last", "ok"]
        ((_, group),) = taken
        assert [p.step.schedule_id for p in fresh(group, T)] == ["last", "ok"]  # when sent
        assert [p.step.schedule_id for p in fresh(group, T - 1)] == ["next", "last", "ok"]

    def test_a_taken_schedule_may_be_prepared_again_while_other_instants_wait(self) -> None:
        ahead = Ahead()
        ahead.add(_prepared("a", T))
        ahead.add(_prepared("b", T + 5))
        ahead.take(T)
        ahead.add(_prepared("a", T + 9))
        ahead.add(_prepared("b", T + 9))  # still waiting at T + 5: not prepared twice
        assert len(ahead) == 2
        assert ahead.next_instant() == T + 5


class TestRecordAfter:
    @pytest.mark.parametrize(
        ("published", "next_fire", "next_nominal", "written"),
        [
            (True, 9, 8, b"6|8|001|e0 19 * * 5"),
            (False, 9, 8, b"5|8|001|e0 19 * * 5"),  # skipped or dropped: seq unchanged
            (False, 9, None, b"5|100|001|e0 19 * * 5"),  # a deferred retry keeps the nominal
            (True, None, None, b"6||001|e0 19 * * 5"),  # the rule never fires again
        ],
    )
    def test_as_fire_wrote_it(
        self, published: bool, next_fire: int | None, next_nominal: int | None, written: bytes
    ) -> None:
        joined = b"5|100|001|e0 19 * * 5\n1\nmaya|Europe/Berlin\nsam|Europe/Berlin\n\n"
        legacy = b'5|100|{"z":"Europe/Berlin","x":{"e":"0 19 * * 5"}}'
        for state in (joined, legacy):
            after = record_after(
                state, published=published, next_fire_ms=next_fire, next_nominal_ms=next_nominal
            )
            assert after.split(b"|", 2)[:2] == written.split(b"|", 2)[:2]
            assert after.split(b"|", 2)[2] == state.split(b"\n")[0].split(b"|", 2)[2]


class TestRestamped:
    def test_only_the_envelopes_occurred_at_moves(self) -> None:
        then = datetime(2026, 12, 4, 18, tzinfo=UTC)
        now = then + timedelta(milliseconds=250)
        payload = b'{"event_id":"e","occurred_at":"2026-12-04T18:00:00Z","data":{"x":1}}'
        step = Fire("c1/d/both", 1, 2, b"s", b"r", payload)
        moved = restamped(step, occurred_field(then), occurred_field(now))
        assert moved.payload == payload.replace(b"18:00:00Z", b"18:00:00.250000Z")
        assert moved[:5] == step[:5]
        assert restamped(step, occurred_field(then), occurred_field(then)) is step

    def test_occurred_field_wants_utc(self) -> None:
        with pytest.raises(ValueError, match="UTC"):
            occurred_field(datetime(2026, 12, 4, 18))


class TestLead:
    def test_the_window_unless_preparing_the_count_takes_longer(self) -> None:
        assert lead_ms(2_000, 0, 40e-6) == 2_000
        assert lead_ms(2_000, 10_000, 40e-6) == 2_000  # 0.6 s of preparing: the window
        assert lead_ms(2_000, 100_000, 40e-6) == 6_000  # 4 s, with the margin 6 s
        assert lead_ms(2_000, 100_000, 40e-6, speed=20.0) == 120_000  # a clock 20x real time
        assert lead_ms(2_000, 2, 1.0) == round(2_000 * LEAD_MARGIN)  # 2 s of preparing

    def test_the_cost_is_measured_only_from_enough_steps(self) -> None:
        cost = PrepareCost()
        assert cost.per_step == PREPARE_S_PRIOR
        cost.observe(199, 1.0)  # a page's reads would dominate
        cost.observe(5_000, 0.0)
        assert cost.per_step == PREPARE_S_PRIOR
        cost.observe(10_000, 0.3)
        assert cost.per_step == pytest.approx(30e-6)
        cost.observe(1_000, 0.08)  # the last measurement counts: the machine's state now
        assert cost.per_step == pytest.approx(80e-6)
