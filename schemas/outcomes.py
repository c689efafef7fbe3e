"""Outcome events: what happened to every (occurrence, partner, channel) the notifier handled,
and the one service notice that shares their stream: the service's state was lost."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from couples_nudge_schemas._base import Envelope, Instant, Producer, SafeId, StrictModel
from couples_nudge_schemas.nudges import OccurrenceId
from couples_nudge_schemas.preferences import Channel, NudgeKind

__all__ = [
    "DeviceRef",
    "NudgeFailed",
    "NudgeFailedData",
    "NudgeSent",
    "NudgeSentData",
    "NudgeSuppressed",
    "NudgeSuppressedData",
    "ServiceStateLost",
    "ServiceStateLostData",
    "SuppressionReason",
]

# Which of a partner's devices an outcome is about: the first 16 hex digits of the SHA-256 of
# its token (a publisher computes the same to find the device), never the token itself.
DeviceRef = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]

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
    "state_lost",
    "snoozed",
    "cadence_lowered",
]


class _OutcomeData(StrictModel):
    occurrence_id: OccurrenceId
    couple_id: SafeId
    kind: NudgeKind
    scheduled_at: Instant


class NudgeSentData(_OutcomeData):
    partner_id: SafeId
    channel: Channel
    device: DeviceRef | None = Field(
        default=None, description="Channel 'mobile': the device (a hash of its token)."
    )
    content_id: Annotated[str, StringConstraints(max_length=64)]
    attempt: Annotated[int, Field(ge=1)] = 1
    note: Annotated[str, StringConstraints(max_length=40)] | None = None


class NudgeSent(Envelope):
    type: Literal["nudge.sent.v1"]
    data: NudgeSentData


class NudgeSuppressedData(_OutcomeData):
    partner_id: SafeId | None = None
    channel: Channel | None = None
    device: DeviceRef | None = Field(
        default=None, description="Channel 'mobile': the device (a hash of its token)."
    )
    reason: SuppressionReason


class NudgeSuppressed(Envelope):
    type: Literal["nudge.suppressed.v1"]
    data: NudgeSuppressedData


class NudgeFailedData(_OutcomeData):
    partner_id: SafeId
    channel: Channel
    device: DeviceRef | None = Field(
        default=None, description="Channel 'mobile': the device (a hash of its token)."
    )
    error: Annotated[str, StringConstraints(max_length=200)] = Field(
        description="Error class and code only; never addresses or message text."
    )
    permanent: bool
    attempt: Annotated[int, Field(ge=1)] = 1


class NudgeFailed(Envelope):
    type: Literal["nudge.failed.v1"]
    data: NudgeFailedData


class ServiceStateLostData(StrictModel):
    detected_at: Instant = Field(
        description="When a service found its Redis state gone (wall-clock time)."
    )
    detected_by: Producer = Field(description="The service process that noticed it first.")
    lost_epoch_began_at: Instant | None = Field(
        default=None,
        description="When the state that was lost began to be written, if known: everything "
        "published since then (preferences, pauses, unsubscribes, erasures) is gone.",
    )


class ServiceStateLost(Envelope):
    """Redis came back without the services' state: republish your couples' preferences.

    Published once per loss, on the outcomes stream; `event_id` is derived from the lost
    state's identity, so a copy seen twice is the same notice.
    """

    type: Literal["service.state_lost.v1"]
    data: ServiceStateLostData
