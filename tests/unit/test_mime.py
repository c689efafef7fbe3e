"""The hand-built email: valid MIME on the wire, read back by the standard library as written."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import pytest

from couples_nudge.notifier.mime import build_email

WHEN = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
LONG_URL = "https://nudges.example/u/" + "x" * 400


def _read(raw: bytes) -> EmailMessage:
    # SMTPUTF8 headers are raw UTF-8 bytes: read them as text, as a receiving server does.
    message = email.message_from_string(raw.decode("utf-8"), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _build(**overrides: object) -> bytes:
    options: dict[str, object] = {
        "subject": "Date night",
        "sender": "Nudges <nudges@example.org>",
        "to_name": "Maya",
        "to_address": "maya@example.org",
        "when": WHEN,
        "text": "Hi Maya,\nIt's Sam's turn.\n",
        "html": "<p>Hi Maya,</p>\n<p>It&#39;s Sam&#39;s turn.</p>\n",
    }
    return build_email(**(options | overrides))  # type: ignore[arg-type]


class TestWireFormat:
    def test_every_line_ends_in_crlf_and_fits_998_characters(self) -> None:
        """No bare LF anywhere; no line longer than RFC 5322 allows."""
        raw = _build(text="a" * 3000 + "\n", extra_headers=[("List-Unsubscribe", f"<{LONG_URL}>")])
        assert re.search(rb"(?<!\r)\n", raw) is None
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998

    def test_long_header_stays_on_one_line(self) -> None:
        """A long List-Unsubscribe URL is not folded (folded URLs break one-click clients)."""
        raw = _build(extra_headers=[("List-Unsubscribe", f"<{LONG_URL}>")])
        assert f"List-Unsubscribe: <{LONG_URL}>\r\n".encode() in raw

    def test_multipart_alternative_text_then_html(self) -> None:
        """Two parts, plain first (the fallback), HTML last (the preferred)."""
        message = _read(_build())
        assert message.get_content_type() == "multipart/alternative"
        parts = list(message.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]


class TestReadBack:
    @pytest.mark.parametrize(
        ("subject", "name"),
        [
            ("Date night", "Maya"),
            ("Zeit für euch ❤", "Zoë Ångström"),
            ('Say "thanks"', 'Jo "JJ" Li'),
        ],
    )
    def test_headers_and_bodies_read_back_exactly(self, subject: str, name: str) -> None:
        """Non-ASCII subjects and names, quotes in names: decoded, they are what was given."""
        text, html = f"Hi {name},\nübung macht\n", f"<p>Hi {name}, übung</p>\n"
        message = _read(_build(subject=subject, to_name=name, text=text, html=html))
        assert message["Subject"] == subject
        assert message["To"].addresses[0].display_name == name
        assert message["To"].addresses[0].addr_spec == "maya@example.org"
        plain, rich = message.iter_parts()
        assert plain.get_content().replace("\r\n", "\n") == text
        assert rich.get_content().replace("\r\n", "\n") == html

    def test_international_address_falls_back_to_smtputf8(self) -> None:
        """A non-ASCII address takes the standard library path and keeps the address as is."""
        message = _read(_build(to_address="zoë@example.org"))
        assert message["To"].addresses[0].addr_spec == "zoë@example.org"

    def test_each_message_gets_its_own_message_id(self) -> None:
        """Two renders of the same nudge never share a Message-ID."""
        assert _read(_build())["Message-ID"] != _read(_build())["Message-ID"]

    def test_each_message_gets_its_own_boundary(self) -> None:
        """Two renders never share a multipart boundary."""
        first, second = _read(_build()), _read(_build())
        assert first.get_boundary() != second.get_boundary()


def _encodings(raw: bytes) -> list[str]:
    return [str(p["Content-Transfer-Encoding"]) for p in _read(raw).iter_parts()]


class TestEncodedWords:
    # The longest name the schema accepts (40 characters), in scripts of two and three bytes a
    # character in UTF-8; a subject as long as the catalog's longest, all accented.
    @pytest.mark.parametrize(
        ("subject", "name"),
        [
            ("Date night", "Αλεξάνδρα-Κωνσταντίνα Παπαδοπούλου-Ξανθή"),
            ("Date night", "山田花子" * 10),
            ("Ünterstützung für größere Änderungen: ÄÖÜ", "Zoë"),
        ],
    )
    def test_each_at_most_75_characters_on_lines_of_76(self, subject: str, name: str) -> None:
        """RFC 2047 2: an encoded-word is at most 75 characters and a header line holding one
        at most 76; a longer name or subject is several words, folded, and reads back whole."""
        raw = _build(subject=subject, to_name=name)
        head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
        for line in head.split("\r\n"):
            words = re.findall(r"=\?utf-8\?[qb]\?[^?]*\?=", line, re.IGNORECASE)
            assert all(len(word) <= 75 for word in words)
            assert not words or len(line) <= 76
        message = email.message_from_bytes(raw, policy=email.policy.strict)
        assert message["Subject"] == subject
        assert message["To"].addresses[0].addr_spec == "maya@example.org"
        # The name as RFC 2047 6.2 decodes it (the space that folds adjacent words away):
        # the standard library's address parser keeps that space in a display name.
        to_name, _ = parseaddr(str(email.message_from_bytes(raw)["To"]))
        assert str(make_header(decode_header(to_name))) == name


class TestDateHeader:
    def test_the_date_header_is_the_standard_one_at_any_microsecond(self) -> None:
        """Cached by the whole second (mime._date): the same header as format_datetime, in
        UTC and in another zone, whatever the microseconds."""
        for zone in (UTC, timezone(timedelta(hours=-5))):
            for micro in (0, 1, 499_999, 999_999):
                when = WHEN.replace(microsecond=micro).astimezone(zone)
                assert _read(_build(when=when))["Date"] == format_datetime(when)
                assert f"Date: {format_datetime(when)}\r\n".encode() in _build(when=when)


class TestSevenBit:
    def test_ascii_parts_with_short_lines_go_as_they_are(self) -> None:
        """ASCII text and HTML need no encoding: 7bit, read back exactly, CRLF line ends."""
        text, html = "Hi Maya,\nIt's = Sam's turn.\n", "<p>Hi Maya, a=b</p>\n"
        raw = _build(text=text, html=html)
        assert _encodings(raw) == ["7bit", "7bit"]
        assert b"<p>Hi Maya, a=b</p>\r\n" in raw
        plain, rich = _read(raw).iter_parts()
        assert plain.get_content().replace("\r\n", "\n") == text
        assert rich.get_content().replace("\r\n", "\n") == html

    @pytest.mark.parametrize(
        ("body", "why"),
        [
            ("Friday at 7:00\u202fPM\n", "not ASCII"),
            ("a" * 999 + "\n", "a line longer than 998 characters"),
            ("bare\rreturn\n", "a bare CR"),
            ("nul\x00\n", "a NUL"),
        ],
    )
    def test_other_parts_are_encoded(self, body: str, why: str) -> None:
        """What 7bit cannot carry is quoted-printable (text) and base64 (HTML), as before."""
        raw = _build(text=body, html=body)
        assert _encodings(raw) == ["quoted-printable", "base64"], why
        assert max(len(line) for line in raw.split(b"\r\n")) <= 998
        _, rich = _read(raw).iter_parts()
        assert rich.get_content() == body
