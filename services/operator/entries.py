"""The plain-field entries of the streams operators read: `rejected` and `dead`.

These streams do not carry an event in `__data__` JSON like the others: each entry is a set of
flat fields, readable with `redis-cli XRANGE`. The models document that layout in the AsyncAPI
description (services/*/app.py); the writers are services/common/streams.reject and
services/common/dead_letters.bury.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DeadLetterEntry", "RejectedEntry"]


class RejectedEntry(BaseModel):
    """An entry of `nudges:rejected`: a refused message and why (flat stream fields)."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(description="The stream the bad message was read from.")
    entry_id: str = Field(description="Its entry id there.")
    service: str = Field(description="Which service refused it: scheduler or notifier.")
    reason: str = Field(
        description="`location: message` per problem; at most 300 printable characters, never "
        "the input."
    )
    raw: str = Field(description="The message as received, cut at 8 KiB.")
    truncated: str = Field(description='"1" when raw was cut, else "0".')
    couple_id: str | None = Field(default=None, description="When the message names one.")
    at: str = Field(description="When it was refused, ISO 8601 UTC.")


class DeadLetterEntry(BaseModel):
    """An entry of `nudges:dead`: a message that exhausted its retries (flat stream fields)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    source: str = Field(description="The stream to replay it onto.")
    entry_id: str = Field(description="Its entry id there.")
    reason: str = Field(description="Why it was given up.")
    attempts: int = Field(description="Attempts or deliveries made.")
    couple_id: str = Field(default="", description="When known; lets erasure find it.")
    at: str = Field(description="When it was given up, ISO 8601 UTC.")
    data: str = Field(alias="__data__", description="The original event JSON, for replay.")
