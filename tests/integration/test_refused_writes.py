"""While Redis refuses writes nothing is sent, and a send it refuses to record is not
forgotten (issue #15, item 2).

Each test runs its own valkey-server, because it changes the server's configuration:
`maxmemory` with `noeviction` (OOM, as in the incident) or `min-replicas-to-write` on a
server without replicas (NOREPLICAS: every write refused, scripts with allow-oom too).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, Literal

import pytest
import redis.asyncio as aioredis
from redis.exceptions import OutOfMemoryError
from structlog.testing import capture_logs

from couples_nudge.common.clock import ManualClock
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.embedded.valkey import EmbeddedValkey
from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.email import SmtpChannel
from couples_nudge.notifier.state import idempotency_key
from tests.support.events import example
from tests.support.notifier import delivery, due, plant
from tests.support.settings import notifier_settings

NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
COUPLE = "maya-sam"


@pytest.fixture
async def own_redis() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """A private server (its configuration is changed) and a client for it."""
    with EmbeddedValkey() as server:
        client = aioredis.Redis.from_url(server.url)
        try:
            yield client, server.url
        finally:
            await client.aclose()


class RecordRefusedAfterSend:
    """The real SMTP channel; right after its send, the server starts refusing every write
    (NOREPLICAS) for `seconds`: the record after the send meets the refusal."""

    name: Literal["email"] = "email"

    def __init__(self, smtp: SmtpChannel, admin: aioredis.Redis, seconds: float) -> None:
        self.smtp, self.admin, self.seconds = smtp, admin, seconds
        self.restored: asyncio.Task[Any] | None = None

    async def send(self, message: Outgoing) -> None:
        await self.smtp.send(message)
        await self.admin.config_set("min-replicas-to-write", 1)
        self.restored = asyncio.create_task(self._restore())

    async def _restore(self) -> None:
        await asyncio.sleep(self.seconds)
        await self.admin.config_set("min-replicas-to-write", 0)

    async def close(self) -> None:
        await self.smtp.close()


class TestOutOfMemory:
    async def test_a_held_slot_does_not_let_a_send_through_under_oom(
        self, own_redis: tuple[aioredis.Redis, str], mail: MailCatcher
    ) -> None:
        """The first attempt takes the cap slot and fails transiently (SMTP 451); the retry
        comes while Redis is out of memory: it raises before sending (before, RESERVE found
        its slot by reading alone, the email went out and its record failed). Once memory is
        freed the retry sends it, once."""
        redis, url = own_redis
        settings = notifier_settings(url, "nudges", smtp_port=mail.port)
        [sid, *_] = await plant(redis, settings, example()["data"], NOW)
        nudge = due(COUPLE, sid, "date_night", ["maya"], NOW)
        smtp = SmtpChannel(host="127.0.0.1", port=mail.port)
        deliverer = delivery(redis, settings, {"email": smtp}, ManualClock(NOW))
        try:
            mail.refuse_next(1)
            assert [r.error.detail for r in (await deliverer.deliver(nudge)).retry] == ["SMTP 451"]
            await redis.config_set("maxmemory-policy", "noeviction")
            await redis.config_set("maxmemory", 1)
            with pytest.raises(OutOfMemoryError):
                await deliverer.deliver(nudge)
            assert mail.count == 0
            await redis.config_set("maxmemory", 0)
            sent = await deliverer.deliver(nudge)
        finally:
            await smtp.close()
        assert [(o.type, o.data.partner_id) for o in sent.outcomes] == [("nudge.sent.v1", "maya")]
        assert mail.count == 1


class TestRecordRefusedAfterSend:
    async def test_the_record_is_retried_until_redis_takes_it(
        self, own_redis: tuple[aioredis.Redis, str], mail: MailCatcher
    ) -> None:
        """Redis refuses every write for a second right after the email went out: delivery
        keeps the fact and retries the record with backoff until it is taken, then returns
        the sent outcome; the email went out once and the record and outbox entry exist."""
        redis, url = own_redis
        settings = notifier_settings(url, "nudges", smtp_port=mail.port)
        [sid, *_] = await plant(redis, settings, example()["data"], NOW)
        nudge = due(COUPLE, sid, "date_night", ["maya"], NOW)
        channel = RecordRefusedAfterSend(
            SmtpChannel(host="127.0.0.1", port=mail.port), redis, seconds=1.0
        )
        deliverer = delivery(redis, settings, {"email": channel}, ManualClock(NOW))
        try:
            with capture_logs() as logs:
                result = await deliverer.deliver(nudge)
        finally:
            await channel.close()
            if channel.restored is not None:
                await channel.restored
        refusals = [e for e in logs if e["event"] == "send_not_recorded_yet"]
        print(f"record refused {len(refusals)} times, then taken")
        assert refusals
        assert all(e["error"] == "ResponseError" for e in refusals)
        assert [(o.type, o.data.partner_id) for o in result.outcomes] == [("nudge.sent.v1", "maya")]
        key = idempotency_key(nudge.data.occurrence_id, "maya", "email")
        assert await redis.zscore(settings.keys.sent(COUPLE), key) is not None
        assert await redis.hexists(settings.keys.outbox(COUPLE), key)
        assert mail.count == 1
        assert (await deliverer.deliver(nudge)).retry == []
        assert mail.count == 1
