"""Which channels the notifier wires up: email always, the others only when configured."""

from __future__ import annotations

from pydantic import SecretStr

from couples_nudge.notifier.channels.email import SmtpChannel
from couples_nudge.notifier.channels.webhook import WebhookChannel
from couples_nudge.notifier.channels.webpush import WebPushChannel
from couples_nudge.notifier.service import default_channels
from couples_nudge.notifier.settings import NotifierSettings

# RFC 8291 appendix A's application server key (raw form).
VAPID = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"


class TestDefaultChannels:
    async def test_email_only_by_default(self) -> None:
        """Unconfigured, only email is wired; push and webhook nudges become no_channel."""
        channels = default_channels(NotifierSettings())
        try:
            assert list(channels) == ["email"]
            assert isinstance(channels["email"], SmtpChannel)
        finally:
            for channel in channels.values():
                await channel.close()

    async def test_push_and_webhook_when_configured(self) -> None:
        """A VAPID key and subject add Web Push; a URL and secret add the webhook."""
        settings = NotifierSettings(
            vapid_private_key=SecretStr(VAPID),
            vapid_subject="mailto:ops@example.org",
            webhook_url="https://app.example.org/hooks/nudges",
            webhook_secret=SecretStr("whsec-0123456789"),
        )
        channels = default_channels(settings)
        try:
            assert sorted(channels) == ["email", "push", "webhook"]
            assert isinstance(channels["push"], WebPushChannel)
            assert isinstance(channels["webhook"], WebhookChannel)
            assert {name: channel.name for name, channel in channels.items()} == {
                "email": "email",
                "push": "push",
                "webhook": "webhook",
            }
        finally:
            for channel in channels.values():
                await channel.close()
