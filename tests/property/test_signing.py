"""HMAC-SHA256 from the key's hashed pads is the standard library's HMAC, byte for byte."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.notifier.signing import Sha256Mac


class TestSha256Mac:
    @settings(max_examples=500)
    @given(key=st.binary(max_size=200), messages=st.lists(st.binary(max_size=300), max_size=4))
    def test_equals_hmac_new(self, key: bytes, messages: list[bytes]) -> None:
        """Keys shorter than, as long as and longer than the 64-byte block, empty ones; any
        messages, several under one key: hmac.new's digest each time."""
        mac = Sha256Mac(key)
        for message in messages:
            assert mac.digest(message) == hmac.new(key, message, hashlib.sha256).digest()

    def test_block_sized_keys(self) -> None:
        for size in (63, 64, 65):
            key = bytes(range(size))
            assert Sha256Mac(key).digest(b"m") == hmac.new(key, b"m", hashlib.sha256).digest()
