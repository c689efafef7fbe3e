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
