"""The events a partner's answer becomes. Pure: every byte follows from the answer and when it
was first given, so an answer published again is the same events (same ids, same times).

    done    nudge.feedback.v1 "done"  (the turn passes; the listening cadence goes up a step)
    skip    nudge.feedback.v1 "skip"  (a date night's turn stays with the same partner)
    more    nudge.feedback.v1 "more"  (the listening cadence goes up a step)
    snooze  preferences.snoozed.v1 until first + SNOOZE (two weeks)

Each also becomes nudge.engaged.v1 on the outcomes stream, with ids only. The manage page's
choices (manage_choice) are deliberate changes, not answers to one nudge: fresh ids each time.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Final, Literal

from couples_nudge.common.clock import from_ms
from couples_nudge.notifier.actions import ActionClaim
from couples_nudge_schemas import (
    EngagementAction,
    NudgeEngaged,
    NudgeEngagedData,
    NudgeFeedback,
    NudgeFeedbackData,
    NudgeKind,
    PreferencesResubscribed,
    PreferencesResubscribedData,
    PreferencesSnoozed,
    PreferencesSnoozedData,
    PreferencesUnsubscribed,
    PreferencesUnsubscribedData,
)

__all__ = [
    "SNOOZE",
    "ManageChoice",
    "PreferenceOut",
    "answer_events",
    "ignored_feedback",
    "manage_events",
]

PRODUCER: Final = "nudge-notifier"
SNOOZE: Final = timedelta(days=14)
_NS: Final = uuid.UUID("7c1e2f4a-9d3b-4c5e-8f6a-1b2c3d4e5f60")
ManageChoice = Literal["week", "month", "stop", "start"]
MANAGE_SNOOZE: Final = {"week": timedelta(days=7), "month": timedelta(days=30)}
PreferenceOut = (
    PreferencesSnoozed | NudgeFeedback | PreferencesUnsubscribed | PreferencesResubscribed
)


def _id(*parts: str) -> uuid.UUID:
    return uuid.uuid5(_NS, "|".join(parts))


def answer_events(claim: ActionClaim, first_ms: int) -> tuple[list[PreferenceOut], NudgeEngaged]:
    """What a one-tap answer publishes: on the preferences stream, and the outcome."""
    assert claim.action != "manage"
    at = from_ms(first_ms)
    about = (claim.occurrence_id, claim.partner_id, claim.action)
    until = None
    prefs: list[PreferenceOut] = []
    if claim.action == "snooze":
        until = at + SNOOZE
        prefs.append(_snoozed(claim.couple_id, claim.partner_id, claim.kind, at, until, about))
    else:
        prefs.append(
            NudgeFeedback(
                type="nudge.feedback.v1",
                event_id=_id(*about, "feedback"),
                occurred_at=at,
                producer=PRODUCER,
                data=NudgeFeedbackData(
                    couple_id=claim.couple_id,
                    partner_id=claim.partner_id,
                    kind=claim.kind,
                    occurrence_id=claim.occurrence_id,
                    sequence=claim.sequence,
                    signal=claim.action,
                ),
            )
        )
    return prefs, _engaged(claim, claim.action, claim.kind, at, until, _id(*about, "engaged"))


def manage_events(
    claim: ActionClaim, kind: NudgeKind, choice: ManageChoice, now: datetime, nonce: str
) -> tuple[list[PreferenceOut], NudgeEngaged]:
    """What a choice on the manage page publishes (`nonce`: fresh per request)."""
    about = (claim.couple_id, claim.partner_id, kind, choice, nonce)
    prefs: list[PreferenceOut] = []
    action: EngagementAction
    until = None
    if choice in MANAGE_SNOOZE:
        until = now + MANAGE_SNOOZE[choice]
        prefs.append(_snoozed(claim.couple_id, claim.partner_id, kind, now, until, about))
        action = "snooze"
    elif choice == "stop":
        prefs.append(
            PreferencesUnsubscribed(
                type="preferences.unsubscribed.v1",
                event_id=_id(*about),
                occurred_at=now,
                producer=PRODUCER,
                data=PreferencesUnsubscribedData(
                    couple_id=claim.couple_id, partner_id=claim.partner_id, kind=kind
                ),
            )
        )
        action = "stop"
    else:  # start again: end a snooze, clear an unsubscribe of this kind
        prefs.append(_snoozed(claim.couple_id, claim.partner_id, kind, now, now, about))
        prefs.append(
            PreferencesResubscribed(
                type="preferences.resubscribed.v1",
                event_id=_id(*about, "resubscribed"),
                occurred_at=now,
                producer=PRODUCER,
                data=PreferencesResubscribedData(
                    couple_id=claim.couple_id,
                    partner_id=claim.partner_id,
                    kind=kind,
                    consented_at=now,
                    method="web_form",
                ),
            )
        )
        action = "start"
    return prefs, _engaged(claim, action, kind, now, until, _id(*about, "engaged"))


def ignored_feedback(
    couple_id: str, partner_id: str, kind: NudgeKind, occurrence_id: str, scheduled_at: datetime
) -> NudgeFeedback:
    """The notifier's note that a partner left a streak of nudges unanswered (engagement.py);
    its id and time follow from the nudge that completed the streak."""
    return NudgeFeedback(
        type="nudge.feedback.v1",
        event_id=_id(occurrence_id, partner_id, "ignored"),
        occurred_at=scheduled_at,
        producer=PRODUCER,
        data=NudgeFeedbackData(
            couple_id=couple_id,
            partner_id=partner_id,
            kind=kind,
            occurrence_id=occurrence_id,
            signal="ignored",
        ),
    )


def _snoozed(
    couple_id: str,
    partner_id: str,
    kind: NudgeKind,
    at: datetime,
    until: datetime,
    about: tuple[str, ...],
) -> PreferencesSnoozed:
    return PreferencesSnoozed(
        type="preferences.snoozed.v1",
        event_id=_id(*about, "snoozed"),
        occurred_at=at,
        producer=PRODUCER,
        data=PreferencesSnoozedData(
            couple_id=couple_id, partner_id=partner_id, kind=kind, until=until
        ),
    )


def _engaged(
    claim: ActionClaim,
    action: EngagementAction,
    kind: NudgeKind,
    at: datetime,
    until: datetime | None,
    event_id: uuid.UUID,
) -> NudgeEngaged:
    return NudgeEngaged(
        type="nudge.engaged.v1",
        event_id=event_id,
        occurred_at=at,
        producer=PRODUCER,
        data=NudgeEngagedData(
            occurrence_id=claim.occurrence_id,
            couple_id=claim.couple_id,
            partner_id=claim.partner_id,
            kind=kind,
            action=action,
            until=until,
            engaged_at=at,
        ),
    )
