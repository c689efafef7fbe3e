"""What a couple's preferences would produce over a period, by the scheduler's own code. Pure.

With the couple's live answers (`Answers`: what `nudge preview --live` reads from Redis), the
preview also leaves out what a snooze suppresses and, for couples who opted in to the listening
cadence, what a lowered rhythm leaves out (services/common/listening.py, the notifier's own
rule); `rhythm_lines` says how each lowered rhythm stands.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from couples_nudge.common.listening import describe, keeps, per_week, step_at
from couples_nudge.scheduler.planning import Occurrence, Schedule, next_occurrence, plan
from couples_nudge.scheduler.records import rule_text
from couples_nudge.scheduler.rules import CronRule
from couples_nudge.scheduler.wallclock import to_local
from couples_nudge_schemas import PreferencesSetData

__all__ = ["Answers", "PreviewLine", "occurrence_note", "preview_lines", "rhythm_lines"]


@dataclass(frozen=True, slots=True)
class Answers:
    """What partners answered, as stored for the couple (all optional)."""

    levels: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (partner, kind)
    snoozed_until: Mapping[tuple[str, str], datetime] = field(default_factory=dict)
    sequences: Mapping[str, int] = field(default_factory=dict)  # "<kind code>/<target>" -> seq


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


def rhythm_lines(prefs: PreferencesSetData, answers: Answers) -> list[str]:
    """One line per partner and kind whose rhythm the listening cadence lowered."""
    if not prefs.listening:
        return []
    lines = []
    for schedule in plan(prefs, min_interval=timedelta(0), now=datetime(2000, 1, 1, tzinfo=UTC)):
        times = per_week(rule_text(schedule.rule))
        for partner_id in schedule.recipients:
            level = answers.levels.get((partner_id, schedule.kind), 0)
            if level:
                line = (
                    f"rhythm: {schedule.kind} for {partner_id}: {describe(times, level)} "
                    f"(listening, level {level}; chosen: {_chosen(times)})"
                )
                if line not in lines:
                    lines.append(line)
    return lines


def _chosen(times: int) -> str:
    return f"{times} a week" if times >= 2 else "every one"


def occurrence_note(schedule: Schedule, occ: Occurrence) -> str | None:
    """The occurrence's note (quiet hours), or a DST gap that moved a fixed local time."""
    if occ.note is not None:
        return occ.note
    fixed = _fixed_time(schedule.rule)
    nominal_local = to_local(occ.nominal, schedule.tz())
    if fixed and (nominal_local.hour, nominal_local.minute) != fixed:
        return f"dst_gap: {fixed[0]:02d}:{fixed[1]:02d} did not exist that day"
    return None


def preview_lines(
    prefs: PreferencesSetData, start: datetime, end: datetime, answers: Answers | None = None
) -> list[PreviewLine]:
    lines: list[PreviewLine] = []
    given = answers or Answers()
    for schedule in plan(prefs, min_interval=timedelta(0), now=start):
        zone = schedule.tz()
        target = schedule.schedule_id.split("/", 1)[1]
        seq = given.sequences.get(target, 0)
        times = per_week(rule_text(schedule.rule))
        occ = next_occurrence(schedule, start)
        while occ is not None and occ.nominal <= end:
            local = to_local(occ.fire_at, zone)
            note = occurrence_note(schedule, occ)
            recipients = list(schedule.recipients)
            if schedule.alternate:
                recipients = [recipients[seq % 2]]
            for partner_id in recipients:
                if _left_out(prefs, given, schedule.kind, partner_id, occ.fire_at, times, seq):
                    continue
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


def _left_out(
    prefs: PreferencesSetData,
    answers: Answers,
    kind: str,
    partner_id: str,
    at: datetime,
    times: int,
    seq: int,
) -> bool:
    """Snoozed then, or left out by the partner's lowered rhythm (as the notifier decides)."""
    until = answers.snoozed_until.get((partner_id, kind))
    if until is not None and at < until:
        return True
    level = answers.levels.get((partner_id, kind), 0)
    if not prefs.listening or level == 0:
        return False
    plan_of = getattr(prefs.nudges, kind)
    index = seq // 2 if plan_of is not None and plan_of.recipients == "alternate" else seq
    return not keeps(step_at(times, level), index)
