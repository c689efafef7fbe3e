"""An outcome's event_id is exactly the standard library's UUIDv5 of what it is about."""

from __future__ import annotations

import uuid

from hypothesis import given
from hypothesis import strategies as st

from couples_nudge.notifier.outcomes import _NS, outcome_id


class TestOutcomeId:
    @given(st.text(max_size=200))
    def test_equals_uuid5(self, about: str) -> None:
        """Any name, non-ASCII and surrogate-free text included: the same UUID, version 5."""
        made = outcome_id(about)
        assert made == uuid.uuid5(_NS, about)
        assert made.version == 5
        assert str(made) == str(uuid.uuid5(_NS, about))

    def test_a_uuid_is_its_two_slots(self) -> None:
        """`outcome_id` sets a UUID's state through its slots' descriptors: `int` and
        `is_safe` are all of it (a UUID made so equals, hashes and prints as uuid5's)."""
        assert uuid.UUID.__slots__ == ("int", "is_safe", "__weakref__")
        made = outcome_id("x")
        assert made.is_safe is uuid.SafeUUID.unknown
        assert hash(made) == hash(uuid.uuid5(_NS, "x"))
