"""Apple Push Notification service over HTTP/2: one nudge to one iOS device (its token).

    POST https://api.push.apple.com/3/device/<token>        (sandbox: api.sandbox.push.apple.com)
    authorization: bearer <provider token (apns_auth.py)>
    apns-topic: <the device's app id, else NUDGE_APNS_TOPIC>
    apns-push-type: alert          apns-priority: 5 (nudges are not urgent)
    apns-expiration: <now + NUDGE_PUSH_TTL>      apns-collapse-id: <nudge kind>
    apns-id: <a UUID derived from the send's idempotency key>
    {"aps": {"alert": {"title", "body"}, "thread-id": <kind>}, "kind", "url"}

One httpx client with HTTP/2 (h2) keeps one multiplexed connection per host, bounded by
NUDGE_PUSH_CONCURRENCY; every request times out. The answer's JSON `reason` decides:

    410 Unregistered, 410 ExpiredToken, 400 BadDeviceToken, 400 DeviceTokenNotForTopic
                                  gone: the device is marked dead
    403 ExpiredProviderToken      a new provider token, sent once more
    429 TooManyRequests, 429 TooManyProviderTokenUpdates, 500 InternalServerError,
    503 ServiceUnavailable, 503 Shutdown, 400 IdleTimeout
                                  transient (after Retry-After when given)
    anything else                 permanent, device kept (a bad topic or key is ours to fix)

Details are "HTTP <status> <reason>", the reason only when Apple documents it.
"""

from __future__ import annotations

import json
import ssl
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final, Literal

import httpx

from couples_nudge.notifier.channels.apns_auth import ProviderToken
from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.http_client import HttpSender, retry_after
from couples_nudge.notifier.errors import (
    PermanentSendError,
    TransientSendError,
    classified,
)
from couples_nudge_schemas import IosDevice

__all__ = ["APNS_HOSTS", "MAX_PAYLOAD", "ApnsChannel", "apns_payload", "classify_apns"]

APNS_HOSTS: Final = {
    "production": "https://api.push.apple.com",
    "sandbox": "https://api.sandbox.push.apple.com",
}
MAX_PAYLOAD: Final = 4096
_NS: Final = uuid.UUID("9c3f6a0e-5d2b-4f7e-8a1c-0b4d6e2f8a93")
_GONE: Final = frozenset(
    {"Unregistered", "ExpiredToken", "BadDeviceToken", "DeviceTokenNotForTopic"}
)
_TRANSIENT: Final = frozenset(
    {
        "TooManyRequests",
        "TooManyProviderTokenUpdates",
        "InternalServerError",
        "ServiceUnavailable",
        "Shutdown",
        "IdleTimeout",
    }
)
_KNOWN: Final = (
    _GONE
    | _TRANSIENT
    | frozenset(
        {
            "BadCollapseId",
            "BadExpirationDate",
            "BadMessageId",
            "BadPriority",
            "BadTopic",
            "DuplicateHeaders",
            "InvalidPushType",
            "MissingDeviceToken",
            "MissingTopic",
            "PayloadEmpty",
            "TopicDisallowed",
            "BadCertificate",
            "BadCertificateEnvironment",
            "ExpiredProviderToken",
            "Forbidden",
            "InvalidProviderToken",
            "MissingProviderToken",
            "UnrelatedKeyIdInToken",
            "BadEnvironmentKeyInToken",
            "BadPath",
            "MethodNotAllowed",
            "PayloadTooLarge",
        }
    )
)


def apns_payload(push: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for one nudge. Pure."""
    kind = str(push.get("kind") or "nudge")
    payload: dict[str, Any] = {
        "aps": {
            "alert": {"title": str(push.get("title") or ""), "body": str(push.get("body"))},
            "thread-id": kind,
        },
        "kind": kind,
    }
    if push.get("url"):
        payload["url"] = str(push["url"])
    actions = push.get("actions")
    if isinstance(actions, list) and actions:
        # The app registers a UNNotificationCategory per kind ("NUDGE_DATE_NIGHT", ...) with
        # these action identifiers; tapping one POSTs its signed URL from custom data.
        payload["aps"]["category"] = f"NUDGE_{kind.upper()}"
        payload["actions"] = {str(a["action"]): str(a["url"]) for a in actions}
    if push.get("manage_url"):
        payload["manage_url"] = str(push["manage_url"])
    return payload


def reason_of(body: bytes) -> str:
    """Apple's documented reason in an error body, else ""."""
    try:
        reason = json.loads(body[:4096]).get("reason")
    except (ValueError, AttributeError):
        return ""
    return reason if reason in _KNOWN else ""


def classify_apns(
    status: int, reason: str, retry_after_s: float | None
) -> TransientSendError | PermanentSendError | None:
    """The error an APNs answer means (None for success). Pure."""
    if status == 200:
        return None
    detail = f"HTTP {status} {reason}" if reason else f"HTTP {status}"
    if reason in _GONE:
        return PermanentSendError("mobile", detail, gone=True)
    if reason in _TRANSIENT or status == 429 or status >= 500:
        return TransientSendError("mobile", detail, retry_after=retry_after_s)
    return PermanentSendError("mobile", detail)


class ApnsChannel:
    """Sends to iOS devices (channel "mobile"); see the module docstring."""

    name: Literal["mobile"] = "mobile"

    def __init__(
        self,
        *,
        provider_token: ProviderToken,
        topic: str | None = None,
        environment: Literal["production", "sandbox"] = "production",
        host: str | None = None,
        ttl: timedelta = timedelta(hours=12),
        timeout: float = 10.0,
        concurrency: int = 16,
        verify: ssl.SSLContext | bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._origin = (host or APNS_HOSTS[environment]).rstrip("/")
        self._topic = topic
        self._ttl = max(0, int(ttl.total_seconds()))
        self._now = wall_clock
        self.tokens = provider_token
        self._http = HttpSender(
            "mobile", timeout=timeout, concurrency=concurrency, gone=(), verify=verify, http2=True
        )

    async def send(self, message: Outgoing) -> None:
        """Deliver, or raise TransientSendError / PermanentSendError (nothing else)."""
        await classified("mobile", self._send(message))

    async def _send(self, message: Outgoing) -> None:
        device = message.address
        if not isinstance(device, IosDevice) or message.push is None:
            raise PermanentSendError("mobile", "no ios device")
        topic = device.app_id or self._topic
        if topic is None:
            raise PermanentSendError("mobile", "no apns topic (app_id or NUDGE_APNS_TOPIC)")
        body = json.dumps(
            apns_payload(message.push), ensure_ascii=False, separators=(",", ":")
        ).encode()
        if len(body) > MAX_PAYLOAD:
            raise PermanentSendError("mobile", f"payload of {len(body)} bytes is too large")
        headers = {
            "apns-topic": topic,
            "apns-push-type": "alert",
            "apns-priority": "5",
            "apns-expiration": str(int(self._now()) + self._ttl),
            "apns-collapse-id": str(message.push.get("kind") or "nudge")[:64],
            "apns-id": str(uuid.uuid5(_NS, message.idempotency_key)),
            "content-type": "application/json",
        }
        url = f"{self._origin}/3/device/{device.token.lower()}"
        for last in (False, True):
            token = self.tokens.get()
            response = await self._post(url, body, headers | {"authorization": f"bearer {token}"})
            reason = "" if response.status_code == 200 else reason_of(response.content)
            if reason == "ExpiredProviderToken" and not last:
                self.tokens.invalidate(token)
                continue
            break
        error = classify_apns(
            response.status_code, reason, retry_after(response.headers.get("retry-after"))
        )
        if error is not None:
            raise error

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return await self._http.exchange(url, content=body, headers=headers)

    async def close(self) -> None:
        await self._http.close()
