"""Message-IDs that name their nudge: a bounce or complaint that quotes one maps back to the
couple, partner and occurrence with no lookup and no personal data. Pure: no I/O, no clock.

    Message-ID = "<" "n1." <kid> "." base64url(payload) "." base64url(mac) "@" <domain> ">"
    payload    = "<couple id>|<partner id>|<occurrence id>"
    mac        = HMAC-SHA256(key(kid), "n1." <kid> "." <payload64>), first 12 bytes

Ids cannot hold "|" (schemas.SafeId, OccurrenceId), so the payload is unambiguous; every
character of the local part is in RFC 5322's dot-atom. The key of a kid is derived from that
unsubscribe key (unsubscribe.py: the first signs, all verify, so rotation works the same) with
a label of its own, so a Message-ID is never also a valid unsubscribe token. The MAC keeps a
forged report (a mailed DSN, a relay's payload) from naming a partner it never mailed.

One send of one (occurrence, partner) always gets the same Message-ID: a retry after a timeout
is recognisably the same message. The sender asks for the token (its provider headers) and
then the Message-ID of one MessageRef: the last token made is kept with the ref it was made
for and given again for that same object (a ref is frozen, so its token cannot differ), which
saves one HMAC per email (~6 us). Relays that replace the Message-ID (Postmark) or do not
report it for every event (SendGrid) get the same reference in a header of their own
(`provider_headers`), which they echo in their webhooks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from couples_nudge.notifier.signing import Sha256Mac

__all__ = ["MessageIds", "MessageRef", "provider_headers"]

_VERSION: Final = "n1"
_MAC_BYTES: Final = 12
_LABEL: Final = b"nudge message-id v1"
_MAX_TEXT: Final = 1000  # longer than any Message-ID we make: cut before any parsing
# The token anywhere in a header value: with or without <>, @domain, quotes.
_TOKEN: Final = re.compile(
    r"n1\.([A-Za-z0-9_-]{1,16})\.([A-Za-z0-9_-]{4,600})\.([A-Za-z0-9_-]{16})"
)
_SAFE_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_OCCURRENCE: Final = re.compile(r"^[A-Za-z0-9_.:/@-]{1,200}$")
# The header SendGrid reads (its "unique_args" come back in every event) and Postmark's.
SENDGRID_ARG: Final = "nudge_ref"
POSTMARK_FIELD: Final = "nudge-ref"


@dataclass(frozen=True, slots=True)
class MessageRef:
    """Which nudge a message was: what a report maps back to."""

    couple_id: str
    partner_id: str
    occurrence_id: str


class _Made(NamedTuple):
    """The last token made, and the ref it was made for."""

    ref: MessageRef
    token: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class MessageIds:
    """Makes and reads signed Message-IDs; the first key signs, every key verifies."""

    def __init__(self, keys: Sequence[tuple[str, bytes]], domain: str) -> None:
        if not keys:
            raise ValueError("at least one key is needed")
        self._keys = {
            kid: Sha256Mac(hmac.new(secret, _LABEL, hashlib.sha256).digest())
            for kid, secret in keys
        }
        self._kid = keys[0][0]
        self._domain = domain
        self._last: _Made | None = None

    def _mac(self, kid: str, payload64: str) -> bytes:
        text = f"{_VERSION}.{kid}.{payload64}".encode()
        return self._keys[kid].digest(text)[:_MAC_BYTES]

    def token(self, ref: MessageRef) -> str:
        """The local part of the Message-ID (also what provider headers carry)."""
        last = self._last
        if last is not None and last.ref is ref:  # see the module docstring
            return last.token
        payload = f"{ref.couple_id}|{ref.partner_id}|{ref.occurrence_id}"
        payload64 = _b64(payload.encode())
        token = f"{_VERSION}.{self._kid}.{payload64}.{_b64(self._mac(self._kid, payload64))}"
        self._last = _Made(ref, token)
        return token

    def message_id(self, ref: MessageRef) -> str:
        return f"<{self.token(ref)}@{self._domain}>"

    def read(self, text: str | None) -> MessageRef | None:
        """The nudge a Message-ID (or a header holding our token) names; None when it names
        none of ours, or its MAC does not verify."""
        if not text:
            return None
        found = _TOKEN.search(text[:_MAX_TEXT])
        if found is None:
            return None
        kid, payload64, mac64 = found.groups()
        if kid not in self._keys:
            return None
        try:
            mac = _unb64(mac64)
            payload = _unb64(payload64).decode("ascii")
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._mac(kid, payload64)):
            return None
        parts = payload.split("|")
        if len(parts) != 3:
            return None
        couple_id, partner_id, occurrence_id = parts
        if not (_SAFE_ID.match(couple_id) and _SAFE_ID.match(partner_id)):
            return None
        if not _OCCURRENCE.match(occurrence_id):
            return None
        return MessageRef(couple_id, partner_id, occurrence_id)


def provider_headers(token: str) -> list[tuple[str, str]]:
    """Headers that make SendGrid and Postmark echo the token in their webhooks (other relays
    ignore them; no personal data)."""
    return [
        ("X-SMTPAPI", json.dumps({"unique_args": {SENDGRID_ARG: token}}, separators=(",", ":"))),
        (f"X-PM-Metadata-{POSTMARK_FIELD}", token),
    ]
