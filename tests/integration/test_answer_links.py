"""Action links on the notifier's real HTTP side against a real Redis: a GET changes nothing,
forged links are refused, any number of replayed (and concurrent) POSTs publish one answer,
the manage page runs under a strict CSP, and erasure removes every engagement key."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import redis.asyncio as aioredis
from pydantic import SecretStr

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.valkey import free_port
from couples_nudge.notifier.actions import ActionClaim, ActionTokens
from couples_nudge.notifier.change_limit import CHANGES_PER_MINUTE
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import (
    NudgeEngaged,
    NudgeFeedback,
    PreferencesSnoozed,
    parse_outcomes_entry,
    parse_preference,
)
from tests.support.events import envelope, preferences
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

NOW = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
SECRET = ("k1", b"s" * 40)


@asynccontextmanager
async def notifier_http(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> AsyncIterator[tuple[NotifierService, ActionTokens]]:
    """A couple stored by a real scheduler (then stopped, so the preferences stream can be
    read), and a notifier serving the links."""
    clock = ManualClock(NOW)
    scheduler = SchedulerService(scheduler_settings(redis_url, key_prefix), clock)
    await scheduler.start()
    try:
        await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: preferences("maya-sam")})
        await eventually(lambda: redis.hget(scheduler.keys.couple("maya-sam"), "rev"), until=bool)
    finally:
        await scheduler.stop()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    notifier = NotifierService(
        notifier_settings(
            redis_url,
            key_prefix,
            http_port=port,
            public_url=url,
            unsubscribe_secrets=[SecretStr("k1:" + "s" * 40)],
        ),
        clock,
    )
    await notifier.start()
    try:
        yield notifier, ActionTokens([SECRET], url, max_age_s=30 * 86400)
    finally:
        await notifier.stop()


def claim(action: str) -> ActionClaim:
    return ActionClaim.model_validate(
        {
            "couple_id": "maya-sam",
            "partner_id": "maya",
            "kind": "date_night",
            "occurrence_id": "maya-sam/d/both@1796407200",
            "action": action,
            "sequence": 0,
            "issued_at": int(NOW.timestamp()),
        }
    )


class TestOneTapLinks:
    async def test_replayed_and_concurrent_posts_publish_one_answer(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """ "We did it" POSTed 5 times, then 20 times at once: one nudge.engaged.v1 and one
        nudge.feedback.v1, whatever the number of requests; every request answers 200."""
        async with notifier_http(redis, redis_url, key_prefix) as (notifier, tokens):
            keys = notifier.keys
            url = tokens.link(claim("done"))
            async with httpx.AsyncClient(timeout=10) as client:
                statuses = [(await client.post(url)).status_code for _ in range(5)]
                statuses += [
                    r.status_code
                    for r in await asyncio.gather(*(client.post(url) for _ in range(20)))
                ]
            engaged = await read_events(redis, keys.outcomes, parse_outcomes_entry)
            prefs = await read_events(redis, keys.preferences, parse_preference)
            answers = [e for e in engaged if isinstance(e, NudgeEngaged)]
            feedback = [e for e in prefs if isinstance(e, NudgeFeedback)]
            print(f"25 POSTs: {len(answers)} outcome(s), {len(feedback)} feedback event(s)")
            assert set(statuses) == {200}
            assert len(answers) == 1
            assert len(feedback) == 1
            assert (feedback[0].data.signal, feedback[0].data.partner_id) == ("done", "maya")

    async def test_an_answer_redis_refused_is_published_when_followed_again(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The preferences stream refuses the answer's event (a key of the wrong type stands
        for its slot failing): 503, and the link followed again publishes it once. (It used to
        find its own unreleased claim "busy", answer 200 "Got it", and publish nothing.)"""
        async with notifier_http(redis, redis_url, key_prefix) as (notifier, tokens):
            keys = notifier.keys
            url = tokens.link(claim("done"))
            await redis.set(keys.preferences, "not a stream")
            async with httpx.AsyncClient(timeout=10) as client:
                refused = await client.post(url)
                await redis.delete(keys.preferences)
                again = await client.post(url)
                third = await client.post(url)
            engaged = await read_events(redis, keys.outcomes, parse_outcomes_entry)
            prefs = await read_events(redis, keys.preferences, parse_preference)
            assert [refused.status_code, again.status_code, third.status_code] == [503, 200, 200]
            assert len([e for e in engaged if isinstance(e, NudgeEngaged)]) == 1
            assert len([e for e in prefs if isinstance(e, NudgeFeedback)]) == 1

    async def test_a_couple_stored_unreadably_gets_a_503_page(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A couple hash of the layout before issue 7 whose name the schema refuses today:
        the link's GET and POST answer the "try again" page (503), publish nothing and show
        nothing stored (they answered 500, the name in the log's traceback)."""
        async with notifier_http(redis, redis_url, key_prefix) as (notifier, tokens):
            keys = notifier.keys
            stored = json.loads(preferences("maya-sam"))["data"]
            stored["partners"][0]["name"] = "Lena\u200fSecret-Name"
            couple = keys.couple("maya-sam")
            await redis.delete(couple)
            await redis.hset(couple, mapping={"rev": "1", "profile": json.dumps(stored)})
            url = tokens.link(claim("done"))
            async with httpx.AsyncClient(timeout=10) as client:
                answers = [await client.get(url), await client.post(url)]
            assert [a.status_code for a in answers] == [503, 503]
            assert not any("Secret-Name" in a.text for a in answers)
            assert await redis.xlen(keys.preferences) == 0

    async def test_get_changes_nothing_and_forgeries_are_refused(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A GET (what mail scanners do) shows a page and publishes nothing; a tampered or
        foreign-key token gets 400 and publishes nothing, and echoes nothing of itself."""
        async with notifier_http(redis, redis_url, key_prefix) as (notifier, tokens):
            keys = notifier.keys
            url = tokens.link(claim("snooze"))
            forged = ActionTokens([("k1", b"x" * 40)], "http://x", max_age_s=1).sign(claim("done"))
            async with httpx.AsyncClient(timeout=10) as client:
                shown = await client.get(url)
                tampered = await client.post(url[:-3] + "AAA")
                foreign = await client.post(url.rsplit("/", 1)[0] + "/" + forged)
            assert shown.status_code == 200
            assert "unsafe-inline" not in shown.headers["content-security-policy"]
            assert (tampered.status_code, foreign.status_code) == (400, 400)
            assert forged not in foreign.text
            assert await redis.xlen(keys.outcomes) == 0
            assert await redis.xlen(keys.preferences) == 0


class TestManagePage:
    async def test_snooze_a_month_from_the_manage_page(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The manage page lists the couple's kinds; "snooze for a month" on check-ins
        publishes preferences.snoozed.v1 for 30 days, and the page says it is saved; the page
        allows its own style by hash only (no inline scripts, no 'unsafe-inline')."""
        async with notifier_http(redis, redis_url, key_prefix) as (notifier, tokens):
            keys = notifier.keys
            url = tokens.link(claim("manage"))
            async with httpx.AsyncClient(timeout=10) as client:
                page = await client.get(url)
                done = await client.post(url, data={"kind": "check_in", "choice": "month"})
                bad = await client.post(url, data={"kind": "x" * 5000, "choice": "month"})
            csp = page.headers["content-security-policy"]
            assert "style-src 'sha256-" in csp
            assert "default-src 'none'" in csp
            assert "unsafe-inline" not in csp
            assert 'name="choice" value="month"' in page.text
            assert done.status_code == 200
            assert "Saved." in done.text
            assert bad.status_code == 400
            assert "xxxxx" not in bad.text
            [snooze] = [
                e
                for e in await read_events(redis, keys.preferences, parse_preference)
                if isinstance(e, PreferencesSnoozed)
            ]
            assert (snooze.data.kind, (snooze.data.until - NOW).days) == ("check_in", 30)


class TestChangesPerMinute:
    async def test_a_manage_link_posted_in_a_loop_publishes_a_bounded_number_of_changes(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A manage link never expires and each POST is a deliberate change with fresh ids: one
        POSTed 50 times in a row published 50 changes on each stream (a link in a forwarded
        email could fill them). Now a partner has CHANGES_PER_MINUTE a minute (429 with
        Retry-After beyond); the other partner's link is not held back."""
        async with notifier_http(redis, redis_url, key_prefix) as (notifier, tokens):
            keys = notifier.keys
            url = tokens.link(claim("manage"))
            other = tokens.link(claim("manage").model_copy(update={"partner_id": "sam"}))
            form = {"kind": "date_night", "choice": "week"}
            async with httpx.AsyncClient(timeout=10) as client:
                answers = [await client.post(url, data=form) for _ in range(50)]
                theirs = await client.post(other, data=form)
            statuses = [a.status_code for a in answers]
            print(f"50 POSTs: {statuses.count(200)} published, {statuses.count(429)} refused")
            assert statuses == [200] * CHANGES_PER_MINUTE + [429] * (50 - CHANGES_PER_MINUTE)
            assert answers[-1].headers["retry-after"] == "60"
            assert answers[-1].headers["cache-control"] == "no-store"
            assert theirs.status_code == 200
            assert await redis.xlen(keys.preferences) == CHANGES_PER_MINUTE + 1
            assert await redis.xlen(keys.outcomes) == CHANGES_PER_MINUTE + 1


class TestErasure:
    async def test_erasure_removes_every_engagement_key(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """An answer leaves the couple's engagement hash; couple.erased.v1 removes it with
        every other key of the couple, and a link followed afterwards writes nothing."""
        async with notifier_http(redis, redis_url, key_prefix) as (notifier, tokens):
            keys = notifier.keys
            async with httpx.AsyncClient(timeout=10) as client:
                assert (await client.post(tokens.link(claim("skip")))).status_code == 200
            assert keys.engaged("maya-sam") in keys.couple_keys("maya-sam")
            assert await redis.exists(keys.engaged("maya-sam")) == 1
            clock = ManualClock(NOW)
            scheduler = SchedulerService(scheduler_settings(redis_url, keys.prefix), clock)
            await scheduler.start()
            try:
                erase = envelope("couple.erased.v1", {"couple_id": "maya-sam"}, NOW)
                await redis.xadd(keys.preferences, {DATA_FIELD: erase})
                await eventually(
                    lambda: redis.exists(*keys.couple_keys("maya-sam")), until=lambda n: n == 0
                )
            finally:
                await scheduler.stop()
            async with httpx.AsyncClient(timeout=10) as client:
                late = await client.post(tokens.link(claim("done")))
            assert late.status_code == 404
            assert await redis.exists(*keys.couple_keys("maya-sam")) == 0
