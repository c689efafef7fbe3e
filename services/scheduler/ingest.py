"""Applying preference events to stored state. Validation happened before; planning is pure."""

from __future__ import annotations

import structlog

from schemas import (
    CoupleErased,
    PreferenceEvent,
    PreferencesPaused,
    PreferencesResumed,
    PreferencesSet,
    PreferencesUnsubscribed,
)
from services.common.clock import Clock, epoch_ms
from services.common.couple_state import pause_value
from services.scheduler.planning import next_occurrence, plan
from services.scheduler.records import encode_spec
from services.scheduler.settings import SchedulerSettings
from services.scheduler.store import Arm, ScheduleStore

__all__ = ["PreferenceIngest"]

log = structlog.get_logger()


class PreferenceIngest:
    def __init__(self, store: ScheduleStore, clock: Clock, settings: SchedulerSettings) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings

    async def apply(self, event: PreferenceEvent) -> str:
        """Apply one validated event; returns what happened, for logs and tests.

        Raises PlanningError for preferences that cannot become an acceptable plan.
        """
        occurred_ms = epoch_ms(event.occurred_at)
        match event:
            case PreferencesSet(data=data):
                now = self.clock.now()
                arms: list[Arm] = []
                for schedule in plan(data, min_interval=self.settings.min_interval, now=now):
                    first = next_occurrence(schedule, now)
                    if first is None:
                        continue
                    arms.append(
                        Arm(
                            schedule.schedule_id,
                            encode_spec(schedule),
                            epoch_ms(first.nominal),
                            epoch_ms(first.fire_at),
                        )
                    )
                profile = data.model_copy(update={"nudges": type(data.nudges)()})
                return await self.store.apply_plan(
                    data.couple_id,
                    revision=data.revision,
                    occurred_ms=occurred_ms,
                    profile=profile.model_dump_json(exclude_defaults=True),
                    arms=arms,
                )
            case PreferencesPaused(data=data):
                field = "pause" if data.partner_id is None else f"pause:{data.partner_id}"
                until = None if data.until is None else epoch_ms(data.until)
                value = pause_value(occurred_ms, until).partition("|")[2]
                return _written(
                    await self.store.set_if_newer(data.couple_id, field, occurred_ms, value)
                )
            case PreferencesResumed(data=data):
                field = "pause" if data.partner_id is None else f"pause:{data.partner_id}"
                value = pause_value(occurred_ms, None, resume=True).partition("|")[2]
                return _written(
                    await self.store.set_if_newer(data.couple_id, field, occurred_ms, value)
                )
            case PreferencesUnsubscribed(data=data):
                field = f"unsub:{data.partner_id}:{data.kind}:{data.channel}"
                return _written(
                    await self.store.set_if_newer(data.couple_id, field, occurred_ms, "1")
                )
            case CoupleErased(data=data):
                await self.store.erase(
                    data.couple_id,
                    occurred_ms=occurred_ms,
                    retention_ms=int(self.settings.tombstone_retention.total_seconds() * 1000),
                )
                return "erased"


def _written(code: int) -> str:
    return {1: "applied", 0: "stale", -1: "unknown_couple"}[code]
