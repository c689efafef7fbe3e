"""Many couples at once, each with its own addresses, for load and fault tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from couples_nudge.common.clock import ManualClock
from couples_nudge.scheduler.firing import occurrence_id
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.planning import Occurrence, Schedule, next_occurrence, plan
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge_schemas import PreferencesSet, parse_preference
from tests.support.events import envelope, example


def couple_event(n: int, *, nudges: dict[str, Any] | None = None) -> bytes:
    data = example()["data"]
    data["couple_id"] = f"c{n:05d}"
    for partner in data["partners"]:
        partner["email"] = f"{partner['partner_id']}-{n:05d}@example.test"
        partner.pop("quiet_hours", None)
    if nudges is not None:
        data["nudges"] = nudges
    return envelope("preferences.set.v1", data)


async def plant_couples(
    store: ScheduleStore, settings: SchedulerSettings, count: int, now: datetime, **kw: Any
) -> None:
    ingest = PreferenceIngest(store, ManualClock(now), settings)
    for n in range(count):
        await ingest.apply(parse_preference(couple_event(n, **kw)))


def occurrences(
    count: int, start: datetime, end: datetime, **kw: Any
) -> list[tuple[Schedule, Occurrence, str]]:
    """Every (schedule, occurrence, occurrence id) of couples 0..count-1 firing in (start, end]."""
    found: list[tuple[Schedule, Occurrence, str]] = []
    for n in range(count):
        event = parse_preference(couple_event(n, **kw))
        assert isinstance(event, PreferencesSet)
        for schedule in plan(event.data, min_interval=timedelta(hours=4), now=start):
            occ = next_occurrence(schedule, start)
            while occ is not None and occ.fire_at <= end:
                found.append((schedule, occ, occurrence_id(schedule.schedule_id, occ.nominal)))
                occ = next_occurrence(schedule, occ.nominal)
    return found
