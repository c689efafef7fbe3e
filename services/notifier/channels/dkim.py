"""DKIM signing (RFC 6376) of outgoing email, for operators who send from their own MTA.

dkimpy signs the wire bytes with an RSA key (rsa-sha256, relaxed/simple canonicalization)
over the headers a receiver shows and the ones that make the message ours: From, To, Subject,
Date, Message-ID, MIME-Version, Content-Type, List-Unsubscribe, List-Unsubscribe-Post (so a
relay cannot swap the one-click link). Publish the public key as the TXT record
<selector>._domainkey.<domain>: "v=DKIM1; k=rsa; p=<base64 DER public key>".
A signature costs a few milliseconds of CPU (pure-Python RSA), so it runs in a thread.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Final

import dkim

if TYPE_CHECKING:
    from couples_nudge.notifier.settings import NotifierSettings

__all__ = ["DkimSigner"]

SIGNED_HEADERS: Final = (
    b"From", b"To", b"Subject", b"Date", b"Message-ID", b"MIME-Version", b"Content-Type",
    b"List-Unsubscribe", b"List-Unsubscribe-Post",
)  # fmt: skip


class DkimSigner:
    def __init__(self, private_key: bytes, *, selector: str, domain: str) -> None:
        self._key = private_key
        self._selector = selector.encode()
        self._domain = domain.encode()
        self.sign_now(b"From: a@example.org\r\nSubject: check\r\n\r\nkey check\r\n")  # fails early

    @classmethod
    def from_settings(cls, settings: NotifierSettings) -> DkimSigner | None:
        if settings.dkim_key_file is None or settings.dkim_selector is None:
            return None
        assert settings.dkim_domain is not None
        key = Path(settings.dkim_key_file).read_bytes()
        return cls(key, selector=settings.dkim_selector, domain=settings.dkim_domain)

    def sign_now(self, message: bytes) -> bytes:
        """The DKIM-Signature header line (CRLF-terminated) for `message`."""
        try:
            header: bytes = dkim.sign(
                message,
                self._selector,
                self._domain,
                self._key,
                include_headers=list(SIGNED_HEADERS),
            )
        except dkim.DKIMException as exc:
            raise ValueError(f"DKIM signing failed: {type(exc).__name__}") from None
        return header

    async def signed(self, message: bytes) -> bytes:
        """`message` with its DKIM-Signature header first."""
        return await asyncio.to_thread(self.sign_now, message) + message
