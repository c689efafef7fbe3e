"""The notifier as a FastStream app, for its AsyncAPI description only.

    nudge schema asyncapi docs/asyncapi   (services/asyncapi.py finishes FastStream's document)

The notifier runs with `nudge notifier` (services/notifier/service.py), whose handlers take raw
messages so a bad entry can be kept byte for byte. This module declares the same streams,
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

from couples_nudge.common.keys import NOTIFIER_GROUP, Keys
from couples_nudge.common.settings import DEFAULT_REDIS_URL
from couples_nudge.operator.entries import DeadLetterEntry, RejectedEntry
from couples_nudge_schemas import (
    ChannelBounced,
    ChannelComplained,
    NudgeDue,
    OutcomesStreamEvent,
    PreferencesUnsubscribed,
)

__all__ = ["app", "broker"]

KEYS = Keys()
WIRE = (
    "Each entry has one field, `__data__`, holding the event as plain JSON (UTF-8). "
    "Key names use the default prefix `nudges` (NUDGE_KEY_PREFIX)."
)

# What the notifier's HTTP side publishes on the preferences stream.
NotifierPreferenceEvent = Annotated[
    PreferencesUnsubscribed | ChannelBounced | ChannelComplained, Field(discriminator="type")
]

broker = RedisBroker(DEFAULT_REDIS_URL)

broker.publisher(
    stream=KEYS.outcomes,
    title="outcomes",
    description="One event per (occurrence, partner, channel): sent, suppressed (with the "
    "reason) or failed (permanent, or transient after the last attempt). Ids only, no "
    "personal data. Read it with your own consumer group. Later, what email relays report: "
    "`nudge.bounced.v1` (hard or soft) and `nudge.complained.v1` (a spam report), with the "
    "occurrence when the relay named it. Also `service.state_lost.v1`, once, "
    "when Redis came back without the services' state: republish your couples' "
    "preferences. " + WIRE,
    schema=OutcomesStreamEvent,
)
broker.publisher(
    stream=KEYS.preferences,
    title="preferences (unsubscribes, bounces, complaints)",
    description="The one-click unsubscribe endpoint publishes preferences.unsubscribed.v1 "
    "here, and the relay webhook endpoints (/webhooks/...) channel.bounced.v1 and "
    "channel.complained.v1, for the scheduler to apply like any other preference event. " + WIRE,
    schema=NotifierPreferenceEvent,
)
broker.publisher(
    stream=KEYS.rejected,
    title="rejected",
    description="NudgeDue entries that failed validation, with the reason. Flat fields, not "
    "`__data__`: read with XRANGE.",
    schema=RejectedEntry,
)
broker.publisher(
    stream=KEYS.dead,
    title="dead",
    description="Nudges that exhausted their retries or deliveries. Flat fields; replay with "
    "`nudge dlq replay` or the /status page.",
    schema=DeadLetterEntry,
)


@broker.subscriber(
    stream=StreamSub(KEYS.due(0), group=NOTIFIER_GROUP, consumer="notifier-<host>-<pid>"),
    title="due",
    description="NudgeDue from the scheduler, one stream per shard: nudges:due:{s00} ... "
    "{sNN}. A retried nudge comes back with a second field, `attempt`. " + WIRE,
)
async def on_due(event: NudgeDue) -> None:
    """Declared for the description; `NotifierService.handle` does the work."""


app = FastStream(
    broker,
    specification=AsyncAPI(
        title="Couples' nudges: notifier",
        version=version("couples-nudge"),
        description="Sends the nudges NudgeDue asks for, by email or push, and publishes what "
        "happened. Publisher guide: docs/publishers.md.",
    ),
)
