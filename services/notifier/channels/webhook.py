"""Webhook push: POST the push payload as signed JSON, for apps that deliver push themselves.

Body (UTF-8 JSON): title, body, url, kind, couple_id, partner_id, occurrence_id. Never an
email address or a push subscription. Headers:

    X-Nudge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>
    Idempotency-Key:   the same UUID for every retry of one (occurrence, partner)

A receiver recomputes v1 over the raw body, compares in constant time and refuses a `t` far
from its own clock (replays). 2xx is delivered; 410 says this partner is gone (the channel is
marked dead for them); 429/5xx and network errors are retried; other answers are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
import uuid
from collections.abc import Callable
from typing import Final, Literal

from pydantic import SecretStr

from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.http_client import HttpSender
from couples_nudge.notifier.errors import PermanentSendError, classified

__all__ = ["SIGNATURE_HEADER", "WebhookChannel", "sign"]

SIGNATURE_HEADER: Final = "X-Nudge-Signature"
_NS: Final = uuid.UUID("5b0c1c8e-7a43-4f0e-8f57-2f3c9a61d0b4")


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The X-Nudge-Signature value for a body sent at `timestamp`."""
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class WebhookChannel:
    name: Literal["webhook"] = "webhook"

    def __init__(
        self,
        *,
        url: str,
        secret: SecretStr,
        timeout: float = 10.0,
        concurrency: int = 16,
        verify: ssl.SSLContext | bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url
        self._secret = secret.get_secret_value().encode()
        self._now = wall_clock  # receivers compare `t` with their own real clock
        self._http = HttpSender(
            "webhook", timeout=timeout, concurrency=concurrency, gone=(410,), verify=verify
        )

    async def send(self, message: Outgoing) -> None:
        """Deliver, or raise TransientSendError / PermanentSendError (nothing else)."""
        await classified("webhook", self._send(message))

    async def _send(self, message: Outgoing) -> None:
        if message.push is None:
            raise PermanentSendError("webhook", "no push payload")
        payload = {
            "title": message.push.get("title"),
            "body": message.push.get("body"),
            "url": message.push.get("url"),
            "kind": message.push.get("kind"),
            "couple_id": message.couple_id,
            "partner_id": message.partner_id,
            "occurrence_id": message.occurrence_id,
        }
        if message.push.get("actions"):  # signed one-tap answers: POST the url to act
            payload["actions"] = message.push["actions"]
        if message.push.get("manage_url"):
            payload["manage_url"] = message.push["manage_url"]
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            SIGNATURE_HEADER: sign(self._secret, int(self._now()), body),
            "Idempotency-Key": str(uuid.uuid5(_NS, message.idempotency_key)),
        }
        await self._http.post(self._url, content=body, headers=headers)

    async def close(self) -> None:
        await self._http.close()
