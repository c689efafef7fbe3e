"""The reason word of a failed send's log line: a fixed vocabulary, never the detail."""

from __future__ import annotations

import pytest

from couples_nudge.notifier.retries import FAILURE_REASONS, failure_reason


class TestFailureReason:
    @pytest.mark.parametrize(
        ("detail", "reason"),
        [
            ("SMTP 451", "smtp_4xx"),
            ("SMTP 554", "smtp_5xx"),
            ("recipient refused [450]", "recipient_refused"),
            ("HTTP 429", "http_429"),
            ("HTTP 503", "http_5xx"),
            ("HTTP 408", "http_4xx"),
            ("timeout", "timeout"),
            ("SMTPConnectTimeoutError", "timeout"),
            ("ReadTimeout", "timeout"),
            ("SMTPConnectError", "connection"),
            ("SMTPServerDisconnected", "connection"),
            ("ConnectError", "connection"),
            ("ConnectionRefusedError", "connection"),
            ("SSLError", "tls"),
            ("SMTP 250", "other"),
            ("ValueError", "other"),
        ],
    )
    def test_details_map_to_their_category(self, detail: str, reason: str) -> None:
        """Each detail the channels produce falls into one category of the vocabulary."""
        assert failure_reason(detail) == reason
        assert reason in FAILURE_REASONS

    def test_an_address_in_a_detail_never_comes_out(self) -> None:
        """Whatever the detail holds, the reason is a word of the vocabulary."""
        reason = failure_reason("550 <maya@example.test>: mailbox unavailable")
        assert reason in FAILURE_REASONS
        assert "example" not in reason
