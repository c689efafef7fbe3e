"""APNs provider authentication tokens: an ES256 JWT from a .p8 signing key.

    header  {"alg": "ES256", "kid": <10-character key id>}
    claims  {"iss": <10-character team id>, "iat": <now>}

Apple refuses a token older than an hour (403 ExpiredProviderToken) and one replaced more
often than every 20 minutes (429 TooManyProviderTokenUpdates), so one token is reused for
`max_age` (50 minutes) and then replaced. Signing is synchronous and cheap (~0.1 ms): no
await lies between finding the token stale and storing the new one, so concurrent sends on
the event loop cannot sign twice (no lock is needed, unlike the FCM token request). After
ExpiredProviderToken the channel calls `invalidate(token)`: only the first caller holding
that token causes a new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["MAX_AGE", "ProviderToken", "load_p8"]

MAX_AGE: Final = 50 * 60.0


def load_p8(path: Path) -> ec.EllipticCurvePrivateKey:
    """The P-256 signing key of a .p8 file (PKCS#8 PEM); errors never quote the file."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ValueError(f"apns_key_file cannot be read ({type(exc).__name__})") from None
    except (ValueError, TypeError):
        raise ValueError("apns_key_file is not a PEM private key (.p8)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("apns_key_file must hold an EC P-256 key (.p8 from Apple)")
    return key


class ProviderToken:
    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        *,
        key_id: str,
        team_id: str,
        wall_clock: Callable[[], float] = time.time,
        max_age: float = MAX_AGE,
    ) -> None:
        self._key = key
        self._key_id = key_id
        self._team_id = team_id
        self._now = wall_clock  # Apple compares iat with its own clock: wall time
        self._max_age = max_age
        self._token: str | None = None
        self._issued = 0.0
        self.signed = 0  # tokens made (tests, operators)

    def get(self) -> str:
        now = self._now()
        if self._token is None or now - self._issued >= self._max_age:
            issued = int(now)
            self._token = jwt.encode(
                {"iss": self._team_id, "iat": issued},
                self._key,
                algorithm="ES256",
                headers={"kid": self._key_id},
            )
            self._issued = issued
            self.signed += 1
        return self._token

    def invalidate(self, token: str) -> None:
        """APNs called `token` expired: the next `get` signs a new one (once)."""
        if self._token == token:
            self._token = None
