"""The dead-letter list reads each letter's event type by parsing its payload."""

from __future__ import annotations

import json

import pytest

from couples_nudge.common.dead_letters import DeadLetter
from couples_nudge_schemas import MAX_EVENT_BYTES


def letter(data: bytes) -> DeadLetter:
    return DeadLetter(
        id="1-0",
        source="nudges:due:{s00}",
        entry_id="9-0",
        reason="delivered 6 times without success",
        attempts=6,
        at="2026-12-01T00:00:00+00:00",
        couple_id="c1",
        data=data,
    )


class TestEventType:
    @pytest.mark.parametrize(
        "data",
        [
            b'{"type":"nudge.due.v1"}',
            b'{"type": "nudge.due.v1"}',
            b'{\n  "type" :\t"nudge.due.v1"\n}',
            b'{"data": {"type": "preferences.set.v1"}, "type": "nudge.due.v1"}',
            json.dumps({"event_id": "e", "type": "nudge.due.v1"}, indent=4).encode(),
        ],
        ids=["compact", "spaced", "whitespace", "nested-type-first", "indented"],
    )
    def test_the_type_is_read_however_the_json_is_written(self, data: bytes) -> None:
        """Any valid JSON layout gives the top-level `type`, not a pattern's first match."""
        assert letter(data).event_type == "nudge.due.v1"

    @pytest.mark.parametrize(
        "data",
        [
            b"",
            b"\xff\xfe not UTF-8",
            b'{"type": "nudge.due.v1"',
            b"[" * 50_000,
            b'["type", "nudge.due.v1"]',
            b'{"type": 7}',
            b'{"kind": "nudge.due.v1"}',
            b'{"type": "Lena Secret-Name lena.private@example.test"}',
            b'{"type": "nudge.due.v1\\u0000"}',
            json.dumps({"type": "nudge.due.v1", "pad": "x" * MAX_EVENT_BYTES}).encode(),
        ],
        ids=[
            "empty",
            "binary",
            "broken",
            "deep",
            "array",
            "number",
            "missing",
            "personal-text",
            "control",
            "oversized",
        ],
    )
    def test_no_readable_event_type_shows_as_a_question_mark(self, data: bytes) -> None:
        """Unparseable, oversized or odd payloads show `?`, never their text."""
        assert letter(data).event_type == "?"
