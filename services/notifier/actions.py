"""Signed action links: a partner answers a nudge with one tap. Pure: no I/O, no clock.

The same keys as unsubscribe links (NUDGE_UNSUBSCRIBE_SECRETS: key id, rotation by putting a
new key first), and the same token form, with a MAC key derived per key for actions (so an
action token is never an unsubscribe token, nor the other way round):

    token   = <kid> "." base64url(payload) "." base64url(HMAC-SHA256(K, <kid> "." <payload64>))
    K       = HMAC-SHA256(secret, "nudge action links v1")
    payload = "a1|<couple>|<partner>|<kind>|<occurrence>|<action>|<sequence>|<issued s>"

Ids cannot contain "|" (SafeId, OccurrenceId). Actions: done, skip, snooze, more (one tap, on
`/a/<token>`) and manage (the manage page, `/manage/<token>`). One-tap links expire
`max_age` after they were issued (an answer to a nudge of months ago means nothing); manage
links do not, like unsubscribe links. No link redirects anywhere: a link is the page itself.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Annotated, Final, Literal

from pydantic import Field, ValidationError

from couples_nudge.notifier.signing import Sha256Mac
from couples_nudge.notifier.unsubscribe import InvalidToken, b64url_decode, b64url_encode
from couples_nudge_schemas import NudgeKind, StrictModel
from couples_nudge_schemas._base import SafeId
from couples_nudge_schemas.nudges import OccurrenceId

__all__ = [
    "ONE_TAP",
    "ActionClaim",
    "ActionKind",
    "ActionTokens",
    "ExpiredToken",
    "InvalidToken",
]

ActionKind = Literal["done", "skip", "snooze", "more", "manage"]
ONE_TAP: Final[tuple[ActionKind, ...]] = ("done", "skip", "snooze", "more")
MAX_TOKEN_LENGTH: Final = 1024
_VERSION: Final = "a1"
_LABEL: Final = b"nudge action links v1"


class ExpiredToken(InvalidToken):
    """A genuine one-tap link, older than the links' lifetime."""


class ActionClaim(StrictModel):
    couple_id: SafeId
    partner_id: SafeId
    kind: NudgeKind
    occurrence_id: OccurrenceId
    action: ActionKind
    sequence: Annotated[int, Field(ge=0, lt=2**40)]
    issued_at: Annotated[int, Field(ge=0, lt=2**40)]  # epoch seconds


class ActionTokens:
    """Signs with the first key, verifies with any; builds the links."""

    def __init__(
        self, keys: Sequence[tuple[str, bytes]], public_url: str, *, max_age_s: int
    ) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        derived = [
            (kid, Sha256Mac(hmac.new(secret, _LABEL, hashlib.sha256).digest()))  # signing.py
            for kid, secret in keys
        ]
        self._signing = derived[0]
        self._keys = dict(derived)
        self._base = public_url.rstrip("/")
        self.max_age_s = max_age_s

    @staticmethod
    def _mac(key: Sha256Mac, kid: str, payload64: str) -> bytes:
        return key.digest(f"{kid}.{payload64}".encode())

    def sign(self, claim: ActionClaim) -> str:
        kid, key = self._signing
        payload = "|".join(
            [
                _VERSION,
                claim.couple_id,
                claim.partner_id,
                claim.kind,
                claim.occurrence_id,
                claim.action,
                str(claim.sequence),
                str(claim.issued_at),
            ]
        )
        payload64 = b64url_encode(payload.encode())
        return f"{kid}.{payload64}.{b64url_encode(self._mac(key, kid, payload64))}"

    def verify(self, token: str, *, now_s: int) -> ActionClaim:
        """The claim of a genuine, unexpired token; InvalidToken (ExpiredToken) otherwise."""
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidToken("malformed")
        kid, payload64, mac64 = token.split(".")
        key = self._keys.get(kid)
        if key is None:
            raise InvalidToken("unknown key")
        if not hmac.compare_digest(self._mac(key, kid, payload64), b64url_decode(mac64)):
            raise InvalidToken("bad signature")
        try:
            parts = b64url_decode(payload64).decode("ascii").split("|")
            if len(parts) != 8 or parts[0] != _VERSION:
                raise InvalidToken("malformed")
            _, couple_id, partner_id, kind, occurrence, action, seq, issued = parts
            if not seq.isdigit() or not issued.isdigit():
                raise InvalidToken("malformed")
            claim = ActionClaim.model_validate(
                {
                    "couple_id": couple_id,
                    "partner_id": partner_id,
                    "kind": kind,
                    "occurrence_id": occurrence,
                    "action": action,
                    "sequence": int(seq),
                    "issued_at": int(issued),
                }
            )
        except (UnicodeDecodeError, ValueError, ValidationError):
            raise InvalidToken("malformed") from None
        if claim.action != "manage" and now_s - claim.issued_at > self.max_age_s:
            raise ExpiredToken("expired")
        return claim

    def url(self, token: str, action: ActionKind) -> str:
        return f"{self._base}/{'manage' if action == 'manage' else 'a'}/{token}"

    def link(self, claim: ActionClaim) -> str:
        return self.url(self.sign(claim), claim.action)
