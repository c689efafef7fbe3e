"""A couple's engagement hash stays the size of the links' lifetime, however long they answer
(real server, the real scripts).

Each answer claimed is remembered (`a|<occurrence>|<partner>|<action>`) so a link followed
again publishes nothing; and every answer and every nudge sent moves the hash's expiry, so
an answering couple's hash never expires. Until 2026-12-07 nothing removed an answer: a
daily check-in both partners answered grew it to 730 fields in a year.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import cast

import redis.asyncio as aioredis

from couples_nudge.common.clock import epoch_ms
from couples_nudge.notifier.engagement import EngagementStore
from tests.support.events import example
from tests.support.notifier import plant
from tests.support.settings import notifier_settings

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
LINKS_LIVE = timedelta(days=30)


class TestEngagedHash:
    async def test_a_year_of_daily_answers_keeps_about_a_month(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """365 days, both partners answering the day's check-in and getting the next: the
        answers kept are those of the links' lifetime and a day; a link of the last month
        followed again is still "done", one older is forgotten (its link has expired)."""
        settings = notifier_settings(redis_url, key_prefix)
        await plant(redis, settings, example()["data"], START)
        store = EngagementStore(
            redis, settings.keys, keep_ms=int(LINKS_LIVE.total_seconds() * 1000)
        )
        couple = "maya-sam"
        for day in range(365):
            at = START + timedelta(days=day)
            occurrence = f"{couple}/c/both@{int(at.timestamp())}"
            for partner in ("maya", "sam"):
                await store.sent(
                    couple, partner, "check_in", occurrence, limit=3, now_ms=epoch_ms(at)
                )
                claimed = await store.claim(
                    couple, occurrence, partner, "check_in", "done", now_ms=epoch_ms(at)
                )
                assert claimed.state == "publish"
                await store.done(couple, occurrence, partner, "done")
        fields = cast("dict[bytes, bytes]", await redis.hgetall(settings.keys.engaged(couple)))
        answers = [f for f in fields if f.startswith(b"a|")]
        print(f"a year of daily answers by two partners: {len(answers)} kept, {len(fields)} fields")
        assert 2 * 31 <= len(answers) <= 2 * 32
        last_day = START + timedelta(days=364)
        recent = f"{couple}/c/both@{int((last_day - timedelta(days=29)).timestamp())}"
        again = await store.claim(
            couple, recent, "maya", "check_in", "done", now_ms=epoch_ms(last_day)
        )
        assert again.state == "done"

    async def test_answers_are_forgotten_while_unanswered_nudges_keep_coming(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A listening couple answers ten days, then only gets nudges for sixty: the old
        answers go after the links' lifetime and a day although no answer comes to trim them
        (every nudge sent moves the hash's expiry, so it never expires). Before, only a new
        answer trimmed them: all ten were still there after sixty days."""
        settings = notifier_settings(redis_url, key_prefix)
        await plant(redis, settings, example()["data"], START)
        store = EngagementStore(
            redis, settings.keys, keep_ms=int(LINKS_LIVE.total_seconds() * 1000)
        )
        couple = "maya-sam"
        for day in range(70):
            at = START + timedelta(days=day)
            occurrence = f"{couple}/c/both@{int(at.timestamp())}"
            await store.sent(couple, "maya", "check_in", occurrence, limit=3, now_ms=epoch_ms(at))
            if day < 10:
                await store.claim(
                    couple, occurrence, "maya", "check_in", "done", now_ms=epoch_ms(at)
                )
                await store.done(couple, occurrence, "maya", "done")
        fields = cast("dict[bytes, bytes]", await redis.hgetall(settings.keys.engaged(couple)))
        assert [f for f in fields if f.startswith(b"a|")] == []
        assert b"s|maya|check_in" in fields  # the streak stays
