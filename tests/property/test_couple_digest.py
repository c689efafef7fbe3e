"""`keys.couple_digest` (a prebuilt hash copied per call, issue 20) equals the plain blake2b of
the couple id with a 12-byte digest, for any id, and a call leaves the prebuilt hash empty."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from couples_nudge.common.keys import couple_digest


class TestCoupleDigest:
    @given(st.text())
    def test_equals_a_new_blake2b(self, couple_id: str) -> None:
        """The digest is blake2b(id in UTF-8, digest_size=12) in hex, the same on a repeat."""
        expected = hashlib.blake2b(couple_id.encode(), digest_size=12).hexdigest()
        assert couple_digest(couple_id) == expected
        assert couple_digest(couple_id) == expected

    def test_known_value(self) -> None:
        """A fixed id's digest: the tombstones already stored keep their names."""
        assert couple_digest("c0000001") == "cdcd77f12add0e3a0a4e845c"
