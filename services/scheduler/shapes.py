"""A couple's schedules as stored (Arms): planned directly, or once per shape. Pure: no I/O.

`plan_arms` is the definition: the planner's schedules (planning.plan), each with its spec
(records.encode_spec) and the first occurrence it waits for at `now`
(planning.first_occurrence: the next after `now`, or one quiet hours deferred past it).

`ShapePlanner` gives the same Arms for a fraction of the cost when couples share a shape. What
one nudge kind stores (its specs) and when it first fires depend only on the kind's plan (with
partner ids read as positions), the partners' zones and quiet hours, and `now`; and the first
occurrence stays the same for every `now` from the one it was computed at up to its nominal
instant (or, for one deferred past `now`, up to its fire). So one entry per (kind, shape)
serves every couple of that shape while `since <= now < until`, and each couple only puts its
own ids in. Bulk imports of couples made
with an app's defaults repeat a few shapes; a real clock moves `now` on every event, which the
interval covers (a memo keyed by `now` would never hit).

Times-per-week is seeded by the schedule id, so its first fire is each couple's own; but its
specs, zone and quiet windows are still the shape's. Its entry keeps those (valid for every
`now`), and each couple only derives its first fire from its own seed.

Raw cron is the other way round: couples rarely share a cron, but they share an audience. What
a raw-cron kind stores is its audience's (target, spec up to the rule text, zone, quiet
windows: none depend on the cron) plus the cron's own text; its entry keeps the audience's part
(valid at any `now`), and each couple only builds its rule, runs the frequency check (a year
ahead of its own `now`) and derives each schedule's first occurrence, exactly as `plan_kind`
and `_arms` do. A cron the rules refuse or too frequent raises the same PlanningError.

Planned directly instead: couples whose partner ids are spelled like a shared target ("both",
"turns"), which a schedule id could not tell apart.

An Arm also carries the texts APPLY_PLAN stores (store.Arm: its record field and a new
record, "0|<nominal_ms>|<spec>"): a memo entry's record depends only on its spec and nominal
instant, which the entry shares, so it is kept there, built once per shape, not per couple.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import count
from typing import Final, NamedTuple, TypeVar, get_args
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from couples_nudge.common.clock import epoch_ms, from_ms
from couples_nudge.scheduler.planning import (
    KIND_CODES,
    QuietWindow,
    Schedule,
    check_frequency,
    cron_rule,
    first_occurrence,
    never_fires,
    pending_or_next,
    plan,
    plan_kind,
)
from couples_nudge.scheduler.records import CoupleContext, context_of, encode_spec, rule_text
from couples_nudge.scheduler.rules import (
    DailyWindow,
    Rule,
    SpreadRule,
    first_spread_minute,
    window_minutes,
)
from couples_nudge.scheduler.steady_weeks import (
    QuietBounds,
    SteadyWeek,
    first_spread_ms,
    quiet_bounds,
    quiet_free_us,
    steady_week,
)
from couples_nudge.scheduler.store import Arm, build_arm
from couples_nudge_schemas import (
    Cadence,
    CronCadence,
    NudgeKind,
    NudgePlan,
    PreferencesSetData,
    TimesPerWeekCadence,
)

__all__ = ["ShapePlanner", "plan_arms"]

# `Arm(...)` runs the NamedTuple's generated Python __new__ (~3.0k instructions); the same
# tuple built by tuple.__new__ in C costs ~1.4k (four arms a realistic couple): an Arm has no
# __new__ of its own to skip (tests/property/test_shape_planner.py).
_new_arm: Final = tuple.__new__
# Each kind's record fields start "<kind code>/" (planning.plan's schedule ids, after the couple's).
_FIELD_HEADS: Final = {kind: f"{code}/" for kind, code in KIND_CODES.items()}
_MINUTE_MS: Final = 60_000
_MINUTE_US: Final = 60_000_000
_DAY_MS: Final = 86_400_000
_DAY_MINUTES: Final = 1440
_EPOCH_DAY: Final = date(1970, 1, 1)
_SHARED: Final = frozenset({"both", "turns"})  # schedule-id targets that are not a partner id
MEMO_SIZE: Final = 4096  # shapes remembered; when full, the memo starts over


def plan_arms(data: PreferencesSetData, *, min_interval: timedelta, now: datetime) -> list[Arm]:
    """Every schedule of the couple with its spec and first fire after `now`."""
    schedules = plan(data, min_interval=min_interval, now=now)
    return _arms(schedules, context_of(data), now)


def _arms(schedules: list[Schedule], context: CoupleContext, now: datetime) -> list[Arm]:
    arms: list[Arm] = []
    for schedule in schedules:
        first = first_occurrence(schedule, now)
        if first is None:  # only a raw cron: every other rule fires every week
            raise never_fires(schedule.kind)
        spec = encode_spec(schedule, context)
        nominal_ms, fire_ms = epoch_ms(first.nominal), epoch_ms(first.fire_at)
        arms.append(build_arm(schedule.schedule_id, spec, nominal_ms, fire_ms))
    return arms


def _values(model: BaseModel | None) -> Hashable:
    """A model as a tuple of its type and field values (nested models likewise): hashed and
    compared in C, where a pydantic model's own __hash__/__eq__ run Python code per field
    (they were a tenth of planning a couple from the memo)."""
    if model is None:
        return None
    cls = type(model)
    nested = _NESTED.get(cls)  # a dict read, not a cached call: ~6 a couple
    if nested is None:
        nested = _NESTED[cls] = _nested_fields(cls)
    if not nested:  # a flat model: its values as they are, in one step
        return (cls, *model.__dict__.values())
    values = [cls, *model.__dict__.values()]
    for i in nested:  # only fields that may hold a model (a comprehension over all: ~2.9k more)
        if isinstance(value := values[i], BaseModel):
            values[i] = _values(value)
    return tuple(values)


_NESTED: dict[type[BaseModel], tuple[int, ...]] = {}  # _nested_fields by model type (bounded)


def _nested_fields(model_type: type[BaseModel]) -> tuple[int, ...]:
    """Where the type's fields that may hold a model (their annotation names one) are in
    `_values`'s tuple (after the type). A model left in a key by a miss would still compare
    right, by pydantic's own __eq__ and __hash__; a value that is not a model is kept."""
    fields = model_type.model_fields.values()
    return tuple(i for i, field in enumerate(fields, 1) if _names_model(field.annotation))


def _names_model(annotation: object) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_names_model(arg) for arg in get_args(annotation))


def _spread_values(cadence: TimesPerWeekCadence) -> Hashable:
    """`_values(cadence)` of a times-per-week cadence, its one nested model (the window, a
    flat one) written out instead of `_values`' generic walk and recursion (~3k instructions
    a couple); tests/property/test_shape_planner.py holds it equal to `_values`."""
    values = cadence.__dict__
    window = values["between"]
    return (
        TimesPerWeekCadence,
        values["repeat"],
        values["times"],
        (type(window), *window.__dict__.values()),
    )


# The cadence classes whose `_values` is `(type, *field values)`: no field may hold a model.
_FLAT: Final = frozenset(cls for cls in get_args(get_args(Cadence)[0]) if not _nested_fields(cls))


class _Entry(NamedTuple):
    since: datetime
    until: datetime  # the earliest instant an arm waits for (a nominal, or a deferred fire)
    # target (shared or position), spec, nominal and fire ms, and the record (Arm.record)
    arms: tuple[tuple[str | int, str, int, int, str], ...]


class _CronArm(NamedTuple):
    """One schedule of a raw-cron kind, without the cron: what its audience decides."""

    target: str | int  # shared target or partner position, as in _Entry
    prefix: str  # the spec up to its rule text: "<zone><recipients>[a]|"
    zone: ZoneInfo
    quiet: tuple[QuietWindow, ...]


def _spec_prefix(spec: str, rule: Rule) -> str:
    """A spec without its rule's text (records.encode_spec puts that last)."""
    text = rule_text(rule)
    assert spec.endswith(text)
    return spec[: len(spec) - len(text)]


@dataclass(slots=True)
class _SpreadArm:
    """One schedule of a times-per-week kind, for any couple of its shape: each couple seeds
    the rule with its own schedule id (`ShapePlanner.arms` derives its first fire)."""

    target: str | int  # shared target or partner position, as in _Entry
    spec: str
    rule: SpreadRule  # seeded for the couple it was planned for: each couple uses its own id
    zone: ZoneInfo
    quiet: tuple[QuietWindow, ...]
    quiet_zones: tuple[ZoneInfo, ...]  # each quiet window's zone
    bounds: QuietBounds  # steady_weeks.quiet_bounds(quiet)
    window: DailyWindow  # rules.window_minutes of the rule's window
    times: int  # rule.times_per_week
    # The steady week `steady_week(zone, quiet_zones, ...)` last gave this arm, kept while it
    # holds `now` (start_ms <= now_ms < until_ms): the week steady_week would give again for
    # any instant of it (one per local Monday of the zone), without its call (~3k a couple).
    week: SteadyWeek | None = None
    # `_window_clear` of that week: no quiet window holds any minute the rule can fire at in
    # it or the next, so every couple's first fire there is its nominal (no quiet check).
    clear: bool = False

    def general(self, schedule_id: str, now: datetime) -> Arm:
        """The arm of `schedule_id`'s seed the general way: `planning.pending_or_next` of the
        seeded rule (a week with an offset change, a quiet nominal, or a quiet `now`)."""
        rule = self.rule
        seeded = SpreadRule(rule.times_per_week, rule.window_start, rule.window_end, schedule_id)
        occurrence = pending_or_next(seeded, self.zone, self.quiet, now)
        assert occurrence is not None  # every week has a fire
        return build_arm(
            schedule_id, self.spec, epoch_ms(occurrence.nominal), epoch_ms(occurrence.fire_at)
        )


class ShapePlanner:
    """`plan_arms`, remembered per (nudge kind, shape): see the module's docstring."""

    def __init__(self, min_interval: timedelta, *, size: int = MEMO_SIZE) -> None:
        self.min_interval = min_interval
        self.size = size
        self.hits = 0  # kinds served from the memo (for tests and benchmarks)
        self._memo: dict[Hashable, _Entry] = {}
        self._spreads: dict[Hashable, tuple[_SpreadArm, ...]] = {}
        self._crons: dict[Hashable, tuple[_CronArm, ...]] = {}
        # The partners' zones and quiet hours -> a number that stands for them in the kinds'
        # keys: one hash of them a couple instead of one per kind. A number is never reused
        # (the counter only grows), so a key holding it means what the tuple meant; once this
        # starts over, a shape seen again gets a new number (its old entries unreachable).
        self._couples: dict[Hashable, int] = {}
        self._numbers = count()

    def arms(self, data: PreferencesSetData, now: datetime) -> list[Arm]:
        # Each model's fields are read from its __dict__ (exactly its field values: the
        # schema's models forbid extras): a pydantic model's attribute goes through its
        # __getattr__ hook (no specialised load), ~3x a dict read; `__dict__` is one such read.
        values = data.__dict__
        first, second = values["partners"]
        a, b = first.__dict__, second.__dict__
        ids = (a["partner_id"], b["partner_id"])
        if not _SHARED.isdisjoint(ids):
            return plan_arms(data, min_interval=self.min_interval, now=now)
        context: CoupleContext | None = None
        now_ms: int | None = None
        # What every kind's key shares: the partners' zones and quiet hours.
        # Quiet hours are a flat model (no nested one), so their field values alone tell them
        # apart here: what `_values` would give but its type, without its call.
        qa, qb = a["quiet_hours"], b["quiet_hours"]
        zones_and_quiet = (
            a["timezone"],
            b["timezone"],
            None if qa is None else (*qa.__dict__.values(),),
            None if qb is None else (*qb.__dict__.values(),),
        )
        couple = self._couples.get(zones_and_quiet)
        if couple is None:
            couple = next(self._numbers)
            _keep(self._couples, zones_and_quiet, couple, self.size)
        couple_id, plans = values["couple_id"], values["nudges"].__dict__
        couple_head = couple_id + "/"  # a schedule id is this, then its record field
        arms: list[Arm] = []
        for kind, head in _FIELD_HEADS.items():
            plan_: NudgePlan | None = plans[kind]
            if plan_ is None:
                continue
            fields = plan_.__dict__
            cadence, partner_id, zone_of = (
                fields["cadence"],
                fields["partner_id"],
                fields["timezone_of"],
            )
            audience = (
                fields["recipients"],
                None if partner_id is None else ids.index(partner_id),
                fields["timing"],
                None if zone_of is None else ids.index(zone_of),
                couple,
            )
            # The cadence's exact class (a Cadence is one of the union's, never a subclass):
            # isinstance against a pydantic model class goes through ABCMeta, ~8x `type() is`.
            if type(cadence) is CronCadence:
                cron_key = (kind, audience)
                template = self._crons.get(cron_key)
                if template is None:
                    context = context or context_of(data)
                    made = plan_kind(data, kind, plan_, min_interval=self.min_interval, now=now)
                    template = self._remember_cron(cron_key, made, context)
                    arms += _arms(made, context, now)
                    continue
                self.hits += 1
                base = couple_head + head
                arms += self._cron_arms(kind, cadence.cron, template, base, ids, now)
                continue
            # `_values(cadence)`, written out for a flat cadence (no nested model: the same
            # tuple without its call, ~1.5k instructions a kind).
            cls = type(cadence)
            if cls in _FLAT:
                values_: Hashable = (cls, *cadence.__dict__.values())
            elif cls is TimesPerWeekCadence:
                values_ = _spread_values(cadence)
            else:  # pragma: no cover - every cadence of the union is one of the above
                values_ = _values(cadence)
            key = (kind, values_, audience)  # nested, not spread out: no list built
            if cls is TimesPerWeekCadence:
                spread = self._spreads.get(key)
                if spread is None:
                    context = context or context_of(data)
                    made = plan_kind(data, kind, plan_, min_interval=self.min_interval, now=now)
                    spread = self._remember_spread(key, made, context)
                else:
                    self.hits += 1
                now_ms = epoch_ms(now) if now_ms is None else now_ms
                # Loops, not list comprehensions: a comprehension's own frame costs ~2k.
                # Each couple's arm: the first fire after `now` of the rule seeded by its own
                # schedule id, in a steady week by integer arithmetic (steady_weeks.py), here
                # rather than in a method of the arm (a call frame each, ~1.5k).
                for each in spread:
                    t = each.target
                    field = head + (t if isinstance(t, str) else ids[t])
                    schedule_id = couple_head + field
                    week = each.week
                    if week is None or not week.start_ms <= now_ms < week.until_ms:
                        week = each.week = steady_week(each.zone, each.quiet_zones, now, now_ms)
                        each.clear = week is not None and _window_clear(
                            week, each.window, each.bounds
                        )
                    if week is not None:
                        # first_spread_ms's first step written out (its frame, ~1.5k): the
                        # first of this week's minutes after now's; past the week's last,
                        # first_spread_ms itself (the next week's first).
                        start, width = each.window
                        elapsed = (now_ms - week.start_ms) // _MINUTE_MS
                        text = schedule_id.encode() + week.tag
                        minute = first_spread_minute(text, each.times, start, width, elapsed)
                        if minute is not None:
                            nominal_ms = week.start_ms + minute * _MINUTE_MS
                        else:
                            nominal_ms = first_spread_ms(
                                week, schedule_id, each.times, start, width, now_ms
                            )
                        # A clear week (no quiet minute in the rule's window, no quiet
                        # window at all): quiet_free_us would answer True, and no fire of
                        # the day before was deferred. Else a quiet `now` may have one
                        # waiting (planning.pending_or_next): the general way.
                        if each.clear or (
                            quiet_free_us(week, each.bounds, nominal_ms)
                            and quiet_free_us(week, each.bounds, now_ms)
                        ):
                            spec = each.spec
                            record = f"0|{nominal_ms}|{spec}"  # Arm.record
                            arms.append(
                                _new_arm(
                                    Arm,
                                    (schedule_id, spec, nominal_ms, nominal_ms, field, record),
                                )
                            )
                            continue
                    arms.append(each.general(schedule_id, now))
                continue
            entry = self._memo.get(key)
            if entry is not None and entry.since <= now < entry.until:
                self.hits += 1
            else:
                context = context or context_of(data)
                made = plan_kind(data, kind, plan_, min_interval=self.min_interval, now=now)
                entry = self._remember(key, made, context, now)
            for t, spec, nominal_ms, fire_ms, record in entry.arms:
                field = head + (t if isinstance(t, str) else ids[t])
                arms.append(
                    _new_arm(Arm, (couple_head + field, spec, nominal_ms, fire_ms, field, record))
                )
        return arms

    def _remember(
        self, key: Hashable, made: list[Schedule], context: CoupleContext, now: datetime
    ) -> _Entry:
        arms = _arms(made, context, now)
        now_ms = epoch_ms(now)
        entry = _Entry(
            now,
            # An arm waits for its nominal instant, or for its fire when quiet hours deferred
            # it past `now` (planning.pending_or_next): the same arms until the first of those.
            from_ms(
                min(
                    (arm.nominal_ms if arm.nominal_ms > now_ms else arm.fire_ms for arm in arms),
                    default=now_ms,
                )
            ),
            tuple(
                (
                    _target(arm.schedule_id, context),
                    arm.spec,
                    arm.nominal_ms,
                    arm.fire_ms,
                    arm.record,
                )
                for arm in arms
            ),
        )
        _keep(self._memo, key, entry, self.size)
        return entry

    def _cron_arms(
        self,
        kind: NudgeKind,
        expr: str,
        template: tuple[_CronArm, ...],
        base: str,
        ids: tuple[str, str],
        now: datetime,
    ) -> list[Arm]:
        """A raw cron's arms from its audience's template: the rule, its frequency check and
        each schedule's first occurrence, as `plan_kind` and `_arms` make them."""
        rule = cron_rule(kind, expr)
        check_frequency(kind, rule, self.min_interval, now)
        spec = rule_text(rule)
        arms = []
        for each in template:
            first = pending_or_next(rule, each.zone, each.quiet, now)
            if first is None:
                raise never_fires(kind)
            nominal, fire_at = first.nominal, first.fire_at
            target = each.target
            arms.append(
                build_arm(
                    base + (target if isinstance(target, str) else ids[target]),
                    each.prefix + spec,
                    epoch_ms(nominal),
                    epoch_ms(fire_at),
                )
            )
        return arms

    def _remember_cron(
        self, key: Hashable, made: list[Schedule], context: CoupleContext
    ) -> tuple[_CronArm, ...]:
        template = tuple(
            _CronArm(
                _target(s.schedule_id, context),
                _spec_prefix(encode_spec(s, context), s.rule),
                s.tz(),
                s.quiet,
            )
            for s in made
        )
        _keep(self._crons, key, template, self.size)
        return template

    def _remember_spread(
        self, key: Hashable, made: list[Schedule], context: CoupleContext
    ) -> tuple[_SpreadArm, ...]:
        spread = tuple(
            _SpreadArm(
                _target(s.schedule_id, context),
                encode_spec(s, context),
                s.rule,
                s.tz(),
                s.quiet,
                tuple(ZoneInfo(q.timezone) for q in s.quiet),
                quiet_bounds(s.quiet),
                window_minutes(s.rule.window_start, s.rule.window_end),
                s.rule.times_per_week,
            )
            for s in made
            if isinstance(s.rule, SpreadRule)
        )
        _keep(self._spreads, key, spread, self.size)
        return spread


def _window_clear(week: SteadyWeek, window: DailyWindow, bounds: QuietBounds) -> bool:
    """True when no quiet window (`bounds`, their zones' offsets in `week`) holds any minute
    of the daily window (`window`: rules.window_minutes, minutes of the schedule zone's day)
    in `week` or the next: then `steady_weeks.quiet_free_us` is True for every nominal
    instant a spread rule of that window has there (once per arm and week, not per couple).

    The invariant: in a steady week (and the next) the zone and each quiet zone keep one
    whole-minute offset, and a nominal instant is the week's local Monday 00:00 plus whole
    local minutes (first_spread_ms), so its time of day in a quiet zone is its minute of the
    zone's day shifted by the two offsets' difference, the same on every day. Exact both
    ways: tests/property/test_ingest15_window_clear.py compares it minute by minute."""
    start, width = window
    monday_ms = (week.monday - _EPOCH_DAY).days * _DAY_MS  # the local Monday, read as UTC
    zone_offset_ms = monday_ms - week.start_ms
    for i, (quiet_start_us, quiet_end_us) in enumerate(bounds):
        shift = (week.quiet_offsets_ms[i] - zone_offset_ms) // _MINUTE_MS
        first = (start + shift) % _DAY_MINUTES
        # The window's minutes in the quiet zone's day, as [from, to) ranges of minutes.
        fires = _day_ranges(first, first + width)
        # The quiet window's whole minutes: m with start <= m minutes < end (wrapping).
        low, high = -(-quiet_start_us // _MINUTE_US), -(-quiet_end_us // _MINUTE_US)
        quiet = [(low, high)] if quiet_start_us < quiet_end_us else [(low, _DAY_MINUTES), (0, high)]
        for a, b in fires:
            for c, d in quiet:
                if max(a, c) < min(b, d):
                    return False
    return True


def _day_ranges(start: int, end: int) -> list[tuple[int, int]]:
    """Minutes [start, end) of a day (0 <= start < 1440, end - start <= 1440), wrapped."""
    if end <= _DAY_MINUTES:
        return [(start, end)]
    return [(start, _DAY_MINUTES), (0, end - _DAY_MINUTES)]


def _target(schedule_id: str, context: CoupleContext) -> str | int:
    """A schedule's target as the memo keeps it: shared, or the position of its partner."""
    target = schedule_id.rsplit("/", 1)[1]  # "<couple>/<kind code>/<target>"
    return target if target in _SHARED else context.partners.index(target)


_V = TypeVar("_V")


def _keep(memo: dict[Hashable, _V], key: Hashable, value: _V, size: int) -> None:
    """Remember `value`; a full memo starts over (the shapes in use come back at once)."""
    if len(memo) >= size:
        memo.clear()
    memo[key] = value
