"""Schedules as short fields of their couple's hash. Pure codec.

The schedule "<couple>/<kind code>/<target>" is the field "<kind code>/<target>" of the couple
hash (services/common/couple_state.py), so a couple's records sit in its small hash, which Redis
keeps in the compact listpack encoding. The value is "<seq>|<nominal_ms>|<spec>": seq counts the
occurrences published so far (it picks whose turn it is), nominal_ms is the rule instant of the
armed timer (the occurrence's identity, before quiet-hours deferral), and spec is

    "<zone partner><recipient partners>[a]|<rule>"     e.g. "001|e0 19 * * 5"

with partners as indexes 0/1 into the couple's partners ("a": recipients take turns) and rule
"e<cron>", "e<cron>;<every n weeks>;<anchor date>" or "t<times a week>;<HH:MM>;<HH:MM>".
Nothing a couple shares is repeated per record: the revision is the couple's "rev", partner
ids and zones its "s0"/"s1" fields and quiet hours its "q0"/"q1" (quiet windows are the
recipients' quiet hours, each in its partner's zone); couple id and kind come from the
schedule id.

lua.DUE hands a record to the timer loop joined with what it shares with its couple,
"<record>\\n<rev>\\n<s0>\\n<s1>\\n<q0>\\n<q1>": what `decode_record` reads. A record of the
layout before issue 7 (in the shard's schedules hash, "<seq>|<nominal_ms>|<short-keyed JSON>")
still decodes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, time
from functools import lru_cache
from typing import Any, Final, Literal, NamedTuple

from couples_nudge.common.couple_state import parse_quiet, quiet_text
from couples_nudge.scheduler.planning import KIND_CODES, QuietWindow, Schedule
from couples_nudge.scheduler.rules import CronRule, Rule, SpreadRule
from couples_nudge_schemas import PreferencesSetData

__all__ = [
    "CoupleContext",
    "Record",
    "audience_of",
    "context_of",
    "decode_record",
    "encode_spec",
    "rule_text",
    "split_joined",
]

_KINDS = {code: kind for kind, code in KIND_CODES.items()}


@dataclass(frozen=True, slots=True)
class CoupleContext:
    """What every record of one couple shares (stored once, in the couple hash)."""

    revision: int
    partners: tuple[str, str]
    zones: tuple[str, str]
    quiet: tuple[QuietWindow | None, QuietWindow | None]  # each in its partner's zone


def context_of(data: PreferencesSetData) -> CoupleContext:
    a, b = data.partners
    qa, qb = (
        None if p.quiet_hours is None else _quiet_window(quiet_text(p.quiet_hours), p.timezone)
        for p in data.partners
    )
    return CoupleContext(
        data.revision, (a.partner_id, b.partner_id), (a.timezone, b.timezone), (qa, qb)
    )


def rule_text(rule: Rule) -> str:
    """A rule as a record stores it (the listening cadence reads its rhythm from this)."""
    return _rule_text(rule)


def _rule_text(rule: Rule) -> str:
    if isinstance(rule, CronRule):
        if rule.every_weeks > 1:
            anchor = rule.anchor.isoformat() if rule.anchor else ""
            return f"e{rule.expr};{rule.every_weeks};{anchor}"
        return f"e{rule.expr}"
    return f"t{rule.times_per_week};{rule.window_start:%H:%M};{rule.window_end:%H:%M}"


def encode_spec(schedule: Schedule, context: CoupleContext) -> str:
    """The spec of a planned schedule; ValueError if it differs from what the couple implies."""
    ids = context.partners
    try:
        recipients = "".join(str(ids.index(r)) for r in schedule.recipients)
        zone = str(context.zones.index(schedule.timezone))
    except ValueError:
        raise ValueError(f"{schedule.schedule_id}: recipients or zone not of the couple") from None
    derived = _quiet_of(context, recipients)
    if (schedule.partners, schedule.revision, schedule.quiet) != (ids, context.revision, derived):
        raise ValueError(f"{schedule.schedule_id}: partners, revision or quiet hours differ")
    return f"{zone}{recipients}{'a' if schedule.alternate else ''}|{_rule_text(schedule.rule)}"


def _quiet_of(context: CoupleContext, recipients: str) -> tuple[QuietWindow, ...]:
    return tuple(q for i in recipients if (q := context.quiet[int(i)]) is not None)


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


@lru_cache(maxsize=4096)
def _quiet_window(text: str, zone: str) -> QuietWindow:
    return QuietWindow(*parse_quiet(text), zone)


def _rule(text: str, seed: str) -> Rule:
    if text[0] == "e":
        return _cron_text(text)
    times, start, end = text[1:].split(";")
    return SpreadRule(int(times), _time(start), _time(end), seed)


@lru_cache(maxsize=4096)
def _cron_text(text: str) -> CronRule:
    expr, *weeks = text[1:].split(";")
    if weeks:
        return _cron_rule(expr, int(weeks[0]), weeks[1] or None)
    return _cron_rule(expr, 1, None)


class Record:
    __slots__ = ("nominal_ms", "schedule", "seq")

    def __init__(self, seq: int, nominal_ms: int, schedule: Schedule) -> None:
        self.seq = seq
        self.nominal_ms = nominal_ms
        self.schedule = schedule


def decode_record(schedule_id: str, raw: bytes | str) -> Record:
    """A record as lua.DUE returns it (see the module docstring), or a legacy one."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    if "\n" not in text:
        return _decode_legacy(schedule_id, text)
    record, rev, s0, s1, q0, q1 = text.split("\n")
    seq, nominal, spec, rule = record.split("|", 3)
    couple_id, code, _ = schedule_id.split("/", 2)
    # Partners as [id, zone, quiet text or ""], indexed by the spec's partner digits.
    both = ([*s0.split("|", 1), q0], [*s1.split("|", 1), q1])
    alternate = spec[-1] == "a"
    audience = spec[1:-1] if alternate else spec[1:]
    if len(audience) == 1:
        one = both[int(audience)]
        recipients: tuple[str, ...] = (one[0],)
        quiet: tuple[QuietWindow, ...] = (_quiet_window(one[2], one[1]),) if one[2] else ()
    else:
        chosen = [both[int(i)] for i in audience]
        recipients = tuple(p[0] for p in chosen)
        quiet = tuple(_quiet_window(p[2], p[1]) for p in chosen if p[2])
    schedule = Schedule(
        schedule_id=schedule_id,
        couple_id=couple_id,
        kind=_KINDS[code],
        rule=_rule(rule, schedule_id),
        timezone=both[int(spec[0])][1],
        recipients=recipients,
        alternate=alternate,
        quiet=quiet,
        revision=int(rev),
        partners=(both[0][0], both[1][0]),
    )
    return Record(int(seq), int(nominal or 0), schedule)


class JoinedParts(NamedTuple):
    """A record as lua.DUE returns it, in its text parts (`split_joined`)."""

    seq: str
    nominal: str  # ms
    shape: str  # "<spec>|<rule>"
    rev: str
    id0: str  # partner 0's id and zone
    zone0: str
    id1: str
    zone1: str
    quiet0: str  # each partner's quiet hours as stored
    quiet1: str


# JoinedParts made from its ten strings without NamedTuple's __new__ frame (~0.3 us a fire in a
# burst's plain path); the parts are built in the fields' order just above it.
_new_parts: Final = tuple.__new__


def split_joined(raw: bytes) -> JoinedParts | None:
    """A record as lua.DUE returns it, in text parts, without building a schedule.

    None for a legacy record; ValueError for one `decode_record` would not read either.
    In a burst, schedules share everything here but the seq, rev and partner ids: a caller can
    decode one of them and key what it computed by the rest (`decode_record` gives the schedule).
    """
    text = raw.decode()
    if "\n" not in text:
        return None
    record, rev, s0, s1, q0, q1 = text.split("\n")
    seq, nominal, shape = record.split("|", 2)
    id0, zone0 = s0.split("|", 1)
    id1, zone1 = s1.split("|", 1)
    return _new_parts(JoinedParts, (seq, nominal, shape, rev, id0, zone0, id1, zone1, q0, q1))


def audience_of(shape: str) -> tuple[tuple[int, ...], bool]:
    """The recipients as partner indexes, and whether they take turns, of "<spec>|<rule>"."""
    spec = shape.split("|", 1)[0]
    alternate = spec[-1] == "a"
    return tuple(int(i) for i in (spec[1:-1] if alternate else spec[1:])), alternate


def _legacy_rule(x: dict[str, Any], seed: str) -> Rule:
    if "e" in x:
        return _cron_rule(x["e"], x.get("w", 1), x.get("n"))
    return SpreadRule(x["t"], _time(x["s"]), _time(x["u"]), seed)


def _decode_legacy(schedule_id: str, text: str) -> Record:
    """ "<seq>|<nominal_ms>|<JSON spec>" from the shard's schedules hash (before issue 7)."""
    seq, nominal, spec_json = text.split("|", 2)
    spec = json.loads(spec_json)
    couple_id, code, _ = schedule_id.split("/", 2)
    schedule = Schedule(
        schedule_id=schedule_id,
        couple_id=couple_id,
        kind=_KINDS[code],
        rule=_legacy_rule(spec["x"], schedule_id),
        timezone=spec["z"],
        recipients=tuple(spec["r"]),
        alternate=bool(spec.get("a")),
        quiet=tuple(_quiet(*window) for window in spec.get("q", ())),
        revision=spec["v"],
        partners=tuple(spec.get("p", ())),
    )
    return Record(int(seq), int(nominal or 0), schedule)
