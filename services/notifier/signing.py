"""HMAC-SHA256 with the key's two padded states hashed once per key. Pure.

Every email carries signed links (unsubscribe.py, actions.py: five answers and the manage link)
and a signed Message-ID (message_ids.py): seven MACs an email. `hmac.new(key, msg, sha256)`
keys OpenSSL 3 anew on every call (~28k instructions each, callgrind); here the keyed states
are made once and copied per message (~15k). The library's own way to the same end, an
`hmac.new(key, digestmod=sha256)` made once and `.copy()`-ed per message, measured 2.3 us a
MAC against 1.4 us here and 3.2-3.6 us for `hmac.new` (timeit, 80-byte messages, 2026-12-06).
It relies on RFC 2104 alone:

    HMAC(K, m) = H((K' ^ opad) || H((K' ^ ipad) || m))

with K' the key zero-padded to the block (64 bytes for SHA-256), hashed first when longer,
exactly as the standard library's `hmac` builds it. Test: tests/property/test_signing.py
(equal to `hmac.new` for any key and message).
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["Sha256Mac"]

_BLOCK: Final = 64  # SHA-256's block size in bytes
_IPAD: Final = bytes(x ^ 0x36 for x in range(256))  # as translate tables (hmac.py's way)
_OPAD: Final = bytes(x ^ 0x5C for x in range(256))


class Sha256Mac:
    """HMAC-SHA256 under one key: `digest(msg)` is `hmac.new(key, msg, sha256).digest()`."""

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\x00")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()
