"""Deliverability reports: what an email relay said later about a message it had accepted.

On the preferences stream (the notifier's webhook endpoints publish them; the scheduler applies
them to the couple's state, like an unsubscribe):

    channel.bounced.v1     the relay could not deliver: "hard" marks the partner's channel dead;
                           "soft" is counted, and enough of them in a window mark it dead
    channel.complained.v1  the partner reported a nudge as spam: an unsubscribe of every nudge
                           on that channel, cleared only by preferences.resubscribed.v1

On the outcomes stream (facts for your apps and operators; the same data):

    nudge.bounced.v1, nudge.complained.v1

`occurrence_id` names the nudge the report is about when the relay gave the Message-ID back
(services/notifier/message_ids.py); the recipient's address is never part of an event.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from couples_nudge_schemas._base import Envelope, SafeId, StrictModel
from couples_nudge_schemas.nudges import OccurrenceId
from couples_nudge_schemas.preferences import Channel

__all__ = [
    "BounceKind",
    "ChannelBounced",
    "ChannelBouncedData",
    "ChannelComplained",
    "ChannelComplainedData",
    "NudgeBounced",
    "NudgeBouncedData",
    "NudgeComplained",
    "NudgeComplainedData",
    "ReportSource",
]

ReportSource = Literal["ses", "sendgrid", "postmark", "mailgun", "dsn"]
BounceKind = Literal["hard", "soft"]
# An RFC 3463 enhanced status code (class.subject.detail), e.g. 5.1.1: never the diagnostic text.
StatusCode = Annotated[str, StringConstraints(pattern=r"^[245]\.[0-9]{1,3}\.[0-9]{1,3}$")]


class _ReportData(StrictModel):
    couple_id: SafeId
    partner_id: SafeId
    channel: Channel = "email"
    occurrence_id: OccurrenceId | None = Field(
        default=None, description="The nudge the report is about, when the relay named it."
    )
    source: ReportSource = Field(description="Which relay (or a mailed DSN) reported it.")


class ChannelBouncedData(_ReportData):
    bounce: BounceKind = Field(
        description="hard: the address is gone; soft: it may work later (mailbox full, ...)."
    )
    status: StatusCode | None = Field(default=None, description="Enhanced status code, if any.")


class ChannelComplainedData(_ReportData):
    pass


class ChannelBounced(Envelope):
    type: Literal["channel.bounced.v1"]
    data: ChannelBouncedData


class ChannelComplained(Envelope):
    type: Literal["channel.complained.v1"]
    data: ChannelComplainedData


class NudgeBouncedData(ChannelBouncedData):
    pass


class NudgeComplainedData(ChannelComplainedData):
    pass


class NudgeBounced(Envelope):
    type: Literal["nudge.bounced.v1"]
    data: NudgeBouncedData


class NudgeComplained(Envelope):
    type: Literal["nudge.complained.v1"]
    data: NudgeComplainedData
