"""Preferences -> schedules -> occurrences. Pure: no clock, no Redis; `after` is an argument.

A couple's preferences become a handful of schedules, one per (nudge kind, audience):
- timing "together", or recipients "alternate": one shared schedule in one zone; both partners
  (or the partner whose turn it is) get the same occurrence;
- timing "own_local": one schedule per recipient, in that recipient's zone.
Every recipient's quiet hours apply, each in that partner's own zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from couples_nudge.scheduler.rules import (
    CronRule,
    Rule,
    RuleError,
    SpreadRule,
    first_gap_below,
    next_fire,
)
from couples_nudge.scheduler.wallclock import resolve, to_local
from couples_nudge_schemas import (
    Cadence,
    CronCadence,
    DailyCadence,
    MonthlyCadence,
    NudgeKind,
    NudgePlan,
    Partner,
    PreferencesSetData,
    QuietHours,
    TimesPerWeekCadence,
    WeeklyCadence,
)

__all__ = [
    "KIND_CODES",
    "Occurrence",
    "PlanningError",
    "QuietWindow",
    "Schedule",
    "check_frequency",
    "cron_rule",
    "first_occurrence",
    "next_occurrence",
    "occurrence_at",
    "occurrence_in_force",
    "plan",
    "plan_kind",
    "quiet_occurrence",
    "rule_for",
]

KIND_CODES: dict[NudgeKind, str] = {"date_night": "d", "check_in": "c", "appreciation": "a"}
_DOW = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 0}
# Raw cron is checked over a year of wall-clock fires (so seasonal spam is caught), in UTC so
# that the shortening a DST gap causes on one day a year is not held against the user.
_FREQUENCY_HORIZON = timedelta(days=366)
# The furthest quiet hours move a nudge: later than a day after its nominal instant it is
# dropped (quiet_occurrence), so a nudge still waiting at `now` has its nominal within a day.
_LONGEST_DEFERRAL = timedelta(days=1)
# The most a change of a zone's rules in the tz database has moved a wall time (Samoa skipped
# 30 December 2011: a day); `occurrence_in_force` looks no further.
_RULES_CHANGE = timedelta(days=1)
_MS = timedelta(milliseconds=1)


class PlanningError(ValueError):
    """Preferences that are valid JSON but not an acceptable plan (e.g. too frequent)."""


@dataclass(frozen=True, slots=True)
class QuietWindow:
    """One partner's quiet hours, in that partner's zone; may wrap midnight."""

    start: time
    end: time
    policy: Literal["defer", "drop"]
    timezone: str

    @classmethod
    def of(cls, quiet: QuietHours, timezone: str) -> QuietWindow:
        return cls(quiet.start, quiet.end, quiet.policy, timezone)

    def contains(self, instant: datetime) -> bool:
        local = to_local(instant, ZoneInfo(self.timezone)).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def end_after(self, instant: datetime) -> datetime:
        """The instant this window ends, for an instant inside it."""
        zone = ZoneInfo(self.timezone)
        local = to_local(instant, zone)
        end_day = local.date()
        if self.start > self.end and local.time() >= self.start:
            end_day += timedelta(days=1)
        return resolve(datetime.combine(end_day, self.end), zone)


@dataclass(frozen=True, slots=True)
class Schedule:
    schedule_id: str
    couple_id: str
    kind: NudgeKind
    rule: Rule
    timezone: str
    recipients: tuple[str, ...]
    alternate: bool = False
    quiet: tuple[QuietWindow, ...] = ()
    revision: int = 0
    partners: tuple[str, ...] = ()  # both partner ids in order: whose turn it is to plan

    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)  # ZoneInfo caches instances per key


@dataclass(frozen=True, slots=True)
class Occurrence:
    """One firing: `nominal` is the rule's instant (its identity); `fire_at` when it goes out."""

    nominal: datetime
    fire_at: datetime
    note: str | None = None
    dropped: bool = False


def _cron_at(at: time, dom: str, dow: str) -> str:
    return f"{at.minute} {at.hour} {dom} * {dow}"


def rule_for(cadence: Cadence, seed: str) -> Rule:
    match cadence:
        case DailyCadence():
            return CronRule(_cron_at(cadence.at, "*", "*"))
        case WeeklyCadence():
            return CronRule(
                _cron_at(cadence.at, "*", str(_DOW[cadence.weekday])),
                every_weeks=cadence.every_weeks,
                anchor=cadence.anchor,
            )
        case MonthlyCadence(day=int() as day):
            return CronRule(_cron_at(cadence.at, str(day), "*"))
        case MonthlyCadence(weekday=str() as weekday, nth=int() as nth):
            dow = _DOW[weekday]  # croniter: "0#1" first Sunday, "L5" last Friday
            return CronRule(_cron_at(cadence.at, "*", f"L{dow}" if nth == -1 else f"{dow}#{nth}"))
        case TimesPerWeekCadence():
            return SpreadRule(cadence.times, cadence.between.start, cadence.between.end, seed)
        case CronCadence():
            return CronRule(cadence.cron)
    raise PlanningError(f"unsupported cadence {cadence!r}")  # pragma: no cover


def _schedules_for(prefs: PreferencesSetData, kind: NudgeKind, plan_: NudgePlan) -> list[Schedule]:
    by_id = {p.partner_id: p for p in prefs.partners}
    both = tuple(p.partner_id for p in prefs.partners)
    base = f"{prefs.couple_id}/{KIND_CODES[kind]}"

    def one(
        target: str, zone_of: Partner, recipients: tuple[str, ...], alternate: bool
    ) -> Schedule:
        sid = f"{base}/{target}"
        quiet = tuple(
            QuietWindow.of(q, by_id[pid].timezone)
            for pid in recipients
            if (q := by_id[pid].quiet_hours) is not None
        )
        return Schedule(
            schedule_id=sid,
            couple_id=prefs.couple_id,
            kind=kind,
            rule=rule_for(plan_.cadence, sid),
            timezone=zone_of.timezone,
            recipients=recipients,
            alternate=alternate,
            quiet=quiet,
            revision=prefs.revision,
            partners=both,
        )

    shared_zone = by_id[plan_.timezone_of] if plan_.timezone_of else prefs.partners[0]
    if plan_.recipients == "alternate":
        return [one("turns", shared_zone, both, alternate=True)]
    targets = both if plan_.recipients == "both" else (plan_.partner_id or "",)
    if plan_.timing == "together":
        return [one("both", shared_zone, targets, alternate=False)]
    return [one(pid, by_id[pid], (pid,), alternate=False) for pid in targets]


def plan(prefs: PreferencesSetData, *, min_interval: timedelta, now: datetime) -> list[Schedule]:
    """All schedules of a couple. Raises PlanningError for cadences firing too often."""
    schedules: list[Schedule] = []
    for kind in KIND_CODES:
        plan_: NudgePlan | None = getattr(prefs.nudges, kind)
        if plan_ is not None:
            schedules += plan_kind(prefs, kind, plan_, min_interval=min_interval, now=now)
    return schedules


def plan_kind(
    prefs: PreferencesSetData,
    kind: NudgeKind,
    plan_: NudgePlan,
    *,
    min_interval: timedelta,
    now: datetime,
) -> list[Schedule]:
    """The schedules of one nudge kind of a couple (see `plan`)."""
    try:
        made = _schedules_for(prefs, kind, plan_)
    except RuleError as exc:  # a cron the schema lets through but the rules refuse ("R 9 * * *")
        raise PlanningError(f"{kind}: {exc}") from None
    if isinstance(plan_.cadence, CronCadence):
        rule = made[0].rule  # same rule for every audience
        assert isinstance(rule, CronRule)
        check_frequency(kind, rule, min_interval, now)
    return made


def cron_rule(kind: NudgeKind, expr: str) -> CronRule:
    """A raw cron's rule, as `plan_kind` builds it; PlanningError when the rules refuse it."""
    try:
        return CronRule(expr)
    except RuleError as exc:
        raise PlanningError(f"{kind}: {exc}") from None


def check_frequency(
    kind: NudgeKind, rule: CronRule, min_interval: timedelta, now: datetime
) -> None:
    """Refuses a raw cron with two consecutive fires closer than `min_interval` within a year.

    Measured on the UTC wall clock (see `rules.first_gap_below`, which finds the same first
    short gap a walk over the year's fires would, from the cron's fields).
    """
    gap = first_gap_below(rule, now, now + _FREQUENCY_HORIZON, min_interval)
    if gap is not None:
        raise PlanningError(
            f"{kind}: cron fires as often as every {_human(gap)}; "
            f"the minimum interval between nudges is {_human(min_interval)}"
        )


def never_fires(kind: NudgeKind) -> PlanningError:
    """The refusal of a raw cron no date matches within `rules.next_fire`'s eight years (as
    "0 0 30 2 *"): it was applied with no timer, and no word to the publisher. Raised where
    a first fire comes out None, so a cron that fires costs nothing more."""
    return PlanningError(f"{kind}: cron never fires (no date matches it within 8 years)")


def _human(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 60:
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    hours = minutes // 60
    return "1 hour" if hours == 1 else f"{hours} hours"


def occurrence_at(schedule: Schedule, nominal: datetime) -> Occurrence:
    """Where a rule instant of `schedule` lands once its recipients' quiet hours apply."""
    return quiet_occurrence(schedule.quiet, nominal)


def occurrence_in_force(schedule: Schedule, nominal: datetime) -> Occurrence:
    """The occurrence a timer planned for `nominal` stands for under the zone rules in force.

    A timer keeps the instant it was planned for. When a newer tz database changes the zone's
    rules after that (a country gives up summer time; the service is redeployed with the new
    tzdata), the instant is no longer one of the rule's: 09:00 planned at +03:00 is 06:00Z,
    08:00 at +02:00, and the rule's next instant after it is 09:00 that same day, a second
    nudge. The timer stands for the rule's instant nearest to it within `_RULES_CHANGE`
    (the earlier one on a tie); an instant that is still the rule's, or one with none of the
    rule's that near, stands for itself.
    """
    zone, rule = schedule.tz(), schedule.rule
    if next_fire(rule, zone, nominal - _MS) == nominal:  # the rules have not moved it
        return occurrence_at(schedule, nominal)
    before, at = None, nominal - _RULES_CHANGE
    while (after := next_fire(rule, zone, at)) is not None and after < nominal:
        before = at = after
    near = [t for t in (before, after) if t is not None and abs(t - nominal) <= _RULES_CHANGE]
    if not near:
        return occurrence_at(schedule, nominal)
    return occurrence_at(schedule, min(near, key=lambda t: abs(t - nominal)))


def quiet_occurrence(quiet: tuple[QuietWindow, ...], nominal: datetime) -> Occurrence:
    """Where a rule instant lands once every recipient's quiet hours are applied.

    Inside someone's quiet hours the nudge moves to the first instant outside everyone's (the
    end of the covering window, repeated while another window covers that), unless every
    window covering the nominal instant says "drop". No shared allowed time within a day:
    dropped, with the note "no_shared_window".
    """
    covering = [w for w in quiet if w.contains(nominal)]
    if not covering:
        return Occurrence(nominal, nominal)
    if all(w.policy == "drop" for w in covering):
        return Occurrence(nominal, nominal, note="quiet_hours_dropped", dropped=True)
    at = nominal
    for _ in range(2 * len(quiet) + 1):
        inside = [w for w in quiet if w.contains(at)]
        if not inside:
            return Occurrence(nominal, at, note="quiet_hours_deferred")
        at = max(w.end_after(at) for w in inside)
        if at - nominal > timedelta(days=1):
            break
    return Occurrence(nominal, nominal, note="no_shared_window", dropped=True)


def next_occurrence(schedule: Schedule, after: datetime) -> Occurrence | None:
    """The first occurrence whose nominal instant is strictly after `after`."""
    nominal = next_fire(schedule.rule, schedule.tz(), after)
    return None if nominal is None else occurrence_at(schedule, nominal)


def first_occurrence(schedule: Schedule, now: datetime) -> Occurrence | None:
    """The occurrence a schedule planned at `now` waits for (see `pending_or_next`)."""
    return pending_or_next(schedule.rule, schedule.tz(), schedule.quiet, now)


def pending_or_next(
    rule: Rule, zone: ZoneInfo, quiet: tuple[QuietWindow, ...], now: datetime
) -> Occurrence | None:
    """The first occurrence not yet sent at `now`: one whose nominal instant has passed but
    which quiet hours deferred past `now`, else the first whose nominal is after `now`.

    A new revision plans a couple at `now`: between a nudge's nominal instant (23:00) and the
    end of the quiet hours it was deferred to (08:00), the next nominal (23:00 the next day)
    would skip the deferred nudge, unsent and unreported. Only while `now` is inside someone's
    quiet hours can one be waiting: its deferral runs through quiet hours up to its fire."""
    if any(window.contains(now) for window in quiet):
        at = now - _LONGEST_DEFERRAL
        while (nominal := next_fire(rule, zone, at)) is not None and nominal <= now:
            waiting = quiet_occurrence(quiet, nominal)
            if waiting.fire_at > now:
                return waiting
            at = nominal
    nominal = next_fire(rule, zone, now)
    return None if nominal is None else quiet_occurrence(quiet, nominal)
