"""NudgeDue: the scheduler's announcement that one occurrence of a schedule has come due.

It carries ids only, never names or addresses: the notifier reads the couple's current profile
when it sends, so a stream entry holds no personal data and erasure needs no stream surgery.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import Field, StringConstraints

from couples_nudge_schemas._base import Envelope, Instant, SafeId, StrictModel, Unique
from couples_nudge_schemas.preferences import MAX_REVISION, NudgeKind

__all__ = ["NudgeDue", "NudgeDueData", "OccurrenceId"]

OccurrenceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/@-]{1,200}$")]
_NOTE = r"^[A-Za-z0-9_ .:-]*$"
_EARLIEST: Final = datetime(1, 1, 2, tzinfo=UTC)
_LATEST: Final = datetime(9999, 12, 30, tzinfo=UTC)


def _unbounded(schema: dict[str, Any]) -> None:
    """pydantic writes a datetime's bounds as "ge"/"le", which JSON Schema does not know
    (its format "date-time" has no range): the description says them instead."""
    schema.pop("ge", None)
    schema.pop("le", None)


class NudgeDueData(StrictModel):
    occurrence_id: OccurrenceId = Field(
        description="Deterministic: schedule id + scheduled instant. The notifier's dedup key."
    )
    couple_id: SafeId
    schedule_id: Annotated[
        str, StringConstraints(min_length=1, max_length=160, pattern=r"^[A-Za-z0-9_.:/@-]+$")
    ]
    kind: NudgeKind
    recipients: Annotated[
        list[SafeId], Field(min_length=1, max_length=2), Unique("recipients must not repeat")
    ]
    turn: SafeId | None = Field(default=None, description="Whose turn it is to plan (date night).")
    sequence: Annotated[int, Field(ge=0, description="How many times this schedule fired before.")]
    # Read in the partners' zones (a day, a greeting, a date): an instant within a day of the
    # calendar's ends has no date in some of them. Bounds pydantic-core checks itself (a
    # model validator was a Python call a NudgeDue: +6.5k instructions a message).
    scheduled_at: Annotated[
        Instant,
        Field(
            ge=_EARLIEST,
            le=_LATEST,
            description="From 0001-01-02 to 9999-12-30 (UTC).",
            json_schema_extra=_unbounded,
        ),
    ]
    revision: Annotated[int, Field(ge=0, le=MAX_REVISION)]
    note: Annotated[str, StringConstraints(max_length=40, pattern=_NOTE)] | None = Field(
        default=None, description="Why the instant moved: dst_gap, quiet_hours_deferred, late."
    )


class NudgeDue(Envelope):
    type: Literal["nudge.due.v1"]
    data: NudgeDueData
