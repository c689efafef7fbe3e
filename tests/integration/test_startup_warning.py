"""Start-up says so, once, when email goes out without one-click unsubscribe (Gmail and Yahoo
require it of bulk senders): no NUDGE_PUBLIC_URL and unsubscribe secrets."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from structlog.testing import capture_logs

from couples_nudge.notifier.service import NotifierService
from tests.support.settings import notifier_settings

UNSUBSCRIBE = {
    "public_url": "https://nudges.example.org",
    "unsubscribe_secrets": [SecretStr("k1:" + "s" * 40)],
}


class TestStartupWarning:
    @pytest.mark.parametrize(("extra", "warnings"), [({}, 1), (UNSUBSCRIBE, 0)])
    async def test_warns_once_without_unsubscribe(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        extra: dict[str, Any],
        warnings: int,
    ) -> None:
        """Without public URL and secrets: one warning line naming both settings; with
        them: none."""
        notifier = NotifierService(notifier_settings(redis_url, key_prefix, **extra))
        with capture_logs() as logs:
            await notifier.start()
            await notifier.stop()
        found = [line for line in logs if line["event"] == "email_without_unsubscribe"]
        assert len(found) == warnings
        if found:
            assert found[0]["log_level"] == "warning"
            assert "NUDGE_PUBLIC_URL" in found[0]["hint"]
            assert "NUDGE_UNSUBSCRIBE_SECRETS" in found[0]["hint"]
