"""A local FCM: Google's OAuth token endpoint and the FCM HTTP v1 send endpoint, over HTTPS.

The token endpoint checks the JWT bearer assertion as Google does: RS256 signature with the
service account's public key (verified here with `cryptography`, not the client's PyJWT), the
key id, `iss`, `scope`, `aud` (= token_uri), `iat`/`exp` (at most an hour, not expired), and
issues opaque tokens with `expires_in`. The send endpoint accepts only a live issued token
and a well-formed v1 message (an android.ttl of at most 28 days, as FCM checks), and answers
what it is told to, in FCM's documented error form.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
MAX_TTL = 2_419_200  # seconds (28 days): FCM refuses a longer android.ttl
_DURATION = re.compile(r"^\d{1,12}(\.\d{1,9})?s$")


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def service_account(key: rsa.RSAPrivateKey, token_uri: str, project: str) -> dict[str, str]:
    """A service-account JSON key as the Google Cloud console writes it."""
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": "3f2c1b0a99887766554433221100ffeeddccbbaa",
        "private_key": pem,
        "client_email": f"nudges@{project}.iam.gserviceaccount.com",
        "client_id": "109876543210987654321",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }


def fcm_error(
    status: int, rpc_status: str, code: str | None = None, field_name: str | None = None
) -> tuple[int, dict[str, Any]]:
    """An error answer in the form FCM documents (google.rpc.Status with details)."""
    details: list[dict[str, Any]] = []
    if code is not None:
        details.append({"@type": FCM_ERROR, "errorCode": code})
    if field_name is not None:
        details.append(
            {
                "@type": BAD_REQUEST,
                "fieldViolations": [{"field": field_name, "description": "Invalid value"}],
            }
        )
    error = {"code": status, "message": "Request failed", "status": rpc_status}
    return status, {"error": error | ({"details": details} if details else {})}


# Every error the FCM v1 documentation lists, as FCM sends it.
ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "UNREGISTERED": fcm_error(404, "NOT_FOUND", "UNREGISTERED"),
    "INVALID_TOKEN": fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "message.token"),
    "INVALID_ARGUMENT": fcm_error(
        400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "message.android.ttl"
    ),
    "SENDER_ID_MISMATCH": fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"),
    "QUOTA_EXCEEDED": fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED"),
    "UNAVAILABLE": fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"),
    "INTERNAL": fcm_error(500, "INTERNAL", "INTERNAL"),
    "THIRD_PARTY_AUTH_ERROR": fcm_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"),
    "UNSPECIFIED_ERROR": fcm_error(400, "INVALID_ARGUMENT", "UNSPECIFIED_ERROR"),
}


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FcmServer:
    public_key: rsa.RSAPublicKey
    account: dict[str, str]
    now: Callable[[], float]
    token_lifetime: int = 3600
    origin: str = ""
    token_requests: int = 0
    issued: dict[str, float] = field(default_factory=dict)  # access token -> expiry
    answers: list[Answer] = field(default_factory=list)  # for the send endpoint, in order
    token_answers: list[Answer] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)  # accepted messages
    unregistered: set[str] = field(default_factory=set)  # tokens answered UNREGISTERED
    failing: dict[str, list[str]] = field(default_factory=dict)  # token -> error names, in order
    refused: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/v1/projects/{project}/messages:send", self.send, methods=["POST"]),
            ]
        )

    def answer(self, name: str, **headers: str) -> None:
        status, body = ERRORS[name]
        self.answers.append(
            Answer(status, body, {k.replace("_", "-"): v for k, v in headers.items()})
        )

    def _check_assertion(self, assertion: str) -> None:
        header64, claims64, signature64 = assertion.split(".")
        header = json.loads(b64d(header64))
        assert header == {
            "alg": "RS256",
            "typ": "JWT",
            "kid": self.account["private_key_id"],
        }, header
        self.public_key.verify(
            b64d(signature64),
            f"{header64}.{claims64}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        claims = json.loads(b64d(claims64))
        now = self.now()
        assert claims["iss"] == self.account["client_email"]
        assert claims["scope"] == SCOPE
        assert claims["aud"] == self.account["token_uri"]
        assert claims["iat"] <= now + 60, "issued in the future"
        assert now < claims["exp"] <= claims["iat"] + 3600, "expired or too long"

    async def token(self, request: Request) -> Response:
        self.token_requests += 1
        form = parse_qs((await request.body()).decode())
        try:
            assert request.headers["content-type"] == "application/x-www-form-urlencoded"
            assert form["grant_type"] == [GRANT]
            self._check_assertion(form["assertion"][0])
        except (AssertionError, KeyError, ValueError, InvalidSignature) as exc:
            self.refused.append(f"token: {exc!r}")
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        if self.token_answers:
            a = self.token_answers.pop(0)
            return JSONResponse(a.body, status_code=a.status, headers=a.headers)
        access = secrets.token_urlsafe(24)
        self.issued[access] = self.now() + self.token_lifetime
        return JSONResponse(
            {"access_token": access, "expires_in": self.token_lifetime, "token_type": "Bearer"}
        )

    async def send(self, request: Request) -> Response:
        scheme, _, access = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or self.issued.get(access, 0) <= self.now():
            self.refused.append("send: no live access token")
            return JSONResponse(fcm_error(401, "UNAUTHENTICATED")[1], status_code=401)
        try:
            assert request.path_params["project"] == self.account["project_id"]
            body = json.loads(await request.body())
            assert set(body) == {"message"}
            message = body["message"]
            assert isinstance(message["token"], str)
            assert all(isinstance(v, str) for v in message["data"].values())
            ttl = message.get("android", {}).get("ttl")
            if ttl is not None and not (_DURATION.match(ttl) and float(ttl[:-1]) <= MAX_TTL):
                self.refused.append(f"send: android.ttl {ttl}")
                status, error = ERRORS["INVALID_ARGUMENT"]  # names message.android.ttl
                return JSONResponse(error, status_code=status)
        except (AssertionError, KeyError, ValueError) as exc:
            self.refused.append(f"send: {exc!r}")
            status, error = fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT")
            return JSONResponse(error, status_code=status)
        self.received.append(message)
        token = message["token"]
        if token in self.unregistered or self.failing.get(token):
            name = "UNREGISTERED" if token in self.unregistered else self.failing[token].pop(0)
            status, error = ERRORS[name]
            return JSONResponse(error, status_code=status)
        if self.answers:
            a = self.answers.pop(0)
            return JSONResponse(a.body, status_code=a.status, headers=a.headers)
        project = self.account["project_id"]
        return JSONResponse({"name": f"projects/{project}/messages/{len(self.received)}"})
