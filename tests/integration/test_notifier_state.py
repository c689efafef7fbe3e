"""The notifier's per-couple records stay bounded: old sends and old sightings are trimmed."""

from __future__ import annotations

from typing import cast

import redis.asyncio as aioredis

from couples_nudge.notifier.state import NotifierState, idempotency_key
from tests.support.settings import notifier_settings

DAY = 86_400_000


class TestRecordSent:
    async def test_sightings_older_than_the_repeat_window_are_trimmed(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """With a 30-day window, a year of daily items leaves only the last 30 days seen."""
        keys = notifier_settings(redis_url, key_prefix).keys
        state = NotifierState(redis, keys)
        await redis.hset(keys.couple("c1"), "rev", 1)  # the couple exists
        for day in range(365):
            scheduled = day * DAY
            recorded = await state.record_sent(
                "c1",
                [(idempotency_key(f"c1/a/maya@{day}", "maya", "email"), f"item-{day}", b"")],
                scheduled_ms=scheduled,
                now_ms=scheduled,
                retention_ms=14 * DAY,
                repeat_window_ms=30 * DAY,
            )
            assert recorded
        seen = cast("list[bytes]", await redis.zrange(keys.seen("c1"), 0, -1))
        assert seen == [f"item-{day}".encode() for day in range(364 - 30, 365)]
        sent = cast("list[bytes]", await redis.zrange(keys.sent("c1"), 0, -1))
        assert len(sent) == 14  # records exactly 14 days old are already trimmed

    async def test_a_couple_sent_nothing_more_keeps_its_records_no_longer_than_the_retention(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The sent and seen sets expire a retention (a repeat window) and a day after their
        last write. Only the next send trimmed them: a year's soak found a couple that had
        unsubscribed keeping 29 send records 183 days old (retention 14 days) and 64
        sightings 257 days old (window 90 days), with no expiry."""
        keys = notifier_settings(redis_url, key_prefix).keys
        state = NotifierState(redis, keys)
        await redis.hset(keys.couple("c1"), "rev", 1)
        await state.record_sent(
            "c1",
            [(idempotency_key("c1/a/maya@1", "maya", "email"), "item-1", b"")],
            scheduled_ms=DAY,
            now_ms=DAY,
            retention_ms=14 * DAY,
            repeat_window_ms=30 * DAY,
        )
        assert 14 * DAY < await redis.pttl(keys.sent("c1")) <= 15 * DAY
        assert 30 * DAY < await redis.pttl(keys.seen("c1")) <= 31 * DAY

    async def test_nothing_is_recorded_for_an_erased_couple(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A send finishing after the couple was erased leaves no key behind."""
        keys = notifier_settings(redis_url, key_prefix).keys
        state = NotifierState(redis, keys)
        recorded = await state.record_sent(
            "gone",
            [("x|maya|email", "item", b"{}")],
            scheduled_ms=DAY,
            now_ms=DAY,
            retention_ms=DAY,
            repeat_window_ms=DAY,
        )
        assert recorded is False
        assert await redis.exists(*keys.couple_keys("gone")) == 0


class TestLoadSeen:
    async def test_each_sighting_comes_with_its_time(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The load returns every item seen in the window with the scheduled time it was last
        shown (what least-recently-seen choice needs); sightings outside the window are left out."""
        keys = notifier_settings(redis_url, key_prefix).keys
        state = NotifierState(redis, keys)
        await redis.hset(keys.couple("c1"), "rev", 1)
        shown = [("ap-a", 1), ("ap-b", 5), ("ap-a", 9), ("ap-c", 40)]
        for n, (item, day) in enumerate(shown):
            await state.record_sent(
                "c1",
                [(idempotency_key(f"c1/a/maya@{n}", "maya", "email"), item, b"")],
                scheduled_ms=day * DAY,
                now_ms=day * DAY,
                retention_ms=DAY,
                repeat_window_ms=90 * DAY,
            )
        loaded = await state.load(
            "c1", "c1/a/maya@next", seen_since_ms=2 * DAY, seen_before_ms=40 * DAY
        )
        assert loaded.seen == {"ap-a": 9 * DAY, "ap-b": 5 * DAY}
        await redis.delete(*keys.couple_keys("c1"))
