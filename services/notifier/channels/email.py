"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, auth, reused connections, timeouts.

Messages are flattened by `wire_bytes`, not by aiosmtplib's send_message: its 78-character
folding turns a long List-Unsubscribe URL into RFC 2047 encoded words, which mail clients do
not read as a URL (and then offer no one-click unsubscribe).

Every way out of `send` either returns its connection to the pool (after a 250) or closes
it: an error leaves the SMTP session in an unknown state, so it is never reused. A pooled
connection the server closed while it was idle is replaced and the send made at once on a
fresh one, but only while the message has not been handed over: once DATA has begun, a lost
connection may have left the message with the server (it kept it and hung up before its 250),
so that is a transient failure like any other, retried later, counted and logged. (Before, it
was taken for an idle close too and sent again at once: two copies of one send, silently.)
Errors are classified once (`_classify`): SMTP 5xx is permanent (for the recipient: the
address is gone), 4xx and network errors and timeouts are transient, and anything else
(aiosmtplib raises ValueError for a control character in an address, for example) is
permanent: retrying an error nobody foresaw only repeats it. A recipient with a control
character is refused before any connection is taken (the address is gone: it can never work).
"""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import re
import ssl
from email.message import EmailMessage
from typing import Any, Final, Literal

import aiosmtplib
from pydantic import SecretStr

from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.dkim import DkimSigner
from couples_nudge.notifier.errors import (
    PermanentSendError,
    TransientSendError,
    classified,
    unexpected,
)

__all__ = ["SmtpChannel", "wire_bytes"]

# RFC 5322: lines SHOULD be <= 78 and MUST be <= 998 characters; bodies are already encoded
# (quoted-printable or base64) when rendered, so this only lets long header values stay on one line.
_MAX_LINE: Final = 998
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")


def wire_bytes(message: EmailMessage, *, utf8: bool = False) -> bytes:
    """The message as it goes over SMTP (CRLF line ends; SMTPUTF8 headers when `utf8`)."""
    policy = email.policy.SMTPUTF8 if utf8 else email.policy.SMTP
    return message.as_bytes(policy=policy.clone(max_line_length=_MAX_LINE))


class _Client(aiosmtplib.SMTP):
    """aiosmtplib's client, telling whether the message itself has gone out (DATA begun) in
    its current transaction: see the module docstring."""

    data_begun = False

    async def data(self, *args: Any, **kwargs: Any) -> aiosmtplib.SMTPResponse:
        self.data_begun = True
        return await super().data(*args, **kwargs)


class SmtpChannel:
    """A small pool of open SMTP connections; at most `concurrency` sends at once."""

    name: Literal["email"] = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Literal["none", "starttls", "tls"] = "none",
        username: str | None = None,
        password: SecretStr | None = None,
        timeout: float = 10.0,
        concurrency: int = 4,
        tls_context: ssl.SSLContext | None = None,
        dkim: DkimSigner | None = None,
    ) -> None:
        self._host, self._port, self._security = host, port, security
        self._dkim = dkim  # signs every message when set (channels/dkim.py)
        self._username, self._password = username, password
        self._timeout = timeout
        self._tls_context = tls_context
        self._idle: asyncio.Queue[_Client] = asyncio.Queue()
        self._slots = asyncio.Semaphore(concurrency)

    async def _connect(self) -> _Client:
        client = _Client(
            hostname=self._host,
            port=self._port,
            timeout=self._timeout,
            use_tls=self._security == "tls",
            start_tls=self._security == "starttls",
            tls_context=self._tls_context,
        )
        try:
            await client.connect()
            if self._username and self._password is not None:
                await client.login(self._username, self._password.get_secret_value())
        except BaseException:
            _discard(client)  # a failed STARTTLS or a refused login must not leak the socket
            raise
        return client

    def _pooled(self) -> _Client | None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
            _discard(client)
        return None

    async def send(self, message: Outgoing) -> None:
        """Deliver, or raise TransientSendError / PermanentSendError (nothing else)."""
        await classified("email", self._send(message))

    async def _send(self, message: Outgoing) -> None:
        if not isinstance(message.address, str) or (message.email is None and message.mime is None):
            raise PermanentSendError("email", "no message or no address")
        recipient = message.address
        if _CONTROL.search(recipient):  # aiosmtplib would raise ValueError (or send it as is)
            raise PermanentSendError("email", "address has a control character", gone=True)
        if message.mime is not None:
            sender, raw = message.sender, message.mime
            utf8 = not (sender + recipient).isascii()
        else:
            assert message.email is not None
            sender = email.utils.parseaddr(str(message.email["From"]))[1]
            utf8 = not (sender + recipient).isascii()
            raw = wire_bytes(message.email, utf8=utf8)
        if self._dkim is not None:
            raw = await self._dkim.signed(raw)
        async with self._slots:
            client = self._pooled()
            if client is not None:  # a pooled connection the server may have closed meanwhile
                try:
                    await self._sendmail(client, sender, recipient, raw, utf8)
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as exc:
                    _discard(client)  # closed while idle: try once on a fresh connection,
                    if client.data_begun:  # unless the server may have the message already
                        raise _classify(exc) from None
                except BaseException as exc:
                    _discard(client)  # state after an error is unknown: never reuse it
                    if not isinstance(exc, Exception):  # cancelled: closed, not classified
                        raise
                    raise _classify(exc) from None
                except asyncio.CancelledError:
                    _discard(client)  # cut off at shutdown: hang up, the server keeps nothing
                    raise
                else:
                    self._idle.put_nowait(client)
                    return
            client = None
            try:
                client = await self._connect()
                await self._sendmail(client, sender, recipient, raw, utf8)
            except BaseException as exc:  # cancelled too: the connection is closed, not leaked
                if client is not None:
                    _discard(client)
                if not isinstance(exc, Exception):
                    raise
                raise _classify(exc) from None
            except asyncio.CancelledError:
                if client is not None:
                    _discard(client)
                raise
            self._idle.put_nowait(client)

    @staticmethod
    async def _sendmail(
        client: _Client, sender: str, recipient: str, raw: bytes, utf8: bool
    ) -> None:
        client.data_begun = False  # a new transaction
        await client.sendmail(sender, [recipient], raw, mail_options=["SMTPUTF8"] if utf8 else [])

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            transport = client.transport  # quit() forgets it
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                pass
            finally:
                _discard(client, transport)


def _discard(client: aiosmtplib.SMTP, transport: asyncio.BaseTransport | None = None) -> None:
    """Close now: abort() also drops a TLS connection at once instead of after a shutdown
    handshake that would outlive the event loop (and leak the socket)."""
    transport = transport or client.transport
    client.close()
    if isinstance(transport, asyncio.Transport):
        transport.abort()


def _classify(exc: Exception) -> TransientSendError | PermanentSendError:
    """SMTP 5xx is permanent (about the recipient: the address is gone); SMTP 4xx, network
    errors and timeouts may work later; anything else is permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = sorted({r.code for r in exc.recipients})
        detail = f"recipient refused {codes}"
        if codes and all(c >= 500 for c in codes):
            return PermanentSendError("email", detail, gone=True)
        return TransientSendError("email", detail)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        detail = f"SMTP {exc.code}"
        if exc.code >= 500:
            return PermanentSendError("email", detail)
        return TransientSendError("email", detail)
    if isinstance(exc, OSError | TimeoutError):  # aiosmtplib's disconnects and timeouts too
        return TransientSendError("email", type(exc).__name__)
    return unexpected("email", exc)
