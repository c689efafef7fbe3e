"""Outcome events: what happened to every (occurrence, partner, channel) the notifier handled."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from schemas._base import Envelope, Instant, SafeId, StrictModel
from schemas.nudges import OccurrenceId
from schemas.preferences import Channel, NudgeKind

__all__ = [
    "NudgeFailed",
    "NudgeFailedData",
    "NudgeSent",
    "NudgeSentData",
    "NudgeSuppressed",
    "NudgeSuppressedData",
    "SuppressionReason",
]

SuppressionReason = Literal[
    "paused",
    "unsubscribed",
    "erased",
    "no_channel",
    "channel_dead",
    "quiet_hours",
    "cap_reached",
    "missed",
    "stale_revision",
]


class _OutcomeData(StrictModel):
    occurrence_id: OccurrenceId
    couple_id: SafeId
    kind: NudgeKind
    scheduled_at: Instant


class NudgeSentData(_OutcomeData):
    partner_id: SafeId
    channel: Channel
    content_id: Annotated[str, StringConstraints(max_length=64)]
    attempt: Annotated[int, Field(ge=1)] = 1
    note: Annotated[str, StringConstraints(max_length=40)] | None = None


class NudgeSent(Envelope):
    type: Literal["nudge.sent.v1"]
    data: NudgeSentData


class NudgeSuppressedData(_OutcomeData):
    partner_id: SafeId | None = None
    channel: Channel | None = None
    reason: SuppressionReason


class NudgeSuppressed(Envelope):
    type: Literal["nudge.suppressed.v1"]
    data: NudgeSuppressedData


class NudgeFailedData(_OutcomeData):
    partner_id: SafeId
    channel: Channel
    error: Annotated[str, StringConstraints(max_length=200)] = Field(
        description="Error class and code only; never addresses or message text."
    )
    permanent: bool
    attempt: Annotated[int, Field(ge=1)] = 1


class NudgeFailed(Envelope):
    type: Literal["nudge.failed.v1"]
    data: NudgeFailedData
