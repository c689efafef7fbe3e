"""What a couple's preferences would produce over a period, by the scheduler's own code. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas import PreferencesSetData
from services.scheduler.planning import Occurrence, Schedule, next_occurrence, plan
from services.scheduler.rules import CronRule
from services.scheduler.wallclock import to_local

__all__ = ["PreviewLine", "occurrence_note", "preview_lines"]


@dataclass(frozen=True, slots=True)
class PreviewLine:
    kind: str
    partner_id: str
    at_utc: datetime
    at_local: datetime
    timezone: str
    note: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "partner_id": self.partner_id,
            "at_utc": self.at_utc.isoformat().replace("+00:00", "Z"),
            "at_local": self.at_local.isoformat(timespec="minutes"),
            "timezone": self.timezone,
            "note": self.note,
        }

    def as_text(self) -> str:
        note = f"  ({self.note})" if self.note else ""
        return (
            f"{self.at_utc:%Y-%m-%d %H:%M}Z  {self.kind:<12} {self.partner_id:<12} "
            f"{self.at_local:%a %Y-%m-%d %H:%M} {self.timezone}{note}"
        )


def _fixed_time(rule: object) -> tuple[int, int] | None:
    if isinstance(rule, CronRule):
        minute, hour = rule.expr.split()[:2]
        if minute.isdigit() and hour.isdigit():
            return int(hour), int(minute)
    return None


def occurrence_note(schedule: Schedule, occ: Occurrence) -> str | None:
    """The occurrence's note (quiet hours), or a DST gap that moved a fixed local time."""
    if occ.note is not None:
        return occ.note
    fixed = _fixed_time(schedule.rule)
    nominal_local = to_local(occ.nominal, schedule.tz())
    if fixed and (nominal_local.hour, nominal_local.minute) != fixed:
        return f"dst_gap: {fixed[0]:02d}:{fixed[1]:02d} did not exist that day"
    return None


def preview_lines(prefs: PreferencesSetData, start: datetime, end: datetime) -> list[PreviewLine]:
    lines: list[PreviewLine] = []
    for schedule in plan(prefs, min_interval=timedelta(0), now=start):
        zone = schedule.tz()
        seq = 0
        occ = next_occurrence(schedule, start)
        while occ is not None and occ.nominal <= end:
            local = to_local(occ.fire_at, zone)
            note = occurrence_note(schedule, occ)
            recipients = list(schedule.recipients)
            if schedule.alternate:
                recipients = [recipients[seq % 2]]
            for partner_id in recipients:
                lines.append(
                    PreviewLine(
                        schedule.kind, partner_id, occ.fire_at, local, schedule.timezone, note
                    )
                )
            if not occ.dropped:
                seq += 1
            occ = next_occurrence(schedule, occ.nominal)
    lines.sort(key=lambda line: (line.at_utc, line.kind, line.partner_id))
    return lines
