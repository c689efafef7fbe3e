"""Driving the notifier's Delivery directly: a couple stored as the scheduler stores it, and
NudgeDue events built by hand."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any, cast

import redis.asyncio as aioredis

from couples_nudge.common.clock import Clock, ManualClock
from couples_nudge.common.couple_state import parse_couple
from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.channels.base import Channel
from couples_nudge.notifier.delivery import Delivery, DeliveryResult
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.state import NotifierState
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge_schemas import NudgeDue, NudgeDueData, NudgeKind, parse_preference
from tests.support.events import envelope


async def plant(
    redis: aioredis.Redis, settings: NotifierSettings, data: dict[str, Any], now: datetime
) -> list[str]:
    """Apply a preferences.set.v1 payload with the scheduler's own code; its schedule ids."""
    scheduler = SchedulerSettings(redis_url=settings.redis_url, key_prefix=settings.key_prefix)
    store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
    event = parse_preference(envelope("preferences.set.v1", json.loads(json.dumps(data))))
    await PreferenceIngest(store, ManualClock(now), scheduler).apply(event)
    raw = await redis.hgetall(settings.keys.couple(data["couple_id"]))
    couple = parse_couple(cast("dict[bytes, bytes]", raw))
    return couple.fields["sids"].split(",")


def due(
    couple_id: str,
    schedule_id: str,
    kind: NudgeKind,
    recipients: list[str],
    at: datetime,
    *,
    turn: str | None = None,
) -> NudgeDue:
    occurrence = f"{schedule_id}@{int(at.timestamp())}"
    return NudgeDue(
        type="nudge.due.v1",
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, occurrence),
        occurred_at=at,
        producer="tests",
        data=NudgeDueData(
            occurrence_id=occurrence,
            couple_id=couple_id,
            schedule_id=schedule_id,
            kind=kind,
            recipients=recipients,
            turn=turn,
            sequence=0,
            scheduled_at=at,
            revision=1,
        ),
    )


def delivery(
    redis: aioredis.Redis,
    settings: NotifierSettings,
    channels: dict[Any, Channel],
    clock: Clock,
) -> Delivery:
    return Delivery(NotifierState(redis, settings.keys), channels, load_catalog(), clock, settings)


async def deliver_published(deliverer: Delivery, nudge: NudgeDue) -> DeliveryResult:
    """Deliver, then empty the outbox of what was delivered, as the service does once the
    outcomes are on the outcomes stream: a later delivery of the same nudge then sees them
    as published."""
    result = await deliverer.deliver(nudge)
    fields = [entry.field for entry in result.boxed.values()]
    if fields:
        await deliverer.state.unbox(nudge.data.couple_id, fields)
    return result
