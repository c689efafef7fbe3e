"""build_email's head, written from a per-sender opening and one f-string per email, is byte
for byte the head of the reference: every header line built, measured and joined apart, as
build_email did before (kept here), with the standard library's path for anything too long."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.notifier import mime
from couples_nudge.notifier.mime import _MAX_HEADER_LINE, Encoded, build_email


def _reference(kw: dict[str, Any]) -> bytes:
    """build_email before its per-sender opening, for str parts."""
    subject, sender, to_name, to_address = (
        kw["subject"],
        kw["sender"],
        kw["to_name"],
        kw["to_address"],
    )
    when, text, html, extra_headers = kw["when"], kw["text"], kw["html"], kw["extra_headers"]
    message_id = kw["message_id"]
    serial = next(mime._SERIALS)
    message_id = message_id or f"<{serial}.{mime._PROCESS_TOKEN}@example.test>"
    if not (to_address.isascii() and sender.isascii()):
        return mime._slow(
            subject, sender, to_name, to_address, when, text, html, extra_headers, message_id
        )
    lines = [
        f"Subject: {mime._text(subject)}",
        f"From: {sender}",
        f"To: {mime._to(to_name, to_address)}",
        f"Date: {mime._date(when)}",
        f"Message-ID: {message_id}",
        *[f"{name}: {mime._text(value, name)}" for name, value in extra_headers],
        "MIME-Version: 1.0",
    ]
    if max(map(len, lines)) > _MAX_HEADER_LINE:
        return mime._slow(
            subject, sender, to_name, to_address, when, text, html, extra_headers, message_id
        )
    boundary = f"=_nudge_{mime._PROCESS_TOKEN}_{serial:x}"
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n')
    out = ["\r\n".join(lines).encode()]
    text_7bit = mime._seven_bit(text, boundary)
    encoded = (
        Encoded("7bit", text_7bit) if text_7bit else Encoded("quoted-printable", mime._qp(text))
    )
    html_7bit = mime._seven_bit(html, boundary)
    html_encoded = (
        Encoded("7bit", html_7bit) if html_7bit else Encoded("base64", mime._base64(html))
    )
    for subtype, (encoding, body) in (("plain", encoded), ("html", html_encoded)):
        head = f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
        out += [f"{head}Content-Transfer-Encoding: {encoding}\r\n".encode(), body]
    out.append(f"--{boundary}--\r\n".encode())
    return b"\r\n".join(out)


@pytest.fixture(autouse=True)
def _fixed_serials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both builds of an email get the same boundary (a serial per message)."""
    monkeypatch.setattr(mime, "_SERIALS", itertools.repeat(7))


# Texts of any length around a header line's 998 characters, ASCII or not.
LONG = st.one_of(st.just(0), st.integers(380, 1000)).map(lambda n: "x" * n)
TEXT = st.tuples(
    LONG, st.text(alphabet=st.sampled_from("ab <>\"'=.,;\u00e4\u00a0\U0001f496"), max_size=12)
).map("".join)
ADDRESS = st.sampled_from(["maya@example.org", "m\u00e4ya@example.org", "a.b+c@example.test"])
SENDER = st.sampled_from(["Nudges <nudges@example.org>", "N\u00fcdges <nudges@example.org>"])
MESSAGE_ID = st.tuples(LONG, st.text(alphabet="ab09.-_", min_size=1, max_size=8)).map(
    lambda t: f"<n1{''.join(t)}@example.test>"  # a dot-atom: what the library's path reads
)
HEADERS = st.lists(
    st.tuples(st.sampled_from(["List-Unsubscribe", "X-SMTPAPI", "Auto-Submitted"]), TEXT),
    max_size=4,
)


class TestEmailHead:
    @settings(max_examples=300, deadline=None)
    @given(
        subject=TEXT,
        sender=SENDER,
        to_name=TEXT,
        to_address=ADDRESS,
        extra_headers=HEADERS,
        message_id=st.none() | MESSAGE_ID,
        text=TEXT,
        html=TEXT,
        second=st.integers(0, 59),
    )
    def test_the_email_is_the_reference_s(
        self,
        subject: str,
        sender: str,
        to_name: str,
        to_address: str,
        extra_headers: list[tuple[str, str]],
        message_id: str | None,
        text: str,
        html: str,
        second: int,
    ) -> None:
        """Any subject, names, headers and Message-ID, long lines near 998 characters and
        non-ASCII (the standard library's path): the reference's bytes."""
        kw: dict[str, Any] = {
            "subject": subject,
            "sender": sender,
            "to_name": to_name,
            "to_address": to_address,
            "when": datetime(2026, 12, 4, 18, 0, second, tzinfo=UTC),
            "text": text,
            "html": html,
            "extra_headers": extra_headers,
            "message_id": message_id,
        }
        random.seed(1)  # the standard library's path draws its boundary from `random`
        built = build_email(**kw, message_domain="example.test")
        random.seed(1)
        assert built == _reference(kw)

    @pytest.mark.parametrize("length", range(980, 1000))
    def test_lines_at_the_limit(self, length: int) -> None:
        """A Message-ID line of 980 to 999 characters: on our path up to 998, the standard
        library's beyond; a To, a Message-ID and a header that are that long together, each
        line short: on our path."""
        message_id = f"<{'m' * (length - len('Message-ID: <@example.test>'))}@example.test>"
        header = "u" * (length - len("m@x.io") - len("<m@example.test>") - 3)
        cases: list[tuple[dict[str, Any], bool]] = [
            ({"message_id": message_id, "extra_headers": []}, length <= _MAX_HEADER_LINE),
            ({"message_id": "<m@example.test>", "extra_headers": [("X", header)]}, True),
        ]
        for kw, ours in cases:
            kw |= {
                "subject": "Date night",
                "sender": "Nudges <nudges@example.org>",
                "to_name": "",
                "to_address": "m@x.io",  # short: the other lines leave the most room
                "when": datetime(2026, 12, 4, 18, tzinfo=UTC),
                "text": "Hi",
                "html": "<p>Hi</p>",
            }
            random.seed(1)
            built = build_email(**kw, message_domain="example.test")
            random.seed(1)
            assert built == _reference(kw)
            assert (b"=_nudge_" in built) == ours
