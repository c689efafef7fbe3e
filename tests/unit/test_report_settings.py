"""Settings of the relay webhooks: refused when they cannot work, never echoing a secret."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from couples_nudge.notifier.settings import NotifierSettings
from tests.support.relays import FakeSendGrid

BASE: dict[str, Any] = {"redis_url": SecretStr("redis://127.0.0.1:1/0")}
UNSUBSCRIBE: dict[str, Any] = {
    "public_url": "https://nudges.example.org",
    "unsubscribe_secrets": [SecretStr("k1:" + "s" * 40)],
}


class TestReportSettings:
    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ({"mailgun_signing_key": SecretStr("k" * 20)}, "need unsubscribe_secrets"),
            (UNSUBSCRIBE | {"sendgrid_public_key": "bm90IGEga2V5"}, "not a base64 DER or PEM"),
            (UNSUBSCRIBE | {"ses_topic_arns": "arn:aws:s3:::bucket"}, "SNS topic ARNs"),
            (UNSUBSCRIBE | {"postmark_webhook_user": "pm"}, "go together"),
            (UNSUBSCRIBE | {"sns_cert_host_pattern": "("}, "not a regular expression"),
        ],
    )
    def test_refused(self, values: dict[str, Any], message: str) -> None:
        """Each impossible configuration is refused with a reason naming the setting."""
        with pytest.raises(ValidationError, match=message) as caught:
            NotifierSettings(**BASE, **values)
        assert "k" * 20 not in str(caught.value)

    def test_accepted_and_enabled(self) -> None:
        """Comma-separated topic ARNs and a SendGrid key as its settings page shows it."""
        arns = "arn:aws:sns:eu-west-1:123456789012:a, arn:aws:sns:us-east-1:123456789012:b"
        settings = NotifierSettings.model_validate(
            BASE
            | UNSUBSCRIBE
            | {"ses_topic_arns": arns, "sendgrid_public_key": FakeSendGrid().public_key}
        )
        assert len(settings.ses_topic_arns) == 2
        assert settings.reports_enabled
        assert not NotifierSettings(**BASE).reports_enabled
