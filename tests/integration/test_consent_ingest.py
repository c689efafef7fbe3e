"""The scheduler applies what relays and people report: a hard bounce marks the email dead,
soft bounces do at a threshold, a complaint unsubscribes all email, and a resubscribe clears
the unsubscribes inside its scope; all last-writer-wins by when they happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.couple_state import CoupleState, parse_couple
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge_schemas import PreferenceEvent, parse_preference
from tests.support.events import envelope, example
from tests.support.settings import scheduler_settings

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Couple:
    def __init__(self, redis: aioredis.Redis, settings: SchedulerSettings) -> None:
        self.redis = redis
        self.settings = settings
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        self.clock = ManualClock(T0)
        self.ingest = PreferenceIngest(store, self.clock, settings)

    async def apply(self, type_: str, data: dict[str, Any], at: datetime) -> str:
        event: PreferenceEvent = parse_preference(envelope(type_, data, at))
        if at > self.clock.now():  # the service's clock moves on with the events
            self.clock.set(at)
        return await self.ingest.apply(event)

    async def set(self, revision: int, at: datetime = T0) -> str:
        data = example()["data"]
        data["revision"] = revision
        return await self.apply("preferences.set.v1", data, at)

    async def bounce(self, kind: str, at: datetime, partner: str = "maya") -> str:
        data = {"couple_id": "maya-sam", "partner_id": partner, "bounce": kind, "source": "ses"}
        return await self.apply("channel.bounced.v1", data, at)

    async def complaint(self, at: datetime) -> str:
        data = {"couple_id": "maya-sam", "partner_id": "maya", "source": "sendgrid"}
        return await self.apply("channel.complained.v1", data, at)

    async def unsubscribe(self, kind: str, at: datetime, channel: str = "all") -> str:
        data = {"couple_id": "maya-sam", "partner_id": "maya", "kind": kind, "channel": channel}
        return await self.apply("preferences.unsubscribed.v1", data, at)

    async def resubscribe(self, kind: str, channel: str, at: datetime) -> str:
        data = {
            "couple_id": "maya-sam",
            "partner_id": "maya",
            "kind": kind,
            "channel": channel,
            "consented_at": at.isoformat(),
            "method": "in_app",
        }
        return await self.apply("preferences.resubscribed.v1", data, at)

    async def state(self) -> CoupleState:
        raw = await self.redis.hgetall(self.settings.keys.couple("maya-sam"))
        return parse_couple(cast("dict[bytes, bytes]", raw))

    async def blocked(self) -> dict[str, bool]:
        """Maya's email per kind: unsubscribed? And is her email dead?"""
        state = await self.state()
        found = {k: state.unsubscribed("maya", k, "email") for k in ("date_night", "check_in")}
        return found | {"dead": state.channel_dead("maya", "email")}


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


OPEN = {"date_night": False, "check_in": False, "dead": False}


class TestBounces:
    async def test_hard_bounce_marks_email_dead_until_the_next_preferences(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A hard bounce marks Maya's email dead (Sam's stays); a new preferences.set gives
        the address another chance, as after an SMTP 5xx."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        await couple.set(1)
        assert await couple.bounce("hard", at(1)) == "applied"
        assert await couple.blocked() == OPEN | {"dead": True}
        assert not (await couple.state()).channel_dead("sam", "email")
        await couple.set(2, at(2))
        assert await couple.blocked() == OPEN

    async def test_soft_bounces_count_up_to_the_limit_inside_the_window(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """With a limit of 3 in 30 days: two soft bounces leave the email alive, the third
        marks it dead; bounces further apart than the window start the count again."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix, soft_bounce_limit=3))
        await couple.set(1)
        day = 60 * 24
        assert await couple.bounce("soft", at(1)) == "counted"
        assert await couple.bounce("soft", at(31 * day)) == "counted"  # a new count
        assert await couple.bounce("soft", at(32 * day)) == "counted"
        assert await couple.blocked() == OPEN
        assert await couple.bounce("soft", at(33 * day)) == "applied"
        assert await couple.blocked() == OPEN | {"dead": True}

    async def test_a_redelivered_soft_bounce_counts_once(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Events are applied at least once (a batch tried again while Redis refused it, an
        entry reclaimed): two soft bounces, each delivered twice, in the order a batch tried
        again gives them, count two and leave the email alive (they counted four before,
        past the limit of 3: dead); a third, newer one reaches the limit."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix, soft_bounce_limit=3))
        await couple.set(1)
        first, second = at(60), at(120)
        counted = [await couple.bounce("soft", when) for when in (first, second, first, second)]
        assert counted == ["counted"] * 4
        assert await couple.blocked() == OPEN
        assert await couple.bounce("soft", at(180)) == "applied"
        assert await couple.blocked() == OPEN | {"dead": True}

    async def test_an_unknown_couple_is_not_created(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A report about a couple that is gone (erased) recreates nothing."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        assert await couple.bounce("hard", at(1)) == "unknown_couple"
        assert await couple.bounce("soft", at(1)) == "unknown_couple"
        assert await couple.complaint(at(1)) == "unknown_couple"
        assert await couple.resubscribe("all", "all", at(1)) == "unknown_couple"
        assert await redis.exists(couple.settings.keys.couple("maya-sam")) == 0


class TestComplaintsAndResubscribes:
    async def test_complaint_unsubscribes_all_email_until_an_explicit_resubscribe(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A complaint stops every kind on email, survives new preferences, is not cleared by
        a resubscribe to one kind, and is cleared by a resubscribe to all kinds on email."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        await couple.set(1)
        await couple.complaint(at(1))
        spam = {"date_night": True, "check_in": True, "dead": False}
        assert await couple.blocked() == spam
        assert not (await couple.state()).unsubscribed("maya", "date_night", "push")
        await couple.set(2, at(2))
        assert await couple.blocked() == spam
        await couple.resubscribe("date_night", "email", at(3))
        assert await couple.blocked() == spam
        await couple.resubscribe("all", "email", at(4))
        assert await couple.blocked() == OPEN

    async def test_resubscribe_clears_only_what_lies_in_its_scope(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Unsubscribed from date night and check-in: resubscribing to date night brings back
        date night only."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        await couple.set(1)
        await couple.unsubscribe("date_night", at(1))
        await couple.unsubscribe("check_in", at(1))
        assert await couple.resubscribe("date_night", "all", at(2)) == "applied"
        assert await couple.blocked() == OPEN | {"check_in": True}

    async def test_order_is_by_when_things_happened(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """An unsubscribe older than the resubscribe, arriving after it, stays undone; a
        resubscribe older than a complaint does not clear it; a newer unsubscribe applies."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        await couple.set(1)
        await couple.resubscribe("date_night", "all", at(10))
        assert await couple.unsubscribe("date_night", at(5)) == "stale"
        assert await couple.blocked() == OPEN
        await couple.complaint(at(20))
        await couple.resubscribe("all", "all", at(15))
        assert (await couple.blocked())["date_night"]
        await couple.resubscribe("all", "all", at(30))
        assert await couple.blocked() == OPEN
        await couple.unsubscribe("date_night", at(40))
        assert await couple.blocked() == OPEN | {"date_night": True}
