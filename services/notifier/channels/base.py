"""The one interface every channel implements, and an in-memory recorder beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol

from couples_nudge_schemas import Channel as ChannelName

__all__ = ["Channel", "Outgoing", "RecordingChannel"]


@dataclass(slots=True)
class Outgoing:
    """One rendered nudge for one partner on one channel.

    The ids let a channel tell its far end which nudge this is (the webhook sends them);
    none of them is personal data.

    Never changed once made, though not frozen: the delivery makes one per message, and a
    frozen dataclass's `__init__` sets each of its ten fields through `object.__setattr__`
    (~20k instructions a message, callgrind_notifier). A channel reads it, never writes it.
    """

    channel: ChannelName
    idempotency_key: str
    email: EmailMessage | None = None  # channel "email", as a message object, or:
    mime: bytes | None = None  # channel "email" as wire bytes (what delivery sends: faster)
    sender: str = ""  # envelope sender address for `mime`
    push: dict[str, Any] | None = None  # "push", "webhook", "mobile": title, body, url, kind
    address: Any = None  # email address, push subscription or app device; never logged
    couple_id: str = ""
    partner_id: str = ""
    occurrence_id: str = ""


class Channel(Protocol):
    @property
    def name(self) -> ChannelName: ...

    async def send(self, message: Outgoing) -> None:
        """Deliver or raise TransientSendError / PermanentSendError."""
        ...

    async def close(self) -> None: ...


@dataclass
class RecordingChannel:
    """Keeps what it was asked to send; for tests and benchmarks that need no real far end."""

    name: ChannelName = "email"
    sent: list[Outgoing] = field(default_factory=list)

    async def send(self, message: Outgoing) -> None:
        self.sent.append(message)

    async def close(self) -> None:
        return None
