"""Firebase Cloud Messaging, HTTP v1: one nudge to one Android device (its registration token).

    POST {endpoint}/v1/projects/{project}/messages:send
    Authorization: Bearer <OAuth access token (fcm_auth.py)>
    {"message": {"token", "notification": {"title", "body"}, "data": {"kind", "url",
                 "occurrence_id"}, "android": {...}, "apns": {...}, "webpush": {...}}}

The per-platform overrides say the same thing each platform's way: a collapse key per nudge
kind (a device offline for a while gets only the newest nudge of a kind), normal priority
(nudges are not urgent), and how long FCM keeps an undelivered one (NUDGE_PUSH_TTL). A token
of an iOS or web app registered with FCM therefore gets the same treatment. `app_id`, when the
device has one, becomes `restricted_package_name`.

Errors (`error.details[].errorCode` of type FcmError, else `error.status`):

    UNREGISTERED                          gone: the app was uninstalled or the token expired
    INVALID_ARGUMENT about message.token  gone: the token is not an FCM token
    INVALID_ARGUMENT (anything else)      permanent: our message is wrong, the device stays
    SENDER_ID_MISMATCH                    permanent, device kept: a token of another Firebase
                                          project (a misconfiguration must not kill devices)
    THIRD_PARTY_AUTH_ERROR                permanent: the project's APNs/web credentials
    QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL transient, after Retry-After when given
    401 without an FcmError               our access token: refreshed, sent once more
    other 429/5xx, timeouts, network      transient; any other status: permanent

Details are "HTTP <status> <code>" with the code only when it is one FCM documents; tokens
and answers' free text never leave this module.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final, Literal
from urllib.parse import quote

import httpx

from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.fcm_auth import AccessTokens, ServiceAccount
from couples_nudge.notifier.channels.http_client import HttpSender, retry_after
from couples_nudge.notifier.errors import (
    PermanentSendError,
    TransientSendError,
    classified,
)
from couples_nudge_schemas import AndroidDevice

__all__ = ["FCM_ENDPOINT", "FcmChannel", "classify_fcm", "fcm_message"]

FCM_ENDPOINT: Final = "https://fcm.googleapis.com"
_GONE: Final = frozenset({"UNREGISTERED"})
_TRANSIENT: Final = frozenset({"QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"})
_KNOWN: Final = frozenset(
    {
        "UNSPECIFIED_ERROR",
        "INVALID_ARGUMENT",
        "UNREGISTERED",
        "SENDER_ID_MISMATCH",
        "QUOTA_EXCEEDED",
        "UNAVAILABLE",
        "INTERNAL",
        "THIRD_PARTY_AUTH_ERROR",
        # google.rpc status names FCM answers with when no FcmError is attached
        "UNAUTHENTICATED",
        "PERMISSION_DENIED",
        "NOT_FOUND",
        "RESOURCE_EXHAUSTED",
    }
)
_MAX_ERROR_BYTES: Final = 16384


def fcm_message(
    token: str, push: dict[str, Any], *, ttl_seconds: int, now: float, app_id: str | None
) -> dict[str, Any]:
    """The v1 `message` for one device. Pure."""
    kind = str(push.get("kind") or "nudge")
    data = {"kind": kind}
    if push.get("url"):
        data["url"] = str(push["url"])
    actions = push.get("actions")
    answers = isinstance(actions, list) and bool(actions)
    if isinstance(actions, list):  # data values are strings: one "action_<name>" per answer
        for a in actions:
            data[f"action_{a['action']}"] = str(a["url"])
            data[f"action_{a['action']}_title"] = str(a["title"])
    if push.get("manage_url"):
        data["manage_url"] = str(push["manage_url"])
    notification: dict[str, Any] = {"tag": kind}
    if answers:  # the app's intent filter for a nudge with answers (actions in data)
        notification["click_action"] = "NUDGE_ACTIONS"
    android: dict[str, Any] = {
        "collapse_key": kind,
        "priority": "NORMAL",
        "ttl": f"{ttl_seconds}s",
        "notification": notification,
    }
    if app_id is not None:
        android["restricted_package_name"] = app_id
    return {
        "token": token,
        "notification": {"title": str(push.get("title") or ""), "body": str(push.get("body"))},
        "data": data,
        "android": android,
        "apns": {
            "headers": {
                "apns-push-type": "alert",
                "apns-priority": "5",
                "apns-collapse-id": kind,
                "apns-expiration": str(int(now) + ttl_seconds),
            },
            **({"payload": {"aps": {"category": f"NUDGE_{kind.upper()}"}}} if answers else {}),
        },
        "webpush": {"headers": {"TTL": str(ttl_seconds), "Topic": kind, "Urgency": "normal"}},
    }


def classify_fcm(
    status: int, body: bytes, retry_after_s: float | None
) -> TransientSendError | PermanentSendError | None:
    """The error an FCM answer means (None for success). Pure."""
    if 200 <= status < 300:
        return None
    code, token_invalid = _error_code(body)
    detail = f"HTTP {status} {code}" if code else f"HTTP {status}"
    if code in _GONE or (code == "INVALID_ARGUMENT" and token_invalid):
        return PermanentSendError("mobile", detail, gone=True)
    if code in _TRANSIENT or status == 429 or status >= 500:
        return TransientSendError("mobile", detail, retry_after=retry_after_s)
    return PermanentSendError("mobile", detail)


def _error_code(body: bytes) -> tuple[str, bool]:
    """(FcmError code, else google.rpc status, if known; whether a field violation names
    message.token)."""
    try:
        error = json.loads(body[:_MAX_ERROR_BYTES])["error"]
    except (ValueError, KeyError, TypeError):
        return "", False
    if not isinstance(error, dict):
        return "", False
    code = error.get("status")
    token_invalid = False
    details = error.get("details")
    for detail in details if isinstance(details, list) else []:
        if not isinstance(detail, dict):
            continue
        kind = str(detail.get("@type", ""))
        if kind.endswith("google.firebase.fcm.v1.FcmError"):
            code = detail.get("errorCode", code)
        elif kind.endswith("google.rpc.BadRequest"):
            violations = detail.get("fieldViolations")
            for violation in violations if isinstance(violations, list) else []:
                if isinstance(violation, dict) and violation.get("field") == "message.token":
                    token_invalid = True
    return (code if code in _KNOWN else ""), token_invalid


class FcmChannel:
    """Sends to Android devices (channel "mobile"); see the module docstring."""

    name: Literal["mobile"] = "mobile"

    def __init__(
        self,
        *,
        account: ServiceAccount,
        project_id: str | None = None,
        endpoint: str = FCM_ENDPOINT,
        ttl: timedelta = timedelta(hours=12),
        timeout: float = 10.0,
        concurrency: int = 16,
        verify: ssl.SSLContext | bool = True,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        project = project_id or account.project_id
        self._url = f"{endpoint.rstrip('/')}/v1/projects/{quote(project, safe='')}/messages:send"
        self._ttl = max(0, int(ttl.total_seconds()))
        self._now = wall_clock
        self._http = HttpSender(
            "mobile", timeout=timeout, concurrency=concurrency, gone=(), verify=verify, http2=True
        )
        self.tokens = AccessTokens(account, self._http, wall_clock=wall_clock)

    async def send(self, message: Outgoing) -> None:
        """Deliver, or raise TransientSendError / PermanentSendError (nothing else)."""
        await classified("mobile", self._send(message))

    async def _send(self, message: Outgoing) -> None:
        device = message.address
        if not isinstance(device, AndroidDevice) or message.push is None:
            raise PermanentSendError("mobile", "no android device")
        body = json.dumps(
            {
                "message": fcm_message(
                    device.token,
                    message.push,
                    ttl_seconds=self._ttl,
                    now=self._now(),
                    app_id=device.app_id,
                )
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        for last in (False, True):
            token = await self.tokens.get()
            response = await self._post(body, token)
            if response.status_code == 401 and not last and not _third_party(response):
                self.tokens.invalidate(token)  # expired or revoked early: one fresh token
                continue
            break
        error = classify_fcm(
            response.status_code,
            response.content,
            retry_after(response.headers.get("retry-after")),
        )
        if error is not None:
            raise error

    async def _post(self, body: bytes, token: str) -> httpx.Response:
        return await self._http.exchange(
            self._url,
            content=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json; charset=utf-8",
            },
        )

    async def close(self) -> None:
        await self._http.close()


def _third_party(response: httpx.Response) -> bool:
    return _error_code(response.content)[0] == "THIRD_PARTY_AUTH_ERROR"
