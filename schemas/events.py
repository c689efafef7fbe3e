"""The unions consumers parse, and the one way to turn bytes into an event (or a clear reason)."""

from __future__ import annotations

from typing import Annotated, Any, Final, TypeVar, get_args

from pydantic import Field, TypeAdapter, ValidationError

from couples_nudge_schemas._base import Envelope
from couples_nudge_schemas._reasons import REASON_LIMIT, describe, safe_reason
from couples_nudge_schemas.deliverability import (
    ChannelBounced,
    ChannelComplained,
    NudgeBounced,
    NudgeComplained,
)
from couples_nudge_schemas.engagement import (
    CadenceAdjusted,
    NudgeEngaged,
    NudgeFeedback,
    PreferencesSnoozed,
)
from couples_nudge_schemas.nudges import NudgeDue
from couples_nudge_schemas.outcomes import NudgeFailed, NudgeSent, NudgeSuppressed, ServiceStateLost
from couples_nudge_schemas.preferences import (
    CoupleErased,
    DateJarIdeaAdded,
    DateJarIdeaRemoved,
    PreferencesPaused,
    PreferencesResubscribed,
    PreferencesResumed,
    PreferencesSet,
    PreferencesUnsubscribed,
)

__all__ = [
    "MAX_EVENT_BYTES",
    "REASON_LIMIT",
    "EventRejected",
    "OutcomeEvent",
    "OutcomesStreamEvent",
    "PreferenceEvent",
    "json_schemas",
    "parse_due",
    "parse_outcome",
    "parse_outcomes_entry",
    "parse_preference",
    "preference_models",
    "safe_reason",
]

MAX_EVENT_BYTES: Final = 64 * 1024

PreferenceEvent = Annotated[
    PreferencesSet
    | PreferencesPaused
    | PreferencesResumed
    | PreferencesUnsubscribed
    | CoupleErased
    | PreferencesResubscribed
    | ChannelBounced
    | ChannelComplained
    | DateJarIdeaAdded
    | DateJarIdeaRemoved
    | PreferencesSnoozed
    | NudgeFeedback,
    Field(discriminator="type"),
]


def preference_models() -> tuple[type[Envelope], ...]:
    """The event models of the preferences stream, in PreferenceEvent's order."""
    models: tuple[type[Envelope], ...] = get_args(get_args(PreferenceEvent)[0])
    return models


# What happened to one nudge. The outcomes stream also carries what relays reported later
# (bounces, complaints), what partners answered (engaged), how the listening cadence moved
# (cadence adjusted) and service notices (state lost): OutcomesStreamEvent is everything an
# entry of that stream may hold.
OutcomeEvent = Annotated[NudgeSent | NudgeSuppressed | NudgeFailed, Field(discriminator="type")]
OutcomesStreamEvent = Annotated[
    NudgeSent
    | NudgeSuppressed
    | NudgeFailed
    | ServiceStateLost
    | NudgeBounced
    | NudgeComplained
    | NudgeEngaged
    | CadenceAdjusted,
    Field(discriminator="type"),
]

_preference: TypeAdapter[PreferenceEvent] = TypeAdapter(PreferenceEvent)
_outcome: TypeAdapter[OutcomeEvent] = TypeAdapter(OutcomeEvent)
_outcomes_entry: TypeAdapter[OutcomesStreamEvent] = TypeAdapter(OutcomesStreamEvent)
_due: TypeAdapter[NudgeDue] = TypeAdapter(NudgeDue)

T = TypeVar("T")


class EventRejected(ValueError):
    """A message that is not a valid event; `reason` is safe to log and to publish.

    The reason is cut to `REASON_LIMIT` characters and holds no control character, whoever
    wrote it (see schemas/_reasons.py).
    """

    def __init__(self, reason: str) -> None:
        self.reason = safe_reason(reason)
        super().__init__(self.reason)


def _parse(adapter: TypeAdapter[T], raw: bytes | str) -> T:
    size = len(raw.encode()) if isinstance(raw, str) else len(raw)
    if size > MAX_EVENT_BYTES:
        raise EventRejected(f"event is {size} bytes; the limit is {MAX_EVENT_BYTES}")
    try:
        # The adapter's compiled validator itself: `TypeAdapter.validate_json` only passes its
        # keyword defaults on to it (~3k instructions an event; issue 20).
        parsed: T = adapter.validator.validate_json(raw)
    except ValidationError as exc:
        raise EventRejected(describe(exc)) from None
    return parsed


def parse_preference(raw: bytes | str) -> PreferenceEvent:
    return _parse(_preference, raw)


def parse_due(raw: bytes | str) -> NudgeDue:
    return _parse(_due, raw)


def parse_outcome(raw: bytes | str) -> OutcomeEvent:
    """A nudge's outcome (sent, suppressed, failed); a service notice is rejected."""
    return _parse(_outcome, raw)


def parse_outcomes_entry(raw: bytes | str) -> OutcomesStreamEvent:
    """Any event of the outcomes stream: a nudge's outcome, a relay's report or a notice."""
    return _parse(_outcomes_entry, raw)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every stream's payload, keyed by file stem, for other languages."""
    from couples_nudge_schemas.cloudevents import cloud_event_schema  # builds on this module

    return {
        "preference-event": _preference.json_schema(),
        "preference-cloudevent": cloud_event_schema(),
        "nudge-due": _due.json_schema(),
        "outcome-event": _outcomes_entry.json_schema(),
    }
