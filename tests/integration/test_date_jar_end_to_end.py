"""Through both services with a real Redis and a real SMTP server: a couple's own date jar
becomes their date-night email, and a daily check-in asks both partners the same question at
their own local time."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import NudgeSent, parse_outcome
from tests.support.events import envelope, example
from tests.support.jar import idea_added
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # a Tuesday
MAYA_CHECK_IN = datetime(2026, 12, 2, 7, 30, tzinfo=UTC)  # 08:30 in Berlin
SAM_CHECK_IN = datetime(2026, 12, 2, 13, 30, tzinfo=UTC)  # 08:30 in New York
DATE_NIGHT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # Friday 19:00 in Berlin
IDEA = "Night swim & <ice cream> at the lake"


def couple() -> bytes:
    data = copy.deepcopy(example()["data"])
    data["couple_id"] = "maya-sam"
    data["partners"][1]["timezone"] = "America/New_York"
    data["nudges"] = {
        "date_night": {
            "cadence": {"repeat": "weekly", "weekday": "fri", "at": "19:00"},
            "recipients": "both",
            "timing": "together",
            "source": "jar",
        },
        "check_in": {"cadence": {"repeat": "daily", "at": "08:30"}, "recipients": "both"},
    }
    return envelope("preferences.set.v1", data, START)


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def html_of(message: EmailMessage) -> str:
    body = message.get_body(("html",))
    assert body is not None
    return str(body.get_content())


class TestJarEndToEnd:
    async def test_the_jar_and_the_daily_question_reach_both_partners_by_smtp(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """Both partners get the day's question at their own 08:30, the same one; on Friday
        both get the one idea in their jar, escaped, with whose turn it is; outcomes name the
        draw by id."""
        clock = ManualClock(START)
        scheduler = SchedulerService(
            scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.02), clock
        )
        notifier = NotifierService(
            notifier_settings(redis_url, key_prefix, smtp_port=mail.port), clock
        )
        keys = scheduler.keys
        await scheduler.start()
        await notifier.start()
        try:
            await redis.xadd(keys.preferences, {DATA_FIELD: couple()})
            await redis.xadd(keys.preferences, {DATA_FIELD: idea_added("maya-sam", "lake", IDEA)})
            await eventually(lambda: redis.hlen(keys.jar("maya-sam")), until=lambda n: n == 1)

            clock.set(MAYA_CHECK_IN + timedelta(seconds=1))
            await eventually(lambda: _count(mail), until=lambda n: n >= 1)
            clock.set(SAM_CHECK_IN + timedelta(seconds=1))
            await eventually(lambda: _count(mail), until=lambda n: n >= 2)
            maya_q, sam_q = mail.messages[:2]
            assert (str(maya_q["To"]), str(sam_q["To"])) == (
                "Maya <maya@example.test>",
                "Sam <sam@example.test>",
            )
            assert maya_q["Subject"] == sam_q["Subject"]  # the same question, six hours apart
            print(f"daily question for both: {maya_q['Subject']!r}")

            clock.set(DATE_NIGHT + timedelta(seconds=1))
            date_nights = await eventually(
                lambda: _date_nights(mail), until=lambda found: len(found) >= 2
            )
            assert len(date_nights) == 2
            for message in date_nights:
                assert message["Subject"] == "Date night from your jar"
                assert f"From your date jar: {IDEA}" in text_of(message)
                assert "Night swim &amp; &lt;ice cream&gt; at the lake" in html_of(message)
                assert "turn to plan this one" in text_of(message)

            async def sent() -> list[NudgeSent]:
                events = await read_events(redis, keys.outcomes, parse_outcome)
                return [e for e in events if isinstance(e, NudgeSent)]

            outcomes = await eventually(sent, until=lambda found: len(found) >= 4)
            jar = [o.data.content_id for o in outcomes if o.data.kind == "date_night"]
            assert jar == ["jar:lake", "jar:lake"]
            questions = {
                o.data.content_id
                for o in outcomes
                if o.data.kind == "check_in" and o.data.scheduled_at <= SAM_CHECK_IN
            }
            assert len(questions) == 1
            assert questions.pop().startswith("ci-")
        finally:
            await notifier.stop()
            await scheduler.stop()


async def _count(mail: MailCatcher) -> int:
    return len(mail.messages)


async def _date_nights(mail: MailCatcher) -> list[EmailMessage]:
    return [m for m in mail.messages if text_of(m).startswith("Date night")]
