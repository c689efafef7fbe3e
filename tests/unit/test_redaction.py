"""Log redaction: linear in the text's length, and every logged value bounded."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable

import pytest
import structlog

from couples_nudge.common.logging import (
    LOG_TRACEBACK_LIMIT,
    LOG_VALUE_LIMIT,
    bounded,
    configure_logging,
    redact,
    scrub,
)

MEGABYTE = 1_000_000
GENEROUS_S = 1.0  # a responsiveness bound: the quadratic pattern took hours on a megabyte

HOSTILE_TEXTS: dict[str, Callable[[], str]] = {
    "no-at": lambda: "x" * MEGABYTE,
    "at-runs": lambda: "a@" * (MEGABYTE // 2),
    "at-first": lambda: "@" + "a" * MEGABYTE,
    "dots": lambda: "a@" + "b." * (MEGABYTE // 2),
    "long-words": lambda: ("x" * 10_000 + "@" + "y" * 10_000 + " ") * 50,
    "url-prefixes": lambda: "https://" * (MEGABYTE // 8),
    "addresses": lambda: "lena@example.test " * (MEGABYTE // 18),
    "unclosed-literals": lambda: "a@[1" * (MEGABYTE // 4),
    "quoted-values": lambda: "input_value=" * (MEGABYTE // 12),
    "quoted-lines": lambda: "input_value=x\n" * (MEGABYTE // 14),
}


class TestScrub:
    @pytest.mark.parametrize("make", HOSTILE_TEXTS.values(), ids=HOSTILE_TEXTS.keys())
    def test_a_megabyte_of_hostile_text_is_scrubbed_promptly(self, make: Callable[[], str]) -> None:
        """Any megabyte is scrubbed in well under a second (one event froze a service 16 s)."""
        text = make()
        started = time.perf_counter()
        scrub(text)
        took = time.perf_counter() - started
        print(f"scrub of {len(text):,} characters: {took * 1000:.0f} ms")
        assert took < GENEROUS_S

    def test_addresses_are_found_inside_a_megabyte(self) -> None:
        """The look-behind changes nothing found: an address deep in long text is replaced."""
        text = "x" * (MEGABYTE // 2) + " <lena.private@example.test>, " + "y" * (MEGABYTE // 2)
        assert scrub(text) == "x" * (MEGABYTE // 2) + " <[email]>, " + "y" * (MEGABYTE // 2)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("550 for <maya@example.test>", "550 for <[email]>"),
            ("a@b@example.test", "a@[email]"),
            ("'sam@example.test'", "'[email]'"),
            ("see https://push.example/abc?token=1 now", "see [url] now"),
            ("no address @ here", "no address @ here"),
            ("to lena@[192.0.2.1] and lena@[IPv6:2001:db8::1]", "to [email] and [email]"),
            ("lena@example.c0m, refused", "[email], refused"),
            (
                "name\n  Value error [type=pattern_checked, input_value='Lena\u200fS', "
                "input_type=str]\n    For further information",
                "name\n  Value error [type=pattern_checked, input_value=[redacted], "
                "input_type=str]\n    For further information",
            ),
            (
                "input_value={'name': 'Lena', 'email': 'x'}, input_type=dict]",
                "input_value=[redacted], input_type=dict]",
            ),
            ("input_value='cut off by a limit\nnext", "input_value=[redacted]\nnext"),
        ],
    )
    def test_what_is_replaced(self, text: str, expected: str) -> None:
        """Addresses, URLs and the values pydantic's errors quote, anywhere in a string; an `@`
        alone is kept."""
        assert scrub(text) == expected


class TestBounded:
    def test_a_long_value_is_cut_with_its_length(self) -> None:
        """Over LOG_VALUE_LIMIT characters, the value is cut and its full length noted."""
        value = "word " * MEGABYTE
        out = bounded(value)
        assert len(out) <= LOG_VALUE_LIMIT + 40
        assert out.endswith(f"... [cut: {len(value)} characters]")

    @pytest.mark.parametrize("shift", range(0, 30, 3))
    def test_an_address_cut_in_half_never_shows(self, shift: int) -> None:
        """The cut can split an address, which the pattern then misses: that word is dropped."""
        value = "a" * (LOG_VALUE_LIMIT - 20 + shift) + " lena.private@example.test and more"
        assert "lena" not in bounded(value)

    def test_redact_bounds_every_string_in_an_event(self) -> None:
        """Strings at any depth are bounded; a traceback keeps its end."""
        event = {
            "event": "x" * MEGABYTE,
            "reason": ["y" * MEGABYTE],
            "context": {"hint": "z" * MEGABYTE},
            "exception": "Traceback\n" + "frame\n" * MEGABYTE + "ValueError: the end",
        }
        out = redact(None, "warning", event)
        assert len(out["event"]) <= LOG_VALUE_LIMIT + 40
        assert len(out["reason"][0]) <= LOG_VALUE_LIMIT + 40
        assert len(out["context"]["hint"]) <= LOG_VALUE_LIMIT + 40
        assert len(out["exception"]) <= LOG_TRACEBACK_LIMIT + 40
        assert out["exception"].endswith("ValueError: the end")

    def test_a_logged_megabyte_makes_one_short_line_promptly(self) -> None:
        """Logging a megabyte reason through the configured pipeline: one bounded JSON line."""
        buffer = io.StringIO()
        configure_logging("test", "json", "info", stream=buffer, cache_loggers=False)
        started = time.perf_counter()
        structlog.get_logger().warning("rejected", reason="lena " + "x" * MEGABYTE)
        took = time.perf_counter() - started
        [line] = buffer.getvalue().splitlines()
        print(f"a megabyte logged in {took * 1000:.1f} ms as {len(line)} characters")
        assert len(line) < 2 * LOG_VALUE_LIMIT
        assert json.loads(line)["reason"].startswith("lena ")
        assert took < GENEROUS_S
