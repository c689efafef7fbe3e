"""The listening cadence: how far a partner's rhythm of one kind is lowered, and what it keeps.
Pure: no clock, no Redis.

A couple that opts in (`listening` in preferences.set) lets the rhythm follow its answers. A
kind's rhythm is a ladder of steps, level 0 being what the couple chose:

    n times a week (n >= 2)   n, n-1, ..., 1 a week      (the floor: once a week)
    anything else             as chosen, every other one  (weekly -> every other week,
                                                           monthly -> every other month)

A level keeps `kept` of every `out_of` occurrences of the partner's own nudges of that kind,
spread evenly and deterministically by the partner's count of them (`keeps`). So a lowered
rhythm never sends more than the couple chose (kept <= out_of) and never less than the floor
(the level is clamped to the ladder). `adjust` moves one step: down after an "ignored" streak,
up after "done" or "more"; it returns the change, or None when nothing changes, so every
change is reported.

The rhythm is read from a schedule record's rule (services/scheduler/records.py): "t<n>;..."
is n times a week; "e<cron>" with every day of the week, or a list of weekdays, and no day of
the month or month restriction is that many a week; every other rule is "1".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = [
    "Adjustment",
    "Step",
    "adjust",
    "describe",
    "keeps",
    "ladder",
    "max_level",
    "per_week",
    "step_at",
]

_DAYS: Final = 7


@dataclass(frozen=True, slots=True)
class Step:
    kept: int
    out_of: int


@dataclass(frozen=True, slots=True)
class Adjustment:
    previous: int
    level: int
    step: Step

    @property
    def lowered(self) -> bool:
        return self.level > self.previous


def per_week(rule: str) -> int:
    """How many times a week a rule fires when it fires several times a week, else 1."""
    if rule.startswith("t"):
        times = rule[1:].split(";", 1)[0]
        return max(1, min(_DAYS, int(times))) if times.isdigit() else 1
    if not rule.startswith("e") or ";" in rule:  # raw cron, or every n weeks
        return 1
    fields = rule[1:].split()
    if len(fields) != 5:
        return 1
    minute, hour, dom, month, dow = fields
    if dom != "*" or month != "*" or not (minute.isdigit() and hour.isdigit()):
        return 1
    if dow == "*":
        return _DAYS
    days = dow.split(",")
    if all(d.isdigit() for d in days):
        return max(1, min(_DAYS, len(set(days))))
    return 1


def ladder(times_a_week: int) -> tuple[Step, ...]:
    """The steps of a rhythm, from as chosen (level 0) down to the floor (the last)."""
    if times_a_week >= 2:
        return tuple(Step(k, times_a_week) for k in range(times_a_week, 0, -1))
    return (Step(1, 1), Step(1, 2))


def max_level(times_a_week: int) -> int:
    return len(ladder(times_a_week)) - 1


def step_at(times_a_week: int, level: int) -> Step:
    """The step of a level, clamped to the ladder (a rhythm changed since it was lowered)."""
    steps = ladder(times_a_week)
    return steps[max(0, min(level, len(steps) - 1))]


def keeps(step: Step, index: int) -> bool:
    """Whether the partner's `index`-th nudge of the kind (0, 1, ...) is sent at this step:
    `kept` of every `out_of`, evenly spread (the first of a lowered rhythm is left out)."""
    if step.kept >= step.out_of:
        return True
    return (index + 1) * step.kept // step.out_of > index * step.kept // step.out_of


def adjust(level: int, signal: str, times_a_week: int) -> Adjustment | None:
    """One step down after "ignored", one up after "done" or "more"; None: no change."""
    top = max_level(times_a_week)
    current = max(0, min(level, top))
    if signal == "ignored":
        new = min(current + 1, top)
    elif signal in ("done", "more"):
        new = max(current - 1, 0)
    else:
        new = current
    if new == current:
        return None
    return Adjustment(current, new, step_at(times_a_week, new))


def describe(times_a_week: int, level: int) -> str:
    """The rhythm at a level in words (English; for `nudge preview` and logs)."""
    step = step_at(times_a_week, level)
    if step.kept == step.out_of:
        return "as chosen"
    if times_a_week >= 2:
        return f"{step.kept} of {step.out_of} a week"
    return f"every other one ({step.kept} of {step.out_of})"
