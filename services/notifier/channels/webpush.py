"""Web Push: RFC 8030 delivery, RFC 8292 VAPID and RFC 8291 aes128gcm payload encryption.

The payload (title, body, url, kind as JSON) is encrypted for the subscription's P-256 key and
auth secret with http_ece, the request is authorised with a VAPID JWT (ES256) signed by
py-vapid, and sent with our own pooled httpx client. A push service answers 201; 404/410
mean the subscription is gone (the partner's push channel is marked dead), 429/5xx are
retried. Endpoints, keys and payloads are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import ssl
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import http_ece  # type: ignore[import-untyped]  # no type information shipped
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException  # type: ignore[import-untyped]  # untyped
from pydantic import SecretStr

from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.http_client import HttpSender
from couples_nudge.notifier.errors import PermanentSendError, classified
from couples_nudge_schemas import PushSubscription

__all__ = [
    "MAX_PLAINTEXT",
    "WebPushChannel",
    "check_subject",
    "encrypt_payload",
    "load_vapid_key",
    "public_key_b64",
]

# One aes128gcm record of 4096 bytes minus header (86), padding delimiter (1) and tag (16).
MAX_PLAINTEXT: Final = 4096 - 86 - 1 - 16
_JWT_LIFETIME: Final = 12 * 3600  # RFC 8292: at most 24 h
_JWT_RENEW: Final = 3600  # sign a new one when less than this is left


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def load_vapid_key(secret: SecretStr) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM (PKCS#8 or SEC1) or base64url of its raw 32 bytes."""
    text = secret.get_secret_value().strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = _b64decode(text)
            if len(raw) != 32:
                raise ValueError("not 32 bytes")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except (ValueError, TypeError, binascii.Error):
        raise ValueError("vapid_private_key is not a P-256 key (PEM or base64url raw)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("vapid_private_key must be an EC P-256 (prime256v1) key")
    return key


def check_subject(subject: str) -> str:
    if not (subject.startswith("mailto:") and "@" in subject) and not subject.startswith(
        "https://"
    ):
        raise ValueError("vapid_subject must be a mailto: address or an https:// URL")
    return subject


def public_key_b64(key: ec.EllipticCurvePrivateKey) -> str:
    """The applicationServerKey an app passes to PushManager.subscribe()."""
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64encode(point)


def encrypt_payload(
    plaintext: bytes,
    subscription: PushSubscription,
    *,
    salt: bytes | None = None,
    sender_key: ec.EllipticCurvePrivateKey | None = None,
) -> bytes:
    """RFC 8291 aes128gcm body: a fresh sender key and salt per message unless given (tests).

    ValueError when the subscription's keys cannot be right (a 65-byte uncompressed P-256
    point and a 16-byte auth secret).
    """
    receiver, auth = _b64decode(subscription.p256dh), _b64decode(subscription.auth)
    if len(receiver) != 65 or receiver[0] != 4 or len(auth) != 16:
        raise ValueError("subscription keys have the wrong shape")
    if sender_key is None:
        sender_key = ec.generate_private_key(ec.SECP256R1())
    encrypted: bytes = http_ece.encrypt(
        plaintext,
        salt=salt if salt is not None else os.urandom(16),
        private_key=sender_key,
        dh=receiver,
        auth_secret=auth,
        version="aes128gcm",
    )
    return encrypted


class WebPushChannel:
    name: Literal["push"] = "push"

    def __init__(
        self,
        *,
        vapid_private_key: SecretStr,
        subject: str,
        ttl: timedelta = timedelta(hours=12),
        timeout: float = 10.0,
        concurrency: int = 16,
        verify: ssl.SSLContext | bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._vapid = Vapid02(private_key=load_vapid_key(vapid_private_key))
        self._subject = check_subject(subject)
        self._ttl = str(max(0, int(ttl.total_seconds())))
        self._now = wall_clock  # JWT expiry is checked by real push services: wall time
        self._jwts: dict[str, tuple[int, str]] = {}  # audience -> (expires, Authorization)
        self._http = HttpSender(
            "push",
            timeout=timeout,
            concurrency=concurrency,
            gone=(404, 410),
            verify=verify,
            url_is_address=True,  # the endpoint is the subscription
        )

    def _authorization(self, endpoint: str) -> str:
        """A VAPID header for the endpoint's origin, reused until an hour before it expires."""
        try:
            parts = urlsplit(endpoint)
        except ValueError:  # e.g. a malformed IPv6 host: this subscription can never work
            raise PermanentSendError("push", "endpoint is not a URL", gone=True) from None
        audience = f"{parts.scheme}://{parts.netloc}"
        now = int(self._now())
        cached = self._jwts.get(audience)
        if cached is not None and cached[0] - now > _JWT_RENEW:
            return cached[1]
        expires = now + _JWT_LIFETIME
        try:
            headers: dict[str, str] = self._vapid.sign(
                {"aud": audience, "exp": expires, "sub": self._subject}
            )
        except VapidException:
            raise PermanentSendError(  # the endpoint is the subscription: it can never work
                "push", "endpoint origin is not a valid VAPID audience", gone=True
            ) from None
        if len(self._jwts) > 1000:  # a handful of push services in practice; stay bounded
            self._jwts.clear()
        self._jwts[audience] = (expires, headers["Authorization"])
        return headers["Authorization"]

    async def send(self, message: Outgoing) -> None:
        """Deliver, or raise TransientSendError / PermanentSendError (nothing else)."""
        await classified("push", self._send(message))

    async def _send(self, message: Outgoing) -> None:
        subscription = message.address
        if not isinstance(subscription, PushSubscription) or message.push is None:
            raise PermanentSendError("push", "no push subscription")
        plaintext = _json(message.push)
        if len(plaintext) > MAX_PLAINTEXT and "actions" in message.push:
            # Very long ids: the nudge goes without its answers rather than not at all.
            lean = {k: v for k, v in message.push.items() if k not in ("actions", "manage_url")}
            plaintext = _json(lean)
        if len(plaintext) > MAX_PLAINTEXT:
            raise PermanentSendError("push", f"payload of {len(plaintext)} bytes is too large")
        headers = {
            "Authorization": self._authorization(subscription.endpoint),
            "TTL": self._ttl,
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "Urgency": "normal",
        }
        kind = message.push.get("kind")
        if isinstance(kind, str):
            headers["Topic"] = kind  # a newer nudge of a kind replaces an undelivered older one
        try:
            body = encrypt_payload(plaintext, subscription)
        except (ValueError, binascii.Error, http_ece.ECEException):
            # Keys that are no P-256 point or auth secret: this subscription can never work.
            raise PermanentSendError("push", "invalid subscription keys", gone=True) from None
        await self._http.post(subscription.endpoint, content=body, headers=headers)

    async def close(self) -> None:
        await self._http.close()


def _json(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
