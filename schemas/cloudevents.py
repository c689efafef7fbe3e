"""CloudEvents 1.0 structured-mode JSON: an alternative wire form of a preference event.

An app that already speaks CloudEvents may put one on the preferences stream instead of our
envelope. The attributes map one to one:

    envelope      CloudEvents         note
    event_id   <- id                  a UUID (8-4-4-4-12), as event_id
    producer   <- source              a URI-reference of the envelope's producer alphabet
    type       <- type                the versioned event type, e.g. preferences.set.v1
    occurred_at <- time               RFC 3339 with an offset, as occurred_at
    data       <- data                the same payload, a JSON object
                  specversion         must be "1.0"
                  datacontenttype     optional; if given, "application/json"

Nothing else is accepted (no `data_base64`, `subject`, `dataschema` or extension attributes):
as with the envelope, an unknown attribute is refused, with a reason that names it. An
attribute whose value is JSON `null` is unset, as the CloudEvents JSON format requires of a
decoder (section 2.2: `"subject": null` is an event without a subject); `data` is not an
attribute, and a null one is refused. Each type
has its own CloudEvent model built from the envelope model's own field types, so validation is
the same rule for rule, and a bad attribute is reported under its CloudEvents name (`time`,
not `occurred_at`). A valid CloudEvent then becomes the envelope event, which runs the
envelope model's validators again.
"""

from __future__ import annotations

import functools
import json
import operator
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, create_model

from couples_nudge_schemas._base import Envelope, EventId, Instant, Producer, StrictModel
from couples_nudge_schemas._reasons import describe
from couples_nudge_schemas.events import (
    MAX_EVENT_BYTES,
    EventRejected,
    PreferenceEvent,
    preference_models,
)

__all__ = ["SPECVERSION", "cloud_event_schema", "parse_preference_cloudevent", "to_cloudevent"]

SPECVERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/json"


def _annotation(event: type[Envelope], field: str) -> Any:
    annotation = event.model_fields[field].annotation
    assert annotation is not None
    return annotation


class _CloudAttributes(StrictModel):
    """The CloudEvents attributes every preference event has, with the envelope's rules."""

    # Any other attribute is refused, unless it is null (unset: `_without_nulls`).
    model_config = ConfigDict(json_schema_extra={"additionalProperties": {"type": "null"}})

    specversion: Literal["1.0"]
    id: EventId = Field(description="The envelope's event_id: a UUID.")
    source: Producer = Field(description="The envelope's producer: the publishing app.")
    time: Instant = Field(description="The envelope's occurred_at.")
    datacontenttype: Literal["application/json"] | None = CONTENT_TYPE


def _cloud_model(event: type[Envelope]) -> type[BaseModel]:
    return create_model(
        f"{event.__name__}CloudEvent",
        __base__=_CloudAttributes,
        __doc__=f"{event.__name__} as a CloudEvents 1.0 structured-mode JSON object.",
        type=(_annotation(event, "type"), ...),
        data=(_annotation(event, "data"), ...),
    )


_CLOUD_MODELS: Final = tuple(_cloud_model(m) for m in preference_models())
_CloudEvent: Any = Annotated[
    functools.reduce(operator.or_, _CLOUD_MODELS), Field(discriminator="type")
]
_cloud: TypeAdapter[Any] = TypeAdapter(_CloudEvent)
_envelope: TypeAdapter[PreferenceEvent] = TypeAdapter(PreferenceEvent)


def parse_preference_cloudevent(raw: bytes | str) -> PreferenceEvent:
    """A preference event sent as a CloudEvent, as the envelope event; else EventRejected."""
    size = len(raw.encode()) if isinstance(raw, str) else len(raw)
    if size > MAX_EVENT_BYTES:
        raise EventRejected(f"event is {size} bytes; the limit is {MAX_EVENT_BYTES}")
    try:
        cloud = _cloud.validate_json(_without_nulls(raw))
        event = _envelope.validate_python(
            {
                "type": cloud.type,
                "event_id": cloud.id,
                "occurred_at": cloud.time,
                "producer": cloud.source,
                "data": cloud.data,
            }
        )
    except ValidationError as exc:
        raise EventRejected("cloudevent: " + describe(exc)) from None
    return event


def _without_nulls(raw: bytes | str) -> bytes | str:
    """The CloudEvent without its null attributes: a decoder MUST treat a null attribute as
    unset (CloudEvents JSON format, 2.2). `data` is the payload, not an attribute: it stays.
    Read again from JSON text, so that validation stays JSON validation (strict Python
    validation would refuse a list for a tuple); only text naming `null` is read twice."""
    if b"null" not in (raw.encode() if isinstance(raw, str) else raw):
        return raw
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: arrays nested thousands deep
        return raw  # the validator says what is wrong with it
    if not isinstance(event, dict) or None not in event.values():
        return raw
    return json.dumps({k: v for k, v in event.items() if v is not None or k == "data"})


def to_cloudevent(event: Envelope) -> dict[str, Any]:
    """The CloudEvent of an envelope event (what a publisher following the mapping sends)."""
    return {
        "specversion": SPECVERSION,
        "id": str(event.event_id),
        "source": event.producer,
        "type": event.model_dump()["type"],
        "time": event.occurred_at.isoformat(),
        "datacontenttype": CONTENT_TYPE,
        "data": event.model_dump(mode="json")["data"],
    }


def cloud_event_schema() -> dict[str, Any]:
    """JSON Schema of the CloudEvents form of every preference event."""
    return _cloud.json_schema()
