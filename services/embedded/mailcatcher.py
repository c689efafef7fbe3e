"""An SMTP server (aiosmtpd) that keeps every message it receives as an .eml file.

Used by the demo (./outbox/) and by the tests as the real far end of the email channel.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import itertools
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.embedded.valkey import free_port

__all__ = ["MailCatcher"]


class _Keep:
    def __init__(self, outbox: Path | None) -> None:
        self.outbox = outbox
        self.messages: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            n = next(self._counter)
            self.messages.append(message)
            self.recipients.append([str(r) for r in envelope.rcpt_tos])
        if self.outbox is not None:
            (self.outbox / f"{n:05d}.eml").write_bytes(raw)
        return "250 Message accepted for delivery"


class MailCatcher:
    """Listens on a free loopback port; `messages` holds what arrived, in order."""

    def __init__(self, outbox: Path | None = None, **smtp_kwargs: Any) -> None:
        if outbox is not None:
            outbox.mkdir(parents=True, exist_ok=True)
        self._handler = _Keep(outbox)
        self.port = free_port()
        # Our own loop, closed on stop: aiosmtpd leaves the one it makes open (a leaked socket).
        self._loop = asyncio.new_event_loop()
        self._controller = Controller(
            self._handler, hostname="127.0.0.1", port=self.port, loop=self._loop, **smtp_kwargs
        )

    @property
    def messages(self) -> list[EmailMessage]:
        return self._handler.messages

    @property
    def recipients(self) -> list[list[str]]:
        return self._handler.recipients

    def start(self) -> Self:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()
        self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
