"""The scheduler as a FastStream app, for its AsyncAPI description only.

    nudge schema asyncapi docs/asyncapi   (services/asyncapi.py finishes FastStream's document)

The scheduler runs with `nudge scheduler` (services/scheduler/service.py), whose handlers take
raw messages so a bad entry can be kept byte for byte. This module declares the same streams,
consumer group and event models for the description, built from the same key names; it reads
no environment, so the generated document is the same on every machine
(tests/unit/test_asyncapi.py fails when docs/asyncapi/ drifts from the code).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Annotated

from faststream import FastStream
from faststream.redis import RedisBroker, StreamSub
from faststream.specification import AsyncAPI
from pydantic import Field

from couples_nudge.common.keys import SCHEDULER_GROUP, Keys
from couples_nudge.common.settings import DEFAULT_REDIS_URL
from couples_nudge.operator.entries import DeadLetterEntry, RejectedEntry
from couples_nudge_schemas import NudgeDue, NudgeSuppressed, PreferenceEvent, ServiceStateLost

__all__ = ["app", "broker"]

KEYS = Keys()
WIRE = (
    "Each entry has one field, `__data__`, holding the event as plain JSON (UTF-8). "
    "Key names use the default prefix `nudges` (NUDGE_KEY_PREFIX)."
)

broker = RedisBroker(DEFAULT_REDIS_URL)

broker.publisher(
    stream=KEYS.due(0),
    title="due",
    description="NudgeDue, one stream per shard (the `shard` parameter: {s00} ... {sNN}, "
    "NUDGE_SHARDS). "
    "Published atomically with the timer's re-arm (Lua). Ids only, no personal data. " + WIRE,
    schema=NudgeDue,
)
broker.publisher(
    stream=KEYS.outcomes,
    title="outcomes",
    description="The scheduler reports occurrences it did not publish: reason `missed` (after "
    "downtime, beyond the grace window) or `quiet_hours` (policy drop). Either service "
    "publishes `service.state_lost.v1` once when Redis came back without their state: "
    "republish your couples' preferences. " + WIRE,
    schema=Annotated[NudgeSuppressed | ServiceStateLost, Field(discriminator="type")],
)
broker.publisher(
    stream=KEYS.rejected,
    title="rejected",
    description="Preference events that failed validation, with the reason. Flat fields, "
    "not `__data__`: read with XRANGE.",
    schema=RejectedEntry,
)
broker.publisher(
    stream=KEYS.dead,
    title="dead",
    description="Preference entries that failed delivery too often (poison messages). Flat "
    "fields; replay with `nudge dlq replay`.",
    schema=DeadLetterEntry,
)


@broker.subscriber(
    stream=StreamSub(KEYS.preferences, group=SCHEDULER_GROUP, consumer="scheduler-<host>-<pid>"),
    title="preferences",
    description="Preference events from your apps (set, paused, resumed, unsubscribed, "
    "resubscribed, erased) and from the notifier's unsubscribe and relay webhook endpoints "
    "(unsubscribed, channel.bounced, channel.complained). Validated strictly; a bad event "
    "is acknowledged and copied to `rejected`. An event may also come as a CloudEvents 1.0 "
    "structured-mode JSON object (id, source, type, time, data: docs/publishers.md). " + WIRE,
)
async def on_preference(event: PreferenceEvent) -> None:
    """Declared for the description; `SchedulerService.handle` does the work."""


app = FastStream(
    broker,
    specification=AsyncAPI(
        title="Couples' nudges: scheduler",
        version=version("couples-nudge"),
        description="Turns preference events into schedules and publishes NudgeDue when they "
        "come due. Publisher guide: docs/publishers.md.",
    ),
)
