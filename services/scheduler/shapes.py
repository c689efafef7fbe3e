"""A couple's schedules as stored (Arms): planned directly, or once per shape. Pure: no I/O.

`plan_arms` is the definition: the planner's schedules (planning.plan), each with its spec
(records.encode_spec) and its first occurrence after `now`.

`ShapePlanner` gives the same Arms for a fraction of the cost when couples share a shape. What
one nudge kind stores (its specs) and when it first fires depend only on the kind's plan (with
partner ids read as positions), the partners' zones and quiet hours, and `now`; and the first
occurrence after `now` stays the same for every `now` from the one it was computed at up to its
nominal instant. So one entry per (kind, shape) serves every couple of that shape while
`since <= now < until`, and each couple only puts its own ids in. Bulk imports of couples made
with an app's defaults repeat a few shapes; a real clock moves `now` on every event, which the
interval covers (a memo keyed by `now` would never hit).

Planned directly instead: times_per_week (its times are seeded by the schedule id), raw cron
(its frequency check reads a year ahead of `now`), and couples whose partner ids are spelled
like a shared target ("both", "turns"), which a schedule id could not tell apart.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from schemas import CronCadence, NudgeKind, NudgePlan, PreferencesSetData, TimesPerWeekCadence
from services.common.clock import epoch_ms, from_ms
from services.scheduler.planning import KIND_CODES, Schedule, next_occurrence, plan, plan_kind
from services.scheduler.records import CoupleContext, context_of, encode_spec
from services.scheduler.store import Arm

__all__ = ["ShapePlanner", "plan_arms"]

_SHARED: Final = frozenset({"both", "turns"})  # schedule-id targets that are not a partner id
MEMO_SIZE: Final = 4096  # shapes remembered; when full, the memo starts over


def plan_arms(data: PreferencesSetData, *, min_interval: timedelta, now: datetime) -> list[Arm]:
    """Every schedule of the couple with its spec and first fire after `now`."""
    schedules = plan(data, min_interval=min_interval, now=now)
    return _arms(schedules, context_of(data), now)


def _arms(schedules: list[Schedule], context: CoupleContext, now: datetime) -> list[Arm]:
    arms: list[Arm] = []
    for schedule in schedules:
        first = next_occurrence(schedule, now)
        if first is not None:
            spec = encode_spec(schedule, context)
            nominal_ms, fire_ms = epoch_ms(first.nominal), epoch_ms(first.fire_at)
            arms.append(Arm(schedule.schedule_id, spec, nominal_ms, fire_ms))
    return arms


class _Entry(NamedTuple):
    since: datetime
    until: datetime  # the earliest nominal instant among the arms
    arms: tuple[tuple[str | int, str, int, int], ...]  # target (shared or position), spec, ms


class ShapePlanner:
    """`plan_arms`, remembered per (nudge kind, shape): see the module's docstring."""

    def __init__(self, min_interval: timedelta, *, size: int = MEMO_SIZE) -> None:
        self.min_interval = min_interval
        self.size = size
        self.hits = 0  # kinds served from the memo (for tests and benchmarks)
        self._memo: dict[Hashable, _Entry] = {}

    def arms(self, data: PreferencesSetData, now: datetime) -> list[Arm]:
        a, b = data.partners
        ids = (a.partner_id, b.partner_id)
        if not _SHARED.isdisjoint(ids):
            return plan_arms(data, min_interval=self.min_interval, now=now)
        context: CoupleContext | None = None
        arms: list[Arm] = []
        for kind, code in KIND_CODES.items():
            plan_: NudgePlan | None = getattr(data.nudges, kind)
            if plan_ is None:
                continue
            if isinstance(plan_.cadence, TimesPerWeekCadence | CronCadence):
                context = context or context_of(data)
                made = plan_kind(data, kind, plan_, min_interval=self.min_interval, now=now)
                arms += _arms(made, context, now)
                continue
            key = (
                kind,
                plan_.cadence,
                plan_.recipients,
                None if plan_.partner_id is None else ids.index(plan_.partner_id),
                plan_.timing,
                None if plan_.timezone_of is None else ids.index(plan_.timezone_of),
                a.timezone,
                b.timezone,
                a.quiet_hours,
                b.quiet_hours,
            )
            entry = self._memo.get(key)
            if entry is not None and entry.since <= now < entry.until:
                self.hits += 1
            else:
                context = context or context_of(data)
                entry = self._remember(key, data, kind, plan_, context, now)
            base = f"{data.couple_id}/{code}/"
            arms += [
                Arm(base + (t if isinstance(t, str) else ids[t]), spec, nominal_ms, fire_ms)
                for t, spec, nominal_ms, fire_ms in entry.arms
            ]
        return arms

    def _remember(
        self,
        key: Hashable,
        data: PreferencesSetData,
        kind: NudgeKind,
        plan_: NudgePlan,
        context: CoupleContext,
        now: datetime,
    ) -> _Entry:
        made = _arms(
            plan_kind(data, kind, plan_, min_interval=self.min_interval, now=now), context, now
        )
        skip = len(data.couple_id) + len(KIND_CODES[kind]) + 2  # "<couple>/<code>/"
        ids = context.partners
        targets = [arm.schedule_id[skip:] for arm in made]
        entry = _Entry(
            now,
            from_ms(min((arm.nominal_ms for arm in made), default=epoch_ms(now))),
            tuple(
                (t if t in _SHARED else ids.index(t), arm.spec, arm.nominal_ms, arm.fire_ms)
                for t, arm in zip(targets, made, strict=True)
            ),
        )
        if len(self._memo) >= self.size:
            self._memo.clear()
        self._memo[key] = entry
        return entry
