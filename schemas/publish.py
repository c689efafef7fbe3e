"""Building and publishing preference events, for apps written in Python.

The builders wrap a payload in the envelope with good defaults (a fresh UUID4 `event_id`,
`occurred_at` now in UTC) and validate the result exactly as the scheduler will: the event is
written as JSON and parsed back with `parse_preference`, so a builder raises `EventRejected`
with the service's own reason where the service would refuse the event. A payload is a model
(`PreferencesSetData(...)`) or a JSON-shaped mapping (`{"couple_id": "maya-sam", ...}`, times
and dates as strings, as any publisher in another language would write them).

`publish` / `publish_async` do the one XADD the service reads (docs/publishers.md, "The wire
format"): `XADD <prefix>:preferences * __data__ <event JSON>`, with redis-py's `Redis` or
`redis.asyncio.Redis` (the `redis` extra). They check the 64 KiB limit first, so an event the
service would refuse never reaches the stream.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel

from couples_nudge_schemas.events import (
    MAX_EVENT_BYTES,
    EventRejected,
    PreferenceEvent,
    parse_preference,
)

if TYPE_CHECKING:
    from redis import Redis
    from redis.asyncio import Redis as AsyncRedis

__all__ = [
    "DATA_FIELD",
    "DEFAULT_PREFIX",
    "EventBuilder",
    "build_couple_erased",
    "build_event",
    "build_idea_added",
    "build_idea_removed",
    "build_preferences_paused",
    "build_preferences_resubscribed",
    "build_preferences_resumed",
    "build_preferences_set",
    "build_preferences_unsubscribed",
    "preferences_stream",
    "publish",
    "publish_async",
]

DATA_FIELD: Final = "__data__"
DEFAULT_PREFIX: Final = "nudges"

Payload = BaseModel | Mapping[str, Any]


def preferences_stream(prefix: str = DEFAULT_PREFIX) -> str:
    """The stream the scheduler reads preference events from: `<NUDGE_KEY_PREFIX>:preferences`."""
    return f"{prefix}:preferences"


def build_event(
    event_type: str,
    data: Payload,
    *,
    producer: str,
    event_id: uuid.UUID | str | None = None,
    occurred_at: datetime | str | None = None,
) -> PreferenceEvent:
    """Any preference event by its type name (`preferences.set.v1`...), validated as the
    scheduler validates it. Raises EventRejected with the service's reason."""
    body = data.model_dump(mode="json") if isinstance(data, BaseModel) else dict(data)
    when = datetime.now(UTC) if occurred_at is None else occurred_at
    envelope = {
        "type": event_type,
        "event_id": str(uuid.uuid4() if event_id is None else event_id),
        "occurred_at": when.isoformat() if isinstance(when, datetime) else when,
        "producer": producer,
        "data": body,
    }
    try:
        raw = json.dumps(envelope, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise EventRejected(f"not JSON: {type(exc).__name__}") from None
    return parse_preference(raw)


@dataclass(frozen=True, slots=True)
class EventBuilder:
    """`build_event` for one event type: `build_preferences_set(data, producer="app")`."""

    event_type: str

    def __call__(
        self,
        data: Payload,
        *,
        producer: str,
        event_id: uuid.UUID | str | None = None,
        occurred_at: datetime | str | None = None,
    ) -> PreferenceEvent:
        return build_event(
            self.event_type, data, producer=producer, event_id=event_id, occurred_at=occurred_at
        )


build_preferences_set: Final = EventBuilder("preferences.set.v1")
build_preferences_paused: Final = EventBuilder("preferences.paused.v1")
build_preferences_resumed: Final = EventBuilder("preferences.resumed.v1")
build_preferences_unsubscribed: Final = EventBuilder("preferences.unsubscribed.v1")
build_preferences_resubscribed: Final = EventBuilder("preferences.resubscribed.v1")
build_couple_erased: Final = EventBuilder("couple.erased.v1")
build_idea_added: Final = EventBuilder("datejar.idea_added.v1")
build_idea_removed: Final = EventBuilder("datejar.idea_removed.v1")


def _wire(event: PreferenceEvent) -> bytes:
    raw = event.model_dump_json().encode()
    if len(raw) > MAX_EVENT_BYTES:
        raise EventRejected(f"event is {len(raw)} bytes; the limit is {MAX_EVENT_BYTES}")
    return raw


def _entry_id(entry: bytes | str) -> str:
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def publish(redis: Redis, event: PreferenceEvent, *, prefix: str = DEFAULT_PREFIX) -> str:
    """XADD the event where the scheduler reads it; returns the stream entry id."""
    entry = redis.xadd(preferences_stream(prefix), {DATA_FIELD: _wire(event)})
    return _entry_id(entry)


async def publish_async(
    redis: AsyncRedis, event: PreferenceEvent, *, prefix: str = DEFAULT_PREFIX
) -> str:
    """`publish` for redis.asyncio: the same XADD, awaited."""
    entry = await redis.xadd(preferences_stream(prefix), {DATA_FIELD: _wire(event)})
    return _entry_id(entry)
