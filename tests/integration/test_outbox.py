"""Every recorded outcome reaches the outcomes stream once, by its event id (issue #15, item 3).

A send's outcome is written with its idempotency record into the couple's outbox; a crash
before it is published (the state `Delivery.deliver` leaves when the service never gets to
publish) must not lose it: the redelivery publishes it, as it was written, and sends nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import NOTIFIER_GROUP
from couples_nudge.common.streams import DATA_FIELD, read_entries
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.channels.base import RecordingChannel
from couples_nudge.notifier.channels.email import SmtpChannel
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge_schemas import parse_outcome
from tests.support.events import example
from tests.support.notifier import deliver_published, delivery, due, plant
from tests.support.settings import notifier_settings
from tests.support.waiting import drained, eventually

NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
COUPLE = "maya-sam"


async def _outcome_entries(redis: aioredis.Redis, stream: str) -> list[bytes]:
    return [fields[DATA_FIELD.encode()] for _, fields in await read_entries(redis, stream)]


class TestRecordedButNotPublished:
    async def test_redelivery_publishes_the_recorded_outcomes_and_sends_nothing(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """Both emails sent and recorded, the process killed before any outcome was
        published: the redelivered NudgeDue yields each partner's `nudge.sent.v1` exactly
        once, byte for byte as recorded (same event id), no second email, an empty outbox."""
        settings = notifier_settings(redis_url, key_prefix, smtp_port=mail.port)
        [sid, *_] = await plant(redis, settings, example()["data"], NOW)
        nudge = due(COUPLE, sid, "date_night", ["maya", "sam"], NOW)
        smtp = SmtpChannel(host="127.0.0.1", port=mail.port)
        try:
            crashed = await delivery(redis, settings, {"email": smtp}, ManualClock(NOW)).deliver(
                nudge
            )
        finally:
            await smtp.close()
        recorded = sorted(o.model_dump_json().encode() for o in crashed.outcomes)
        assert len(recorded) == 2
        assert mail.count == 2
        await redis.xadd(settings.keys.due(0), {DATA_FIELD: nudge.model_dump_json()})
        notifier = NotifierService(settings, ManualClock(NOW + timedelta(minutes=1)))
        await notifier.start()
        try:
            published = await eventually(
                lambda: _outcome_entries(redis, settings.keys.outcomes),
                until=lambda found: len(found) >= 2,
                within=5,
            )
            await eventually(lambda: drained(redis, settings.keys.due(0)), until=bool)
        finally:
            await notifier.stop()
        assert sorted(published) == recorded
        assert sorted(parse_outcome(raw).type for raw in published) == ["nudge.sent.v1"] * 2
        assert mail.count == 2
        assert await redis.exists(settings.keys.outbox(COUPLE)) == 0

    async def test_a_cap_refusal_is_republished_with_the_same_event(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A `cap_reached` decided just before a crash is published by the redelivery, the
        same event (same id and bytes) as the first attempt made; once published, never
        again."""
        settings = notifier_settings(redis_url, key_prefix, daily_cap_per_partner=1)
        [sid, *_] = await plant(redis, settings, example()["data"], NOW)
        email = RecordingChannel()
        deliverer = delivery(redis, settings, {"email": email}, ManualClock(NOW))
        await deliver_published(deliverer, due(COUPLE, sid, "appreciation", ["maya"], NOW))
        capped = due(COUPLE, sid, "check_in", ["maya"], NOW - timedelta(hours=1))
        first = await deliverer.deliver(capped)  # the crash: never published
        again = await deliver_published(deliverer, capped)
        assert [o.type for o in first.outcomes] == ["nudge.suppressed.v1"]
        assert [(o.event_id, o.model_dump_json()) for o in again.outcomes] == [
            (o.event_id, o.model_dump_json()) for o in first.outcomes
        ]
        assert (await deliverer.deliver(capped)).outcomes == []
        assert len(email.sent) == 1


class TestOutboxKey:
    async def test_erasure_removes_the_outbox(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """An outcome still waiting in the outbox is erased with the couple: no key of the
        couple is left."""
        settings = notifier_settings(redis_url, key_prefix)
        [sid, *_] = await plant(redis, settings, example()["data"], NOW)
        email = RecordingChannel()
        deliverer = delivery(redis, settings, {"email": email}, ManualClock(NOW))
        await deliverer.deliver(due(COUPLE, sid, "date_night", ["maya", "sam"], NOW))
        keys = settings.keys
        assert keys.outbox(COUPLE) in keys.couple_keys(COUPLE)
        assert await redis.hlen(keys.outbox(COUPLE)) == 2
        store = ScheduleStore(redis, keys, due_maxlen=1000)
        await store.erase(COUPLE, occurred_ms=0, retention_ms=86_400_000)
        assert await redis.exists(*keys.couple_keys(COUPLE)) == 0

    async def test_a_published_nudge_leaves_no_outbox_and_no_sending_marks(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """After a normal delivery through the service, the outbox is gone and the sent set
        holds the records and the cap slots only (the write-ahead marks are replaced)."""
        settings = notifier_settings(redis_url, key_prefix, smtp_port=mail.port)
        [sid, *_] = await plant(redis, settings, example()["data"], NOW)
        nudge = due(COUPLE, sid, "date_night", ["maya", "sam"], NOW)
        await redis.xadd(settings.keys.due(0), {DATA_FIELD: nudge.model_dump_json()})
        await redis.xgroup_create(settings.keys.due(0), NOTIFIER_GROUP, id="0")
        notifier = NotifierService(settings, ManualClock(NOW))
        await notifier.start()
        try:
            await eventually(lambda: drained(redis, settings.keys.due(0)), until=bool)
        finally:
            await notifier.stop()
        members: Any = await redis.zrange(settings.keys.sent(COUPLE), 0, -1)
        occurrence = nudge.data.occurrence_id
        assert sorted(m.decode() for m in members) == [
            f"{occurrence}|maya|cap",
            f"{occurrence}|maya|email",
            f"{occurrence}|sam|cap",
            f"{occurrence}|sam|email",
        ]
        assert await redis.exists(settings.keys.outbox(COUPLE)) == 0
        assert mail.count == 2
