"""Bounces and complaints end to end: a real email's Message-ID comes back in a signed relay
webhook -> the preferences stream -> the scheduler's state -> the next nudge is suppressed
(channel_dead, unsubscribed); a resubscribe brings the nudges back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import cast

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
    NudgeFailed,
    NudgeSent,
    NudgeSuppressed,
    OutcomeEvent,
    parse_outcomes_entry,
)
from tests.support.events import envelope, preferences
from tests.support.relays import mailgun_body
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # maya-sam: date night Fridays 19:00 Berlin
FRIDAYS = [datetime(2026, 12, 4, 18, 0, tzinfo=UTC) + timedelta(days=7 * n) for n in range(3)]
MAILGUN_KEY = "mailgun-signing-key-0123456789"

Seen = set[tuple[str, str | None, str | None]]


class TestBounceEndToEnd:
    async def test_bounce_and_complaint_stop_email_and_resubscribe_restores_it(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """Friday 1 both get their date night. Maya's bounces (hard) and Sam reports his as
        spam. Friday 2: Maya's is suppressed channel_dead, Sam's unsubscribed. Sam's app
        publishes preferences.resubscribed.v1. Friday 3: Sam gets his again, Maya does not."""
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
                mailgun_signing_key=SecretStr(MAILGUN_KEY),
            ),
            clock,
        )
        await scheduler.start()
        await notifier.start()
        keys = scheduler.keys
        couple = keys.couple("maya-sam")
        try:
            await redis.xadd(keys.preferences, {DATA_FIELD: preferences("maya-sam")})
            await eventually(lambda: redis.zscore(keys.timers(0), "maya-sam/d/both"), until=bool)

            clock.set(FRIDAYS[0] + timedelta(seconds=1))
            await eventually(lambda: _date_nights(mail), until=lambda found: len(found) == 2)
            ids = {str(m["To"]).split()[0]: str(m["Message-ID"]) for m in mail.messages}
            first_occurrence = f"maya-sam/d/both@{int(FRIDAYS[0].timestamp())}"

            url = f"http://127.0.0.1:{port}/webhooks/mailgun"
            async with httpx.AsyncClient(timeout=10) as client:
                bounce = await client.post(url, content=mailgun_body(MAILGUN_KEY, ids["Maya"]))
                spam = mailgun_body(MAILGUN_KEY, ids["Sam"], event="complained")
                complaint = await client.post(url, content=spam)
            assert (bounce.status_code, complaint.status_code) == (200, 200)
            await eventually(lambda: redis.hget(couple, "dead:maya:email"), until=bool)
            await eventually(lambda: redis.hget(couple, "unsub:sam:all:email"), until=bool)

            reports = [
                (e.type, e.data.partner_id, e.data.occurrence_id)
                for e in await read_events(redis, keys.outcomes, parse_outcomes_entry)
                if e.type in ("nudge.bounced.v1", "nudge.complained.v1")
            ]
            assert sorted(reports) == [
                ("nudge.bounced.v1", "maya", first_occurrence),
                ("nudge.complained.v1", "sam", first_occurrence),
            ]

            clock.set(FRIDAYS[1] + timedelta(seconds=1))
            assert await _friday(redis, keys.outcomes, FRIDAYS[1]) == {
                ("nudge.suppressed.v1", "maya", "channel_dead"),
                ("nudge.suppressed.v1", "sam", "unsubscribed"),
            }

            resubscribe = {
                "couple_id": "maya-sam",
                "partner_id": "sam",
                "kind": "all",
                "channel": "all",
                "consented_at": clock.now().isoformat(),
                "method": "in_app",
            }
            event = envelope("preferences.resubscribed.v1", resubscribe, clock.now())
            await redis.xadd(keys.preferences, {DATA_FIELD: event})

            async def cleared() -> bool:
                value = cast("bytes | None", await redis.hget(couple, "unsub:sam:all:email"))
                return value is not None and value.endswith(b"|0")

            await eventually(cleared, until=bool)

            clock.set(FRIDAYS[2] + timedelta(seconds=1))
            assert await _friday(redis, keys.outcomes, FRIDAYS[2]) == {
                ("nudge.suppressed.v1", "maya", "channel_dead"),
                ("nudge.sent.v1", "sam", None),
            }
            print(f"\nemails received: {len(mail.messages)} (2 on Friday 1, Sam's on Friday 3)")
            assert len(await _date_nights(mail)) == 3
        finally:
            await notifier.stop()
            await scheduler.stop()


async def _friday(redis: aioredis.Redis, stream: str, when: datetime) -> Seen:
    async def outcomes() -> Seen:
        found: list[OutcomeEvent] = [
            e
            for e in await read_events(redis, stream, parse_outcomes_entry)
            if isinstance(e, NudgeSent | NudgeSuppressed | NudgeFailed)
        ]
        return {
            (o.type, o.data.partner_id, getattr(o.data, "reason", None))
            for o in found
            if o.data.kind == "date_night" and o.data.scheduled_at == when
        }

    result: Seen = await eventually(outcomes, until=lambda found: len(found) == 2)
    return result


async def _date_nights(mail: MailCatcher) -> list[EmailMessage]:
    return [m for m in mail.messages if _text(m).startswith("Date night")]


def _text(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())
