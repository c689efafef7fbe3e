"""Rejection reasons: bounded, printable, and never a piece of the input beyond plain keys."""

from __future__ import annotations

import json

import pytest

from couples_nudge_schemas import (
    REASON_LIMIT,
    EventRejected,
    parse_due,
    parse_preference,
    safe_reason,
)
from tests.support.events import example
from tests.support.hostile import PERSONAL, single_field_breaks

SECRETS = ("lena.private", "Lena", "Secret-Name", "example.test")


def reason_of(raw: bytes | str) -> str:
    with pytest.raises(EventRejected) as caught:
        parse_preference(raw)
    return caught.value.reason


class TestReasons:
    def test_a_huge_type_is_not_echoed(self) -> None:
        """A 60,000-character type gives a short reason listing the expected types."""
        reason = reason_of(json.dumps({"type": "x" * 60_000}))
        assert reason.startswith("event: 'type' does not match any of the expected tags: ")
        assert "xxx" not in reason
        assert len(reason) <= REASON_LIMIT

    @pytest.mark.parametrize(
        ("tag", "expected"),
        [
            (
                "preferences.set.v2",
                "event: type: v2 of preferences.set is not read here (read: preferences.set.v1); "
                "upgrade the reader first",
            ),
            ("datejar.idea_added.v0010", "event: type: v10 of datejar.idea_added is not read"),
        ],
    )
    def test_an_unknown_version_of_a_known_event_says_so(self, tag: str, expected: str) -> None:
        """A publisher ahead of the service is told apart from a typo: the reason names the
        versions this service reads (the name is the service's; only the number is read)."""
        assert reason_of(json.dumps({"type": tag})).startswith(expected)

    @pytest.mark.parametrize(
        "tag", ["preferences.deleted.v1", "Preferences.set.v2", "preferences.set.v12345", "set.v2"]
    )
    def test_an_unknown_event_is_not_taken_for_a_version(self, tag: str) -> None:
        assert reason_of(json.dumps({"type": tag})).startswith(
            "event: 'type' does not match any of the expected tags: "
        )

    @pytest.mark.parametrize(
        "event",
        [
            {"type": PERSONAL},
            {"type": "preferences.set.v1", PERSONAL: 1},
            {"type": "couple.erased.v1", "producer": PERSONAL},
            {"type": "couple.erased.v1", "data": {"couple_id": PERSONAL}},
            {"type": "couple.erased.v1", "data": {PERSONAL * 1000: PERSONAL}},
        ],
        ids=["type", "key", "value", "nested-value", "huge-key"],
    )
    def test_personal_text_is_not_in_the_reason(self, event: dict[str, object]) -> None:
        """Names and addresses in types, keys or values do not reach the reason."""
        reason = reason_of(json.dumps(event))
        assert [s for s in SECRETS if s in reason] == []

    def test_a_long_plain_key_is_cut_and_an_odd_one_hidden(self) -> None:
        """Keys are shown (they name the problem) only when plain, and cut at 40 characters."""
        data = {"couple_id": "c1", "k" * 5_000: 1, "bad\x1bkey": 2}
        reason = reason_of(json.dumps({**example(), "type": "couple.erased.v1", "data": data}))
        assert f"couple.erased.v1.data.{'k' * 37}...: Extra inputs" in reason
        assert "couple.erased.v1.data.?: Extra inputs" in reason
        assert "k" * 41 not in reason

    def test_every_single_field_break_has_a_bounded_printable_reason_without_personal_text(
        self,
    ) -> None:
        """Hundreds of breaks of a valid event, personal text in each field in turn."""
        reasons = []
        for fields in single_field_breaks(example()):
            reasons.append(reason_of(fields[b"__data__"]))
        assert len(reasons) > 500
        assert all(len(r) <= REASON_LIMIT and r.isprintable() for r in reasons)
        assert [r for r in reasons if any(s in r for s in SECRETS)] == []

    def test_due_reasons_are_bounded_too(self) -> None:
        """The notifier's parser makes the same reasons."""
        with pytest.raises(EventRejected) as caught:
            parse_due(json.dumps({"type": "nudge.due.v1", "data": {PERSONAL: PERSONAL}}))
        assert len(caught.value.reason) <= REASON_LIMIT
        assert [s for s in SECRETS if s in caught.value.reason] == []


class TestSafeReason:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("plain", "plain"),
            ("a\x00b\x1bc\u0085d\u2028e", "a\\x00b\\x1bc\\x85d\\u2028e"),
            ("x" * 1000, "x" * (REASON_LIMIT - 3) + "..."),
            ("é and 漢字", "é and 漢字"),
        ],
        ids=["plain", "controls", "long", "letters"],
    )
    def test_a_reason_is_printable_and_bounded(self, text: str, expected: str) -> None:
        """Controls and separators are escaped, the whole cut at REASON_LIMIT characters."""
        assert safe_reason(text) == expected

    def test_event_rejected_makes_any_reason_safe(self) -> None:
        """Whoever raises EventRejected, its reason is bounded and printable."""
        assert EventRejected("\x1b[31m" + "y" * 10_000).reason == safe_reason(
            "\x1b[31m" + "y" * 10_000
        )
        assert len(EventRejected("z" * 10_000).reason) == REASON_LIMIT
