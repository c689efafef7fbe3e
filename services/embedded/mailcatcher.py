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

from couples_nudge.embedded.valkey import free_port

__all__ = ["MailCatcher"]


class _Keep:
    def __init__(self, outbox: Path | None) -> None:
        self.outbox = outbox
        self.raw: list[bytes] = []  # as received; parsed on demand (see `parsed`)
        self._parsed: list[EmailMessage] = []
        self.recipients: list[list[str]] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self.refusals: list[str] = []  # replies for the next messages, e.g. "451 try later"
        self.unknown: set[str] = set()  # recipients answered "550 no such user" at RCPT
        self.connections = 0  # SMTP connections accepted so far
        self.open = 0  # of which still open
        self.stall_seconds = 0.0  # DATA is answered only after this long (a hung server)
        self.hang_up_every = 0  # every n-th message is kept, then its final reply never sent
        self._kept_since_hang_up = 0

    def connected(self, change: int) -> None:
        with self._lock:
            self.open += change
            self.connections += max(change, 0)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() in self.unknown:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd's hook name)
        if self.stall_seconds:  # a client that hangs up meanwhile cancels this: nothing kept
            await asyncio.sleep(self.stall_seconds)
        with self._lock:
            if self.refusals:
                return self.refusals.pop(0)
        raw = envelope.original_content or b""
        with self._lock:
            n = next(self._counter)
            self.raw.append(raw)
            self.recipients.append([str(r) for r in envelope.rcpt_tos])
        if self.outbox is not None:
            (self.outbox / f"{n:05d}.eml").write_bytes(raw)
        if self._hang_up_now() and server.transport is not None:  # dropped before the 250
            server.transport.close()
            await asyncio.sleep(0.1)  # the reply below goes nowhere
        return "250 Message accepted for delivery"

    def _hang_up_now(self) -> bool:
        with self._lock:
            if not self.hang_up_every:
                return False
            self._kept_since_hang_up += 1
            if self._kept_since_hang_up < self.hang_up_every:
                return False
            self._kept_since_hang_up = 0
            return True

    def parsed(self) -> list[EmailMessage]:
        """Every message so far, parsed once each: receiving stays cheap (a benchmark sink)."""
        with self._lock:
            for raw in self.raw[len(self._parsed) :]:
                message = email.message_from_bytes(raw, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                self._parsed.append(message)
            return list(self._parsed)


class _CountingSMTP(SMTP):
    """aiosmtpd's server session, counting connections as they open and close."""

    def __init__(self, handler: _Keep, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._keep = handler

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._keep.connected(+1)
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        super().connection_lost(error)
        self._keep.connected(-1)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _CountingSMTP(self.handler, **self.SMTP_kwargs)


class MailCatcher:
    """Listens on a free loopback port; `messages` holds what arrived, in order."""

    def __init__(
        self, outbox: Path | None = None, *, port: int | None = None, **smtp_kwargs: Any
    ) -> None:
        if outbox is not None:
            outbox.mkdir(parents=True, exist_ok=True)
        self._handler = _Keep(outbox)
        self.port = port or free_port()
        # Our own loop, closed on stop: aiosmtpd leaves the one it makes open (a leaked socket).
        self._loop = asyncio.new_event_loop()
        self._controller = _Controller(
            self._handler, hostname="127.0.0.1", port=self.port, loop=self._loop, **smtp_kwargs
        )

    @property
    def messages(self) -> list[EmailMessage]:
        return self._handler.parsed()

    @property
    def received(self) -> list[bytes]:
        """Every message as it arrived, byte for byte (a DKIM signature verifies on these)."""
        with self._handler._lock:
            return list(self._handler.raw)

    @property
    def count(self) -> int:
        """How many messages arrived (without parsing them)."""
        return len(self._handler.raw)

    @property
    def open_connections(self) -> int:
        """SMTP connections open right now (the server's side; the controller's own start-up
        probe included while it lasts)."""
        return self._handler.open

    @property
    def connections(self) -> int:
        """SMTP connections accepted since start."""
        return self._handler.connections

    @property
    def recipients(self) -> list[list[str]]:
        return self._handler.recipients

    def refuse_recipient(self, address: str) -> None:
        """Answer RCPT TO for `address` with 550 (a bounce: the address does not exist)."""
        self._handler.unknown.add(address.lower())

    def refuse_next(self, count: int, reply: str = "451 4.3.0 Try again later") -> None:
        """Answer the next `count` messages with `reply` instead of accepting them."""
        with self._handler._lock:
            self._handler.refusals.extend([reply] * count)

    def stall(self, seconds: float) -> None:
        """Answer DATA only after `seconds` (0: at once again); a message whose client hangs
        up meanwhile is not kept, as a real server drops a transaction it never confirmed."""
        self._handler.stall_seconds = seconds

    def hang_up_after_data(self, every: int) -> None:
        """Keep every `every`-th message, then drop its connection before the final reply (0:
        never): the server has the message, the client never hears so."""
        self._handler.hang_up_every = every

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
