"""OAuth 2.0 access tokens for FCM from a Google service-account key (RFC 7523 JWT bearer grant).

The service account's JSON key names the signing key, the account and the token endpoint
(`token_uri`). A token request POSTs an RS256 JWT assertion

    header  {"alg": "RS256", "typ": "JWT", "kid": <private_key_id>}
    claims  {"iss": <client_email>, "scope": ".../auth/firebase.messaging",
             "aud": <token_uri>, "iat": now, "exp": now + 3600}

as `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<jwt>` and gets
`{"access_token", "expires_in", "token_type": "Bearer"}`. The token is cached until shortly
before it expires (`renew_before`, at most half its lifetime); concurrent sends that find it
stale wait on one asyncio lock, so they cause one token request between them; when it fails,
those that waited for it fail alike (one request, not one per waiting send). A token the
send endpoint refused (401) is dropped with `invalidate`, once for all who held it.

Token endpoint answers: 2xx with a token -> cached; 429/5xx, timeouts, network errors ->
TransientSendError; anything else (invalid_grant: a revoked key, a wrong clock) ->
PermanentSendError, never `gone` (it says nothing about any device). Keys never reach logs or
error texts. PyJWT signs; google-auth would do the same with a synchronous HTTP client.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal
from urllib.parse import urlencode

import httpx
import jwt
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from couples_nudge.notifier.channels.http_client import HttpSender, retry_after
from couples_nudge.notifier.errors import PermanentSendError, SendError, TransientSendError

__all__ = ["SCOPE", "AccessTokens", "ServiceAccount", "load_service_account"]

SCOPE: Final = "https://www.googleapis.com/auth/firebase.messaging"
GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_ASSERTION_LIFETIME: Final = 3600  # Google's maximum
_MAX_TOKEN_BYTES: Final = 8192


class ServiceAccount(BaseModel):
    """The fields of a service-account JSON key that FCM needs (others are ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: Literal["service_account"]
    project_id: str
    private_key_id: str
    private_key: SecretStr
    client_email: str
    token_uri: str


def load_service_account(path: Path) -> ServiceAccount:
    """Read and check a key file; errors name the problem, never the file's content."""
    try:
        account = ServiceAccount.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ValueError(f"fcm_credentials_file cannot be read ({type(exc).__name__})") from None
    except ValidationError as exc:
        fields = sorted({str(e["loc"][0]) for e in exc.errors() if e["loc"]})
        raise ValueError(
            f"fcm_credentials_file is not a service-account key (check: {', '.join(fields)})"
        ) from None
    try:
        jwt.api_jws.get_algorithm_by_name("RS256").prepare_key(
            account.private_key.get_secret_value()
        )
    except (ValueError, TypeError, jwt.InvalidKeyError):
        raise ValueError("fcm_credentials_file: private_key is not an RSA key in PEM") from None
    return account


class AccessTokens:
    """One cached access token, refreshed once for all concurrent callers."""

    def __init__(
        self,
        account: ServiceAccount,
        http: HttpSender,
        *,
        wall_clock: Callable[[], float] = time.time,
        renew_before: float = 300.0,
    ) -> None:
        self._account = account
        self._http = http
        self._now = wall_clock  # JWT iat/exp are checked by Google's clock: wall time
        self._renew_before = renew_before
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._renew_at = 0.0
        self._failed: SendError | None = None  # how the latest request failed, if it did
        self._finished = 0  # token requests that have ended (a waiter compares)
        self.requests = 0  # token requests made (operators' metric, tests)

    async def get(self) -> str:
        token = self._token
        if token is not None and self._now() < self._renew_at:
            return token
        seen = self._finished
        async with self._lock:
            if self._token is not None and self._now() < self._renew_at:
                return self._token  # another caller refreshed it while this one waited
            if self._finished != seen and self._failed is not None:
                raise _again(self._failed)  # the request this caller waited for failed
            self._failed = None
            try:
                return await self._refresh()
            except SendError as exc:
                self._failed = exc
                raise
            finally:
                self._finished += 1

    def invalidate(self, token: str) -> None:
        """The send endpoint refused `token`: the next `get` fetches a new one (once)."""
        if self._token == token:
            self._token = None

    def assertion(self, now: int) -> str:
        a = self._account
        claims = {
            "iss": a.client_email,
            "scope": SCOPE,
            "aud": a.token_uri,
            "iat": now,
            "exp": now + _ASSERTION_LIFETIME,
        }
        return jwt.encode(
            claims,
            a.private_key.get_secret_value(),
            algorithm="RS256",
            headers={"kid": a.private_key_id},
        )

    async def _refresh(self) -> str:
        now = int(self._now())
        body = urlencode({"grant_type": GRANT_TYPE, "assertion": self.assertion(now)}).encode()
        self.requests += 1
        response = await self._http.exchange(
            self._account.token_uri,
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientSendError(
                "mobile",
                f"HTTP {status} oauth",
                retry_after=retry_after(response.headers.get("retry-after")),
            )
        if status != 200:
            raise PermanentSendError("mobile", f"HTTP {status} oauth: {_oauth_error(response)}")
        try:
            answer = json.loads(response.content[:_MAX_TOKEN_BYTES])
            token, lifetime = answer["access_token"], float(answer["expires_in"])
        except (ValueError, KeyError, TypeError):
            raise TransientSendError("mobile", "HTTP 200 oauth: unreadable token") from None
        if not isinstance(token, str) or not token or lifetime <= 0:
            raise TransientSendError("mobile", "HTTP 200 oauth: unreadable token")
        self._token = token
        self._renew_at = now + lifetime - min(self._renew_before, lifetime / 2)
        return token


def _again(error: SendError) -> SendError:
    """A fresh copy of a token request's failure, for each caller that waited for it."""
    if isinstance(error, TransientSendError):
        return TransientSendError(error.channel, error.detail, retry_after=error.retry_after)
    if isinstance(error, PermanentSendError):
        return PermanentSendError(error.channel, error.detail, gone=error.gone)
    return SendError(error.channel, error.detail)


_OAUTH_ERRORS: Final = frozenset(
    {
        "invalid_grant",
        "invalid_client",
        "invalid_request",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "access_denied",
    }
)


def _oauth_error(response: httpx.Response) -> str:
    """RFC 6749's error code if it is one of the standard ones (never free text)."""
    try:
        error = json.loads(response.content[:4096])["error"]
    except (ValueError, KeyError, TypeError):
        return "error"
    return error if error in _OAUTH_ERRORS else "error"
