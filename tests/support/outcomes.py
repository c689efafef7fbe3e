"""Outcome events (nudge.sent / suppressed / failed) built for tests: one builder of each.

Each is a valid event of couple "c1" scheduled at SCHEDULED, its occurrence as the kind's code
gives it; a test passes only what it varies (a kind, a channel, how late, another couple).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from couples_nudge_schemas import (
    Channel,
    NudgeFailed,
    NudgeFailedData,
    NudgeKind,
    NudgeSent,
    NudgeSentData,
    NudgeSuppressed,
    NudgeSuppressedData,
    SuppressionReason,
)

__all__ = ["SCHEDULED", "failed", "sent", "suppressed"]

SCHEDULED = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def sent(
    kind: NudgeKind = "date_night",
    channel: Channel = "email",
    late: timedelta = timedelta(seconds=90),
    *,
    couple_id: str = "c1",
    occurrence_id: str = "c1/d/both@1",
    content_id: str = "dn-1",
) -> NudgeSent:
    """A nudge sent to maya, `late` after its instant."""
    return NudgeSent(
        type="nudge.sent.v1",
        event_id=uuid.uuid4(),
        occurred_at=SCHEDULED + late,
        producer="tests",
        data=NudgeSentData(
            occurrence_id=occurrence_id,
            couple_id=couple_id,
            scheduled_at=SCHEDULED,
            partner_id="maya",
            content_id=content_id,
            kind=kind,
            channel=channel,
        ),
    )


def suppressed(
    reason: SuppressionReason = "paused",
    kind: NudgeKind = "check_in",
    late: timedelta = timedelta(0),
    *,
    couple_id: str = "c1",
    occurrence_id: str = "c1/c/both@1",
    partner_id: str | None = None,
) -> NudgeSuppressed:
    """A nudge not sent, for `reason`."""
    return NudgeSuppressed(
        type="nudge.suppressed.v1",
        event_id=uuid.uuid4(),
        occurred_at=SCHEDULED + late,
        producer="tests",
        data=NudgeSuppressedData(
            occurrence_id=occurrence_id,
            couple_id=couple_id,
            scheduled_at=SCHEDULED,
            partner_id=partner_id,
            kind=kind,
            reason=reason,
        ),
    )


def failed(permanent: bool) -> NudgeFailed:
    """An appreciation push to maya that failed (for good, or for now)."""
    return NudgeFailed(
        type="nudge.failed.v1",
        event_id=uuid.uuid4(),
        occurred_at=SCHEDULED,
        producer="tests",
        data=NudgeFailedData(
            occurrence_id="c1/a/maya@1",
            couple_id="c1",
            kind="appreciation",
            scheduled_at=SCHEDULED,
            partner_id="maya",
            channel="push",
            error="PermanentSendError 410",
            permanent=permanent,
        ),
    )
