"""One-click unsubscribe end to end: the link in a real email -> POST -> preferences stream ->
scheduler state -> the next occurrence is suppressed for that partner and kind only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.embedded.valkey import free_port
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import (
    OutcomeEvent,
    PreferencesUnsubscribed,
    parse_outcome,
    parse_preference,
)
from tests.support.events import preferences
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

# Tuesday 1 December 2026; maya-and-sam's date night is Fridays 19:00 Europe/Berlin.
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FIRST_DATE_NIGHT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
SECOND_DATE_NIGHT = FIRST_DATE_NIGHT + timedelta(days=7)


class TestUnsubscribeEndToEnd:
    async def test_one_click_stops_that_kind_for_that_partner_only(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """Maya clicks the one-click link of her date-night email: the next Friday Sam gets his
        date night and Maya's is suppressed "unsubscribed"."""
        clock = ManualClock(START)
        port = free_port()
        scheduler = SchedulerService(
            scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.02), clock
        )
        notifier = NotifierService(
            notifier_settings(
                redis_url,
                key_prefix,
                smtp_port=mail.port,
                http_port=port,
                public_url=f"http://127.0.0.1:{port}",
                unsubscribe_secrets=[SecretStr("k1:" + "s" * 40)],
            ),
            clock,
        )
        await scheduler.start()
        await notifier.start()
        try:
            keys = scheduler.keys
            await redis.xadd(keys.preferences, {DATA_FIELD: preferences("maya-sam")})
            await eventually(lambda: redis.zscore(keys.timers(0), "maya-sam/d/both"), until=bool)

            clock.set(FIRST_DATE_NIGHT + timedelta(seconds=1))
            await eventually(lambda: _date_nights(mail), until=lambda found: len(found) == 2)
            [maya_email] = [m for m in mail.messages if str(m["To"]).startswith("Maya")]
            assert maya_email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
            link = str(maya_email["List-Unsubscribe"]).strip("<>")
            assert link.startswith(f"http://127.0.0.1:{port}/unsubscribe/")

            # The scheduler deletes what it applies: stop it so the click's event can be read.
            await scheduler.stop()
            async with httpx.AsyncClient(timeout=10) as client:
                answer = await client.post(link, data={"List-Unsubscribe": "One-Click"})
            assert answer.status_code == 200

            events = await read_events(redis, keys.preferences, parse_preference)
            [click] = [e for e in events if isinstance(e, PreferencesUnsubscribed)]
            assert (click.producer, click.data.partner_id, click.data.kind) == (
                "nudge-notifier",
                "maya",
                "date_night",
            )
            scheduler = SchedulerService(scheduler.settings, clock)  # a restart: it applies it
            await scheduler.start()
            await eventually(
                lambda: redis.hget(keys.couple("maya-sam"), "unsub:maya:date_night:all"),
                until=bool,
            )

            clock.set(SECOND_DATE_NIGHT + timedelta(seconds=1))

            async def second_friday() -> set[tuple[str, str | None, str | None]]:
                found: list[OutcomeEvent] = await read_events(redis, keys.outcomes, parse_outcome)
                return {
                    (o.type, o.data.partner_id, getattr(o.data, "reason", None))
                    for o in found
                    if o.data.kind == "date_night" and o.data.scheduled_at == SECOND_DATE_NIGHT
                }

            assert await eventually(second_friday, until=lambda found: len(found) == 2) == {
                ("nudge.sent.v1", "sam", None),
                ("nudge.suppressed.v1", "maya", "unsubscribed"),
            }
            assert sorted(str(m["To"]) for m in await _date_nights(mail)) == [
                "Maya <maya@example.test>",
                "Sam <sam@example.test>",
                "Sam <sam@example.test>",
            ]
        finally:
            await notifier.stop()
            await scheduler.stop()


async def _date_nights(mail: MailCatcher) -> list[EmailMessage]:
    return [m for m in mail.messages if _text(m).startswith("Date night")]


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())
