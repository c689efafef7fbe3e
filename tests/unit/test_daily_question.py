"""The daily question: a year of days without a repeat inside the repeat window, and the same
question for both partners on their own local day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.daily_question import question_for, questions_in_order
from couples_nudge.notifier.occurrence_day import content_day
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge_schemas import NudgeDueData

CHECK_INS = load_catalog().items("check_in", "en")
START = date(2027, 1, 1)


def data(schedule_id: str, at: datetime) -> NudgeDueData:
    return NudgeDueData(
        occurrence_id=f"{schedule_id}@{int(at.timestamp())}",
        couple_id="maya-sam",
        schedule_id=schedule_id,
        kind="check_in",
        recipients=["maya"],
        sequence=0,
        scheduled_at=at,
        revision=1,
    )


class TestDailyQuestion:
    def test_a_year_of_days_repeats_no_question_inside_the_repeat_window(self) -> None:
        """365 days in a row: every question is one of the catalog's, and none comes back
        sooner than the default repeat window."""
        window = NotifierSettings.model_fields["repeat_window"].default.days
        last: dict[str, int] = {}
        shortest = 10_000
        for n in range(365):
            item = question_for(CHECK_INS, couple_id="maya-sam", day=START + timedelta(days=n))
            assert item is not None
            assert item.format == "question"
            if item.id in last:
                shortest = min(shortest, n - last[item.id])
            last[item.id] = n
        questions = len(questions_in_order(CHECK_INS, "maya-sam"))
        print(f"questions: {questions}; shortest gap between repeats in a year: {shortest} days")
        assert shortest > window

    def test_couples_walk_their_own_order(self) -> None:
        """Two couples get different questions on most days."""
        days = [START + timedelta(days=n) for n in range(30)]
        a = [question_for(CHECK_INS, couple_id="maya-sam", day=d) for d in days]
        b = [question_for(CHECK_INS, couple_id="lena-jo", day=d) for d in days]
        assert sum(x == y for x, y in zip(a, b, strict=True)) < 5

    def test_partners_at_their_own_local_time_get_the_days_question(self) -> None:
        """08:30 in Berlin and 08:30 in New York are six hours apart but the same local day:
        per-partner schedules give both partners the same question."""
        berlin = data("maya-sam/c/maya", datetime(2027, 3, 5, 7, 30, tzinfo=UTC))
        new_york = data("maya-sam/c/sam", datetime(2027, 3, 5, 13, 30, tzinfo=UTC))
        day_a = content_day(berlin, recipient_zone="Europe/Berlin", couple_zone="Europe/Berlin")
        day_b = content_day(
            new_york, recipient_zone="America/New_York", couple_zone="Europe/Berlin"
        )
        assert day_a == day_b == date(2027, 3, 5)

    def test_a_shared_occurrence_uses_one_zone_for_both(self) -> None:
        """A together-timed check-in is one occurrence: its day is read in the couple's zone,
        even where the recipient's local date is already the next one."""
        shared = data("maya-sam/c/both", datetime(2027, 3, 5, 23, 30, tzinfo=UTC))
        assert content_day(
            shared, recipient_zone="Asia/Tokyo", couple_zone="America/New_York"
        ) == date(2027, 3, 5)
