"""Instants near the ends of the calendar neither crash nor hang a nudge.

A NudgeDue scheduled within a day of 9999-12-31 (or of 0001-01-01) has no date in some
zones: reading it for a Berlin couple raised OverflowError on every delivery, so the nudge
went pending, was retried and dead-lettered ("2 deliveries, none handled to the end") with no
outcome. It is refused at once, with a reason, as any malformed NudgeDue is. A snooze "until
9999-12-31T23:00Z" (a publisher's "for ever") made the manage page a 500; it shows.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from couples_nudge.notifier.locales import format_when
from couples_nudge_schemas import EventRejected, parse_due

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "events" / "nudge.due.v1.json"


def _due(scheduled_at: str) -> bytes:
    raw = json.loads(EXAMPLE.read_text())
    raw["data"]["scheduled_at"] = scheduled_at
    return json.dumps(raw).encode()


class TestNudgeDue:
    @pytest.mark.parametrize(
        ("at", "bound"),
        [
            ("9999-12-31T23:59:00Z", "less than or equal to 9999-12-30T00:00:00Z"),
            ("0001-01-01T00:00:00Z", "greater than or equal to 0001-01-02T00:00:00Z"),
        ],
    )
    def test_an_instant_without_a_date_in_every_zone_is_refused(self, at: str, bound: str) -> None:
        with pytest.raises(EventRejected) as refused:
            parse_due(_due(at))
        assert refused.value.reason == f"data.scheduled_at: Input should be {bound}"

    @pytest.mark.parametrize("at", ["9999-12-30T00:00:00Z", "0001-01-02T00:00:00Z"])
    def test_the_last_and_first_days_allowed_parse(self, at: str) -> None:
        due = parse_due(_due(at))
        for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago", "Europe/Berlin"):
            assert due.data.scheduled_at.astimezone(ZoneInfo(zone)).year in (1, 9999)


class TestFormatWhen:
    def test_a_snooze_until_the_calendars_end_is_shown(self) -> None:
        until = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
        shown = format_when(until, "Europe/Berlin", "en-GB", "{date} at {time}")
        assert "9999" in shown
