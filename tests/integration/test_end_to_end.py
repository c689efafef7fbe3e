"""The whole path: preferences on the stream -> timers -> NudgeDue -> a real email -> outcome."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import NOTIFIER_GROUP
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import parse_outcome
from tests.support.events import preferences
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

# Tuesday 1 December 2026; maya-and-sam's date night is Fridays 19:00 Europe/Berlin.
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FIRST_DATE_NIGHT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


class TestEndToEnd:
    async def test_preferences_become_a_date_night_email_and_a_sent_outcome(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """Both partners receive the Friday date night by SMTP; outcomes say sent; all acked."""
        clock = ManualClock(START)
        scheduler = SchedulerService(
            scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.02), clock
        )
        notifier = NotifierService(
            notifier_settings(redis_url, key_prefix, smtp_port=mail.port), clock
        )
        await scheduler.start()
        await notifier.start()
        try:
            await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: preferences("maya-sam")})
            timers = scheduler.keys.timers(0)
            await eventually(lambda: redis.zscore(timers, "maya-sam/d/both"), until=bool)
            assert (
                await redis.zscore(timers, "maya-sam/d/both") == FIRST_DATE_NIGHT.timestamp() * 1000
            )

            clock.set(FIRST_DATE_NIGHT + timedelta(seconds=1))
            await eventually(lambda: _count(mail), until=lambda n: n >= 2)

            date_nights = [m for m in mail.messages if "Date night" in _text(m)]
            assert sorted(str(m["To"]) for m in date_nights) == [
                "Maya <maya@example.test>",
                "Sam <sam@example.test>",
            ]

            async def date_night_outcomes() -> set[tuple[str, str | None]]:
                events = await read_events(redis, scheduler.keys.outcomes, parse_outcome)
                return {(e.type, e.data.partner_id) for e in events if e.data.kind == "date_night"}

            # (Appreciation occurrences skipped over by the clock jump are reported as missed.)
            assert await eventually(date_night_outcomes, until=lambda found: len(found) >= 2) == {
                ("nudge.sent.v1", "maya"),
                ("nudge.sent.v1", "sam"),
            }
            # Outcomes are published first, then the entry is acknowledged.
            await eventually(lambda: _pending(redis, scheduler.keys.due(0)), until=lambda n: n == 0)
            next_fire = await redis.zscore(timers, "maya-sam/d/both")
            assert next_fire == (FIRST_DATE_NIGHT + timedelta(days=7)).timestamp() * 1000
        finally:
            await notifier.stop()
            await scheduler.stop()


async def _count(mail: MailCatcher) -> int:
    return len(mail.messages)


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def _pending(redis: aioredis.Redis, stream: str) -> int:
    groups = await redis.xinfo_groups(stream)
    return sum(int(g["pending"]) for g in groups if g["name"] == NOTIFIER_GROUP.encode())
