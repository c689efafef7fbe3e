"""Email over SMTP (aiosmtplib): STARTTLS or implicit TLS, auth, reused connections, timeouts."""

from __future__ import annotations

import asyncio
import ssl
from typing import Literal

import aiosmtplib
from pydantic import SecretStr

from services.notifier.channels.base import Outgoing
from services.notifier.errors import PermanentSendError, TransientSendError

__all__ = ["SmtpChannel"]


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
    ) -> None:
        self._host, self._port, self._security = host, port, security
        self._username, self._password = username, password
        self._timeout = timeout
        self._tls_context = tls_context
        self._idle: asyncio.Queue[aiosmtplib.SMTP] = asyncio.Queue()
        self._slots = asyncio.Semaphore(concurrency)

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            timeout=self._timeout,
            use_tls=self._security == "tls",
            start_tls=self._security == "starttls",
            tls_context=self._tls_context,
        )
        await client.connect()
        if self._username and self._password is not None:
            await client.login(self._username, self._password.get_secret_value())
        return client

    async def _checkout(self) -> aiosmtplib.SMTP:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            if client.is_connected:
                return client
        return await self._connect()

    async def send(self, message: Outgoing) -> None:
        assert message.email is not None
        async with self._slots:
            client: aiosmtplib.SMTP | None = None
            try:
                client = await self._checkout()
                await client.send_message(message.email)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                if client is not None:
                    client.close()  # state after an error is unknown: never reuse it
                    client = None
                raise _classify(exc) from None
            finally:
                if client is not None:
                    self._idle.put_nowait(client)

    async def close(self) -> None:
        while not self._idle.empty():
            client = self._idle.get_nowait()
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                client.close()


def _classify(exc: BaseException) -> TransientSendError | PermanentSendError:
    """SMTP 5xx about the recipient is permanent; everything else may work later."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = sorted({r.code for r in exc.recipients})
        permanent = bool(codes) and all(c >= 500 for c in codes)
        detail = f"recipient refused {codes}"
        if permanent:
            return PermanentSendError("email", detail, gone=True)
    elif isinstance(exc, aiosmtplib.SMTPResponseException):
        permanent = exc.code >= 500
        detail = f"SMTP {exc.code}"
    else:
        permanent = False
        detail = type(exc).__name__
    return (PermanentSendError if permanent else TransientSendError)("email", detail)
