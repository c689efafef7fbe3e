"""Engagement: what a partner answered to a nudge, and how the rhythm followed.

On the preferences stream (the notifier's action links publish them; apps may too; the
scheduler applies them to the couple's state):

    preferences.snoozed.v1  one partner snoozes one nudge kind until an instant (an `until`
                            not after `occurred_at` ends a snooze); kept across later
                            preferences.set revisions, ends by itself
    nudge.feedback.v1       a partner's answer to one occurrence ("done", "skip", "more"), or
                            the notifier's note that they ignored several nudges of a kind in
                            a row ("ignored"): the scheduler moves the date-night turn and,
                            when the couple opted in to the listening cadence, the rhythm

On the outcomes stream (facts for your apps; ids only):

    nudge.engaged.v1        a partner followed an action link of a nudge (once per
                            occurrence, partner and action, however often the link is followed)
    cadence.adjusted.v1     the listening cadence lowered or raised a partner's rhythm of a kind
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from couples_nudge_schemas._base import Envelope, Instant, SafeId, StrictModel
from couples_nudge_schemas.nudges import OccurrenceId
from couples_nudge_schemas.preferences import NudgeKind

__all__ = [
    "CadenceAdjusted",
    "CadenceAdjustedData",
    "EngagementAction",
    "FeedbackSignal",
    "NudgeEngaged",
    "NudgeEngagedData",
    "NudgeFeedback",
    "NudgeFeedbackData",
    "PreferencesSnoozed",
    "PreferencesSnoozedData",
]

# What a partner can answer with one tap: "done" (we did it), "skip" (not this week),
# "snooze" (this kind for two weeks), "more" (more of these); and, from the manage page,
# "snooze" for a week or a month, "stop" and "start" (again) a kind.
EngagementAction = Literal["done", "skip", "snooze", "more", "stop", "start"]
FeedbackSignal = Literal["done", "skip", "more", "ignored"]


class PreferencesSnoozedData(StrictModel):
    couple_id: SafeId
    partner_id: SafeId
    kind: NudgeKind
    until: Instant = Field(
        description="The partner's nudges of this kind are suppressed 'snoozed' until then; "
        "an instant not after occurred_at ends a snooze."
    )


class PreferencesSnoozed(Envelope):
    type: Literal["preferences.snoozed.v1"]
    data: PreferencesSnoozedData


class NudgeFeedbackData(StrictModel):
    couple_id: SafeId
    partner_id: SafeId
    kind: NudgeKind
    occurrence_id: OccurrenceId
    sequence: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="The occurrence's NudgeDue.sequence (whose turn it was)."
    )
    signal: FeedbackSignal = Field(
        description="done / skip / more: the partner's answer; ignored: the notifier saw "
        "NUDGE_LISTEN_AFTER nudges of this kind in a row go unanswered."
    )


class NudgeFeedback(Envelope):
    type: Literal["nudge.feedback.v1"]
    data: NudgeFeedbackData


class NudgeEngagedData(StrictModel):
    occurrence_id: OccurrenceId
    couple_id: SafeId
    partner_id: SafeId
    kind: NudgeKind
    action: EngagementAction
    until: Instant | None = Field(default=None, description="A snooze: until when.")
    engaged_at: Instant = Field(description="When the partner first took this action.")


class NudgeEngaged(Envelope):
    type: Literal["nudge.engaged.v1"]
    data: NudgeEngagedData


class CadenceAdjustedData(StrictModel):
    couple_id: SafeId
    partner_id: SafeId
    kind: NudgeKind
    direction: Literal["lowered", "raised"]
    level: Annotated[int, Field(ge=0, description="Steps below the chosen rhythm; 0: as chosen.")]
    previous_level: Annotated[int, Field(ge=0)]
    kept: Annotated[int, Field(ge=1)] = Field(description="Of every `out_of` nudges ...")
    out_of: Annotated[int, Field(ge=1)] = Field(description="... this many are sent.")
    cause: FeedbackSignal
    occurrence_id: OccurrenceId


class CadenceAdjusted(Envelope):
    type: Literal["cadence.adjusted.v1"]
    data: CadenceAdjustedData
