"""mime's per-email shortcuts of h/render10: the Date header by the last instant's identity,
the time's quoted-printable line kept as a str, and build_email by position."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest

from couples_nudge.notifier import mime
from couples_nudge.notifier.mime import QpPlan, build_email, qp

WHEN = datetime(2026, 12, 4, 18, 0, 5, 250_000, tzinfo=UTC)


class TestDateByIdentity:
    def test_every_instant_gets_its_own_header_in_any_order(self) -> None:
        """Instants one after another, again and back, in two zones: each the standard
        header of its own second and offset, never the last one's."""
        zone = timezone(timedelta(hours=-5))
        instants = [
            WHEN,
            WHEN,
            WHEN + timedelta(seconds=1),
            WHEN.astimezone(zone),
            WHEN.replace(microsecond=999_999),
            datetime(1999, 1, 1),  # naive
            WHEN,
        ]
        for when in instants:
            assert mime._date(when) == format_datetime(when.replace(microsecond=0))
            assert mime._date(when) == format_datetime(when.replace(microsecond=0))

    def test_the_last_instant_holds_no_more_than_the_instant(self) -> None:
        """What is kept is the datetime and its header alone."""
        mime._date(WHEN)
        assert mime._LAST_DATE[0] == (WHEN, format_datetime(WHEN.replace(microsecond=0)))


class TestCachedTimeLine:
    def test_a_text_with_the_time_line_cached_equals_b2a_qp(self) -> None:
        """The time's line (a no-break space) from the str cache, beside literal lines."""
        parts = ("Date night\n", "\n\n", "\nbye\n")
        plan = QpPlan.plan(parts, (0, 1), cut=(0, 1), cached=(0,))
        assert plan is not None
        for when_line in ("Friday at 7:00\u202fPM", "Friday at 8:00\u00a0PM", "plain time"):
            values = [when_line, "Hi Sam,"]
            for _ in range(2):  # a miss, then the cache
                encoded = plan.encode(values)
                assert encoded is not None
                text = f"{parts[0]}{values[0]}{parts[1]}{values[1]}{parts[2]}"
                assert encoded.data == qp(text)


class TestAutoSubmittedLine:
    def test_the_constant_header_gives_the_bytes_of_the_same_header_joined(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """mime.AUTO_SUBMITTED passed alone writes the line its own join would."""
        kw: dict[str, Any] = {
            "subject": "Date night",
            "sender": "Nudges <nudges@example.test>",
            "to_name": "Sam",
            "to_address": "sam@example.test",
            "when": WHEN,
            "text": "Hi Sam,\n",
            "html": "<p>Hi Sam,</p>\n",
        }
        monkeypatch.setattr(mime, "_SERIALS", itertools.count(7))
        constant = build_email(**kw, extra_headers=mime.AUTO_SUBMITTED)
        monkeypatch.setattr(mime, "_SERIALS", itertools.count(7))
        joined = build_email(**kw, extra_headers=[("Auto-Submitted", "auto-generated")])
        assert constant == joined
        assert b"\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\n" in constant
