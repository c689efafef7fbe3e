"""Schedules as compact strings in the shard's schedules hash. Pure codec.

Value: "<seq>|<nominal_ms>|<spec>" where seq counts the occurrences published so far (it picks
whose turn it is), nominal_ms is the rule instant of the armed timer (the occurrence's
identity, before quiet-hours deferral), and spec is short-keyed JSON. Couple id and kind are
read back from the schedule id ("<couple>/<kind code>/<target>"), so they are not repeated.
"""

from __future__ import annotations

import json
from datetime import date, time
from functools import lru_cache
from typing import Any, Literal

from services.scheduler.planning import KIND_CODES, QuietWindow, Schedule
from services.scheduler.rules import CronRule, Rule, SpreadRule

__all__ = ["Record", "decode_record", "encode_spec"]

_KINDS = {code: kind for kind, code in KIND_CODES.items()}


def _rule_json(rule: Rule) -> dict[str, Any]:
    if isinstance(rule, CronRule):
        out: dict[str, Any] = {"e": rule.expr}
        if rule.every_weeks > 1:
            out |= {"w": rule.every_weeks, "n": rule.anchor.isoformat() if rule.anchor else None}
        return out
    return {
        "t": rule.times_per_week,
        "s": rule.window_start.strftime("%H:%M"),
        "u": rule.window_end.strftime("%H:%M"),
    }


def encode_spec(schedule: Schedule) -> str:
    spec: dict[str, Any] = {
        "z": schedule.timezone,
        "r": list(schedule.recipients),
        "v": schedule.revision,
        "x": _rule_json(schedule.rule),
    }
    if schedule.alternate:
        spec["a"] = 1
    if schedule.partners:
        spec["p"] = list(schedule.partners)
    if schedule.quiet:
        spec["q"] = [
            [q.start.strftime("%H:%M"), q.end.strftime("%H:%M"), q.policy, q.timezone]
            for q in schedule.quiet
        ]
    return json.dumps(spec, separators=(",", ":"))


def _rule_from(x: dict[str, Any], seed: str) -> Rule:
    if "e" in x:
        return _cron_rule(x["e"], x.get("w", 1), x.get("n"))
    return SpreadRule(x["t"], _time(x["s"]), _time(x["u"]), seed)


@lru_cache(maxsize=4096)
def _cron_rule(expr: str, every_weeks: int, anchor: str | None) -> CronRule:
    """Rules are immutable values: one instance per distinct rule, not one per schedule."""
    return CronRule(
        expr, every_weeks=every_weeks, anchor=date.fromisoformat(anchor) if anchor else None
    )


@lru_cache(maxsize=4096)
def _time(text: str) -> time:
    return time.fromisoformat(text)


@lru_cache(maxsize=4096)
def _quiet(start: str, end: str, policy: Literal["defer", "drop"], zone: str) -> QuietWindow:
    return QuietWindow(_time(start), _time(end), policy, zone)


class Record:
    __slots__ = ("nominal_ms", "schedule", "seq")

    def __init__(self, seq: int, nominal_ms: int, schedule: Schedule) -> None:
        self.seq = seq
        self.nominal_ms = nominal_ms
        self.schedule = schedule


def decode_record(schedule_id: str, raw: bytes | str) -> Record:
    text = raw.decode() if isinstance(raw, bytes) else raw
    seq, nominal, spec_json = text.split("|", 2)
    spec = json.loads(spec_json)
    couple_id, code, _ = schedule_id.split("/", 2)
    quiet = tuple(_quiet(*window) for window in spec.get("q", ()))
    schedule = Schedule(
        schedule_id=schedule_id,
        couple_id=couple_id,
        kind=_KINDS[code],
        rule=_rule_from(spec["x"], schedule_id),
        timezone=spec["z"],
        recipients=tuple(spec["r"]),
        alternate=bool(spec.get("a")),
        quiet=quiet,
        revision=spec["v"],
        partners=tuple(spec.get("p", ())),
    )
    return Record(int(seq), int(nominal or 0), schedule)
