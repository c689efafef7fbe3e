"""A local APNs: HTTP/2 over TLS (hypercorn) answering POST /3/device/<token> as Apple does.

It checks what Apple checks: HTTP/2 only; the provider token (ES256 signature with the .p8
key's public half, verified with `cryptography`; `kid`, `iss`; `iat` not older than an hour
-> 403 ExpiredProviderToken); the headers (topic, push type, priority, expiration, collapse
id) and the payload; and it answers the documented errors: a token marked unregistered gets
410 Unregistered with a timestamp, and queued answers are given in order.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from couples_nudge.embedded.valkey import free_port
from tests.support.tls import Certificate

# Every reason Apple documents, with its status.
REASONS: dict[str, int] = {
    "BadCollapseId": 400,
    "BadDeviceToken": 400,
    "BadExpirationDate": 400,
    "BadMessageId": 400,
    "BadPriority": 400,
    "BadTopic": 400,
    "DeviceTokenNotForTopic": 400,
    "DuplicateHeaders": 400,
    "IdleTimeout": 400,
    "InvalidPushType": 400,
    "MissingDeviceToken": 400,
    "MissingTopic": 400,
    "PayloadEmpty": 400,
    "TopicDisallowed": 400,
    "BadCertificate": 403,
    "BadCertificateEnvironment": 403,
    "ExpiredProviderToken": 403,
    "Forbidden": 403,
    "InvalidProviderToken": 403,
    "MissingProviderToken": 403,
    "UnrelatedKeyIdInToken": 403,
    "BadPath": 404,
    "MethodNotAllowed": 405,
    "ExpiredToken": 410,
    "Unregistered": 410,
    "PayloadTooLarge": 413,
    "TooManyProviderTokenUpdates": 429,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
    "Shutdown": 503,
}
_HEX = re.compile(r"^[0-9a-fA-F]{64,200}$")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class ApnsPush:
    token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    provider_token: str


@dataclass
class ApnsServer:
    public_key: ec.EllipticCurvePublicKey
    key_id: str
    team_id: str
    topics: set[str]
    now: Callable[[], float]
    origin: str = ""
    answers: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # reason, headers
    unregistered: set[str] = field(default_factory=set)
    failing: dict[str, list[str]] = field(default_factory=dict)  # token -> reasons, in order
    received: list[ApnsPush] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)
    delay: float = 0.0  # seconds before answering (timeouts)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/3/device/{token}", self.push, methods=["POST"])])

    def _error(self, reason: str, headers: dict[str, str] | None = None) -> Response:
        body: dict[str, Any] = {"reason": reason}
        if reason == "Unregistered":
            body["timestamp"] = int(self.now() * 1000)
        return JSONResponse(body, status_code=REASONS[reason], headers=headers)

    def _provider_token(self, authorization: str) -> str | None:
        """None if the token is good, else the reason Apple gives."""
        scheme, _, token = authorization.partition(" ")
        if scheme != "bearer" or not token:
            return "MissingProviderToken"
        try:
            header64, claims64, signature64 = token.split(".")
            header, claims = json.loads(b64d(header64)), json.loads(b64d(claims64))
            raw = b64d(signature64)
            assert len(raw) == 64
            signature = encode_dss_signature(
                int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
            )
            self.public_key.verify(
                signature, f"{header64}.{claims64}".encode(), ec.ECDSA(hashes.SHA256())
            )
            assert header["alg"] == "ES256"
            assert claims["iss"] == self.team_id
        except (AssertionError, KeyError, ValueError, InvalidSignature):
            return "InvalidProviderToken"
        if header.get("kid") != self.key_id:
            return "InvalidProviderToken"
        if not isinstance(claims.get("iat"), int) or claims["iat"] > self.now() + 60:
            return "InvalidProviderToken"
        if self.now() - claims["iat"] > 3600:
            return "ExpiredProviderToken"
        return None

    async def push(self, request: Request) -> Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        self.versions.add(request.scope["http_version"])
        if request.scope["http_version"] != "2":
            self.refused.append("not HTTP/2")
            return self._error("BadPath")
        h = request.headers
        reason = self._provider_token(h.get("authorization", ""))
        token = request.path_params["token"]
        body = await request.body()
        if reason is None:
            reason = self._check(token, h, body)
        if reason is not None:
            self.refused.append(reason)
            return self._error(reason)
        self.received.append(
            ApnsPush(token, dict(h), json.loads(body), h["authorization"].split(" ")[1])
        )
        if token in self.unregistered:
            return self._error("Unregistered")
        if self.failing.get(token):
            return self._error(self.failing[token].pop(0))
        if self.answers:
            answer, headers = self.answers.pop(0)
            return self._error(answer, headers)
        return Response(status_code=200, headers={"apns-id": h.get("apns-id", "")})

    def _check(self, token: str, h: Any, body: bytes) -> str | None:
        if not _HEX.match(token):
            return "BadDeviceToken"
        if "apns-topic" not in h:
            return "MissingTopic"
        if h["apns-topic"] not in self.topics:
            return "DeviceTokenNotForTopic"
        if h.get("apns-push-type") != "alert":
            return "InvalidPushType"
        if h.get("apns-priority") not in ("5", "10"):
            return "BadPriority"
        if not h.get("apns-expiration", "").isdigit():
            return "BadExpirationDate"
        if len(h.get("apns-collapse-id", "").encode()) > 64:
            return "BadCollapseId"
        if not body:
            return "PayloadEmpty"
        if len(body) > 4096:
            return "PayloadTooLarge"
        payload = json.loads(body)
        if not isinstance(payload.get("aps", {}).get("alert"), dict):
            return "PayloadEmpty"
        return None


class Http2Server:
    """An ASGI app under hypercorn with TLS and ALPN h2 on a free loopback port."""

    def __init__(self, app: Starlette, certificate: Certificate) -> None:
        from hypercorn.config import Config

        self.port = free_port()
        self._config = Config()
        self._config.bind = [f"127.0.0.1:{self.port}"]
        self._config.certfile = str(certificate.cert_file)
        self._config.keyfile = str(certificate.key_file)
        self._config.alpn_protocols = ["h2"]
        self._config.accesslog = None
        self._config.errorlog = None
        self._app = app
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def origin(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Http2Server:
        from hypercorn.asyncio import serve

        self._task = asyncio.create_task(
            serve(
                cast("Any", self._app),  # a Starlette app is an ASGI app; hypercorn's types differ
                self._config,
                shutdown_trigger=self._stop.wait,
                mode="asgi",
            )
        )
        for _ in range(500):
            if self._task.done():
                await self._task
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return self
            await asyncio.sleep(0.01)
        raise RuntimeError("hypercorn did not start")

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
