"""Choice through the real services: a couple's context and check-in format travel from the
preferences stream through the couple hash to the notifier's choice, and a shared nudge is one
item for both partners, each in their own language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.context_rules import fits, rules_of
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import CoupleContext, NudgeSent, parse_outcome
from tests.support.events import example, preferences
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # a Tuesday
FIRST_DATE_NIGHT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # Friday 19:00 Berlin
FIRST_CHECK_IN = datetime(2026, 12, 6, 19, 0, tzinfo=UTC)  # first Sunday, 20:00 Berlin
CONTEXT = {"living": "apart", "budget": "free", "avoid": ["mobility"]}


async def test_context_format_and_languages_reach_the_choice(
    redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
) -> None:
    """A couple living apart on no budget gets a date night that works apart and costs
    nothing, and a monthly guide as its check-in; both partners get the same items, Sam's
    email in British English, and nothing sent leaves the context's rules."""
    clock = ManualClock(START)
    scheduler = SchedulerService(
        scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.02), clock
    )
    notifier = NotifierService(notifier_settings(redis_url, key_prefix, smtp_port=mail.port), clock)
    partners = example()["data"]["partners"]
    partners[1]["locale"] = "en-GB"
    await scheduler.start()
    await notifier.start()
    try:
        event = preferences("maya-sam", partners=partners, context=CONTEXT)
        await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: event})
        timers = scheduler.keys.timers(0)
        await eventually(lambda: redis.zscore(timers, "maya-sam/c/both"), until=bool)
        clock.set(FIRST_DATE_NIGHT + timedelta(seconds=1))
        await eventually(lambda: _sent(redis, scheduler, "date_night"), until=lambda s: len(s) == 2)
        clock.set(FIRST_CHECK_IN + timedelta(seconds=1))
        await eventually(lambda: _sent(redis, scheduler, "check_in"), until=lambda s: len(s) == 2)

        catalog = load_catalog()
        rules = rules_of(CoupleContext.model_validate(CONTEXT))
        for kind in ("date_night", "check_in"):
            sent = await _sent(redis, scheduler, kind)
            assert len({e.data.content_id for e in sent}) == 1  # one item for both
            item = next(i for i in catalog.items(kind) if i.id == sent[0].data.content_id)
            assert fits(item, rules)
            if kind == "check_in":
                assert item.format == "monthly_guide"
            else:
                assert item.setting in ("apart", "any")
                assert item.cost == "free"
        langs = {str(m["To"]): _lang(m) for m in mail.messages}
        assert langs["Maya <maya@example.test>"] == "en"
        assert langs["Sam <sam@example.test>"] == "en-GB"
    finally:
        await notifier.stop()
        await scheduler.stop()


async def _sent(redis: aioredis.Redis, scheduler: SchedulerService, kind: str) -> list[NudgeSent]:
    events = await read_events(redis, scheduler.keys.outcomes, parse_outcome)
    return [e for e in events if isinstance(e, NudgeSent) and e.data.kind == kind]


def _lang(message: EmailMessage) -> str:
    html = message.get_body(("html",))
    assert html is not None
    return str(html.get_content()).split('<html lang="', 1)[1].split('"', 1)[0]
