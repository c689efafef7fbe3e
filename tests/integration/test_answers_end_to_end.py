"""Couples answer back, end to end: a real scheduler and notifier, a real Redis, a real SMTP
server. A partner reads the links in a received email and POSTs them with httpx; the answer
goes through the preferences stream to the scheduler and comes back in later nudges."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.embedded.valkey import free_port
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.preview import preview_lines
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import (
    CadenceAdjusted,
    NudgeEngaged,
    NudgeSent,
    NudgeSuppressed,
    OutcomesStreamEvent,
    PreferencesSetData,
    parse_outcomes_entry,
)
from tests.support.cli import cli_env, nudge
from tests.support.events import example, preferences
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

# Tuesday 1 December 2026; date night is Fridays 19:00 Europe/Berlin (18:00 UTC).
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FRIDAY = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
DATE_NIGHT = {
    "cadence": {"repeat": "weekly", "weekday": "fri", "at": "19:00"},
    "recipients": "both",
    "timing": "together",
}
APPRECIATION = {
    "cadence": {
        "repeat": "times_per_week",
        "times": 3,
        "between": {"start": "12:00", "end": "20:00"},
    }
}


@asynccontextmanager
async def services(
    redis_url: str, key_prefix: str, mail: MailCatcher, clock: ManualClock
) -> AsyncIterator[tuple[SchedulerService, NotifierService]]:
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
            daily_cap_per_partner=10,
        ),
        clock,
    )
    await scheduler.start()
    await notifier.start()
    try:
        yield scheduler, notifier
    finally:
        await notifier.stop()
        await scheduler.stop()


def text_of(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def link(message: EmailMessage, label: str) -> str:
    """The URL after "<label>: " in the email's text part."""
    found = re.search(rf"^- {re.escape(label)}: (\S+)", text_of(message), re.M)
    assert found is not None, f"no {label!r} link in {text_of(message)}"
    return found.group(1)


def to(messages: list[EmailMessage], name: str, heading: str) -> list[EmailMessage]:
    return [m for m in messages if str(m["To"]).startswith(name) and text_of(m).startswith(heading)]


def count_is(n: int) -> Callable[[list[EmailMessage]], bool]:
    return lambda found: len(found) == n


async def outcomes(redis: aioredis.Redis, stream: str) -> list[OutcomesStreamEvent]:
    return await read_events(redis, stream, parse_outcomes_entry)


class TestDateNightAnswers:
    async def test_not_this_week_keeps_the_turn_and_snooze_skips_two_fridays(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """Maya follows "Not this week" from her email (POST, twice): one outcome, and the next
        Friday it is still her turn; then "Snooze for 2 weeks": the next two Fridays she is
        suppressed "snoozed" and the third date night reaches her again."""
        clock = ManualClock(START)
        async with services(redis_url, key_prefix, mail, clock) as (scheduler, _):
            keys = scheduler.keys
            event = preferences("maya-sam", nudges={"date_night": DATE_NIGHT})
            await redis.xadd(keys.preferences, {DATA_FIELD: event})
            await eventually(lambda: redis.zscore(keys.timers(0), "maya-sam/d/both"), until=bool)

            clock.set(FRIDAY + timedelta(seconds=1))
            [first] = await eventually(lambda: _mails(mail, "Maya"), until=lambda m: len(m) == 1)
            assert "It's your turn to plan this one." in text_of(first)

            clock.set(FRIDAY + timedelta(hours=2))
            skip = link(first, "Not this week")
            async with httpx.AsyncClient(timeout=10) as client:
                shown = await client.get(skip)  # what a mail scanner does: changes nothing
                assert shown.status_code == 200
                assert "<form" in shown.text
                assert await _engaged(redis, keys.outcomes) == []
                for _ in range(3):  # followed again and again: still one answer
                    answer = await client.post(skip)
                    assert answer.status_code == 200
            await eventually(
                lambda: redis.hget(keys.couple("maya-sam"), "d/both"),
                until=lambda v: str(v).startswith("b'2|"),
            )
            engaged = await _engaged(redis, keys.outcomes)
            print(f"answers followed 3 times, outcomes published: {len(engaged)}")
            assert [(e.data.partner_id, e.data.action) for e in engaged] == [("maya", "skip")]

            clock.set(FRIDAY + WEEK + timedelta(seconds=1))
            second = (await eventually(lambda: _mails(mail, "Maya"), until=lambda m: len(m) == 2))[
                1
            ]
            assert "It's your turn to plan this one." in text_of(second)  # the turn stayed
            sams = await eventually(lambda: _mails(mail, "Sam"), until=lambda m: len(m) == 2)
            assert "It's Maya's turn to plan this one." in text_of(sams[1])

            clock.set(FRIDAY + WEEK + timedelta(hours=16))
            async with httpx.AsyncClient(timeout=10) as client:
                assert (await client.post(link(second, "Snooze for 2 weeks"))).status_code == 200
            await eventually(
                lambda: redis.hget(keys.couple("maya-sam"), "snz:maya:date_night"), until=bool
            )
            for n in (2, 3, 4):
                clock.set(FRIDAY + n * WEEK + timedelta(seconds=1))
                await eventually(lambda: _mails(mail, "Sam"), until=count_is(n + 1))
            maya_fridays = await eventually(
                lambda: _maya_fridays(redis, keys.outcomes),
                until=lambda found: len(found) == 5,
            )
            print(f"Maya's five Fridays: {maya_fridays}")
            assert maya_fridays == ["sent", "sent", "snoozed", "snoozed", "sent"]


async def _mails(mail: MailCatcher, name: str) -> list[EmailMessage]:
    return to(list(mail.messages), name, "Date night")


async def _engaged(redis: aioredis.Redis, stream: str) -> list[NudgeEngaged]:
    return [e for e in await outcomes(redis, stream) if isinstance(e, NudgeEngaged)]


async def _maya_fridays(redis: aioredis.Redis, stream: str) -> list[str]:
    found = []
    for e in await outcomes(redis, stream):
        if isinstance(e, NudgeSent) and e.data.partner_id == "maya":
            found.append("sent")
        elif isinstance(e, NudgeSuppressed) and e.data.partner_id == "maya":
            found.append(e.data.reason)
    return found


class TestListeningCadence:
    async def test_three_ignored_nudges_lower_the_rhythm_and_we_did_it_raises_it(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        mail: MailCatcher,
        tmp_path: Path,
    ) -> None:
        """With the listening cadence on, Maya leaves three appreciation nudges unanswered: her
        rhythm goes down a step (3 -> 2 of 3 a week), an outcome says so and `nudge preview
        --live` shows it; her "I did it" on the next one brings it back to what they chose."""
        clock = ManualClock(START)
        data: dict[str, Any] = example()["data"]
        data |= {"couple_id": "maya-sam", "listening": True}
        data["nudges"] = {"appreciation": APPRECIATION}
        data["partners"][0].pop("quiet_hours")
        event = preferences(**data)
        async with services(redis_url, key_prefix, mail, clock) as (scheduler, _):
            keys = scheduler.keys
            await redis.xadd(keys.preferences, {DATA_FIELD: event})
            await eventually(lambda: redis.hget(keys.couple("maya-sam"), "rev"), until=bool)
            prefs = PreferencesSetData.model_validate_json(json.dumps(json.loads(event)["data"]))
            times = [
                line.at_utc
                for line in preview_lines(prefs, START, START + timedelta(days=21))
                if line.partner_id == "maya"
            ]
            for n, at in enumerate(times[:4], 1):  # 4 sends: the first 3 went unanswered
                clock.set(at + timedelta(seconds=1))
                await eventually(lambda: _appreciations(mail), until=count_is(n))
            lowered: list[CadenceAdjusted] = await eventually(
                lambda: _adjusted(redis, keys.outcomes), until=lambda found: len(found) == 1
            )
            moved = [(a.data.direction, a.data.kept, a.data.out_of) for a in lowered]
            print(f"after 3 ignored: {moved}")
            assert (lowered[0].data.direction, lowered[0].data.partner_id) == ("lowered", "maya")
            assert (lowered[0].data.kept, lowered[0].data.out_of) == (2, 3)
            assert await redis.hget(keys.couple("maya-sam"), "lvl:maya:appreciation") is not None

            file = tmp_path / "prefs.json"
            file.write_bytes(event)
            env = cli_env(REDIS_URL=redis_url, NUDGE_KEY_PREFIX=key_prefix)
            shown = nudge("preview", str(file), "--live", "--start", START.isoformat(), env=env)
            assert shown.code == 0, shown.err
            print(shown.out.splitlines()[0])
            assert "# rhythm: appreciation for maya: 2 of 3 a week" in shown.out

            latest = (await _appreciations(mail))[-1]
            clock.set(times[3] + timedelta(hours=1))
            async with httpx.AsyncClient(timeout=10) as client:
                assert (await client.post(link(latest, "I did it"))).status_code == 200
            both = await eventually(
                lambda: _adjusted(redis, keys.outcomes), until=lambda found: len(found) == 2
            )
            assert (both[1].data.direction, both[1].data.level) == ("raised", 0)
            back = nudge("preview", str(file), "--live", "--start", START.isoformat(), env=env)
            assert "# rhythm" not in back.out


async def _appreciations(mail: MailCatcher) -> list[EmailMessage]:
    return to(list(mail.messages), "Maya", "A moment of appreciation")


async def _adjusted(redis: aioredis.Redis, stream: str) -> list[CadenceAdjusted]:
    return [e for e in await outcomes(redis, stream) if isinstance(e, CadenceAdjusted)]
