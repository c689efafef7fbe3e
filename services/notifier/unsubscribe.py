"""Signed one-click unsubscribe tokens (RFC 8058 links). Pure: no I/O, no clock.

A token names one partner of one couple and a scope (one nudge kind or "all"), and says when
it was issued. It is HMAC-SHA256 signed with one of several keys, so keys can rotate:

    token   = <kid> "." base64url(payload) "." base64url(HMAC-SHA256(secret, <kid> "." <payload64>))
    payload = "v1|<couple id>|<partner id>|<scope>|<issued at, epoch seconds>"

Ids cannot contain "|" (schemas.SafeId), so the payload is unambiguous. The first key signs,
every key verifies: to rotate, put a new key first, and drop the old one once links signed
with it no longer matter. Tokens do not expire (an unsubscribe link in an old email must keep
working); dropping a key is how links are revoked. A token never appears in logs.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Sequence
from typing import Annotated, Final, Literal

from pydantic import Field, SecretStr, ValidationError

from couples_nudge.notifier.signing import Sha256Mac
from couples_nudge_schemas import NudgeKind, StrictModel
from couples_nudge_schemas._base import SafeId

__all__ = [
    "MAX_TOKEN_LENGTH",
    "InvalidToken",
    "Scope",
    "UnsubscribeClaim",
    "UnsubscribeTokens",
    "b64url_decode",
    "b64url_encode",
    "parse_keys",
]

Scope = NudgeKind | Literal["all"]
MAX_TOKEN_LENGTH: Final = 512
MIN_SECRET_LENGTH: Final = 32
_VERSION: Final = "v1"
_KID: Final = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_B64: Final = re.compile(r"[A-Za-z0-9_-]+")


class InvalidToken(ValueError):
    """Forged, tampered, malformed, or signed with a key we do not hold. Says no more."""


class UnsubscribeClaim(StrictModel):
    couple_id: SafeId
    partner_id: SafeId
    scope: Scope
    issued_at: Annotated[int, Field(ge=0, lt=2**40)]  # epoch seconds


def b64url_encode(raw: bytes) -> str:
    """Unpadded base64url, as tokens (here and actions.py) spell their parts."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of unpadded base64url spelled as `b64url_encode` spells them; InvalidToken
    for any other spelling (the decoder alone ignores a last character's unused bits, so
    four spellings of a MAC would verify)."""
    if not _B64.fullmatch(text):
        raise InvalidToken("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not base64url") from None
    if b64url_encode(raw) != text:
        raise InvalidToken("not base64url")
    return raw


def parse_keys(entries: Sequence[SecretStr]) -> list[tuple[str, bytes]]:
    """Entries "kid:secret" -> [(kid, secret)]; the first signs. Errors never echo a secret."""
    keys: list[tuple[str, bytes]] = []
    for n, entry in enumerate(entries, 1):
        kid, sep, secret = entry.get_secret_value().partition(":")
        if not sep or not _KID.match(kid):
            raise ValueError(
                f"unsubscribe secret #{n} must be 'kid:secret', kid [A-Za-z0-9_-]{{1,16}}"
            )
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"unsubscribe secret {kid!r} is shorter than {MIN_SECRET_LENGTH} chars"
            )
        if any(kid == known for known, _ in keys):
            raise ValueError(f"unsubscribe key id {kid!r} appears twice")
        keys.append((kid, secret.encode()))
    return keys


class UnsubscribeTokens:
    """Signs with the first key, verifies with any; builds and reads link URLs."""

    def __init__(self, keys: Sequence[tuple[str, bytes]], public_url: str) -> None:
        if not keys:
            raise ValueError("at least one unsubscribe key is needed")
        self._signing = keys[0][0], Sha256Mac(keys[0][1])  # see signing.py
        self._keys = {kid: Sha256Mac(secret) for kid, secret in keys}
        self._base = public_url.rstrip("/")

    @classmethod
    def from_secrets(cls, entries: Sequence[SecretStr], public_url: str) -> UnsubscribeTokens:
        return cls(parse_keys(entries), public_url)

    @staticmethod
    def _mac(secret: Sha256Mac, kid: str, payload64: str) -> bytes:
        return secret.digest(f"{kid}.{payload64}".encode())

    def sign(self, claim: UnsubscribeClaim) -> str:
        kid, secret = self._signing
        payload = "|".join(
            [_VERSION, claim.couple_id, claim.partner_id, claim.scope, str(claim.issued_at)]
        )
        payload64 = b64url_encode(payload.encode())
        return f"{kid}.{payload64}.{b64url_encode(self._mac(secret, kid, payload64))}"

    def verify(self, token: str) -> UnsubscribeClaim:
        """The claim a genuine token carries; InvalidToken for anything else."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidToken("malformed")
        kid, payload64, mac64 = token.split(".")
        secret = self._keys.get(kid)
        if secret is None:
            raise InvalidToken("unknown key")
        expected = self._mac(secret, kid, payload64)
        if not hmac.compare_digest(expected, b64url_decode(mac64)):
            raise InvalidToken("bad signature")
        try:
            version, couple_id, partner_id, scope, issued = (
                b64url_decode(payload64).decode("ascii").split("|")
            )
            if version != _VERSION or not issued.isdigit():
                raise InvalidToken("malformed")
            return UnsubscribeClaim.model_validate(
                {
                    "couple_id": couple_id,
                    "partner_id": partner_id,
                    "scope": scope,
                    "issued_at": int(issued),
                }
            )
        except (UnicodeDecodeError, ValueError, ValidationError):
            # A correctly signed token we cannot read was signed by a different format/version.
            raise InvalidToken("malformed") from None

    def url(self, token: str) -> str:
        return f"{self._base}/unsubscribe/{token}"

    def link(self, claim: UnsubscribeClaim) -> str:
        return self.url(self.sign(claim))
