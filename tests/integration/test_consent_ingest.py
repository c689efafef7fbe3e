"""The scheduler applies what relays and people report: a hard bounce marks the email dead,
soft bounces do at a threshold, a complaint unsubscribes all email, and a resubscribe clears
the unsubscribes inside its scope; all last-writer-wins by when they happened."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.common.couple_state import CoupleState, parse_couple
from couples_nudge.scheduler import lua
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

    async def pause(self, at: datetime, partner: str | None = None) -> str:
        data = {"couple_id": "maya-sam", "partner_id": partner, "until": None}
        return await self.apply("preferences.paused.v1", data, at)

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

    async def fields(self) -> dict[bytes, bytes]:
        return cast("dict[bytes, bytes]", await self.redis.hgetall(self.key))

    @property
    def key(self) -> str:
        return self.settings.keys.couple("maya-sam")

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
        """A report about a couple that does not exist recreates nothing: a bounce is
        dropped (the couple's preferences.set gives the address its chance anyway), a
        complaint or resubscribe is parked for that set (TestConsentBeforeItsCouple)."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        assert await couple.bounce("hard", at(1)) == "unknown_couple"
        assert await couple.bounce("soft", at(1)) == "unknown_couple"
        assert await couple.complaint(at(1)) == "parked"
        assert await couple.resubscribe("all", "all", at(1)) == "parked"
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

    async def test_an_older_narrower_unsubscribe_after_a_broader_resubscribe_stays_undone(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Resubscribed to everything at 10; an unsubscribe from date-night emails made at 5
        arrives after it (another replica, a retry): its field did not exist, so it was
        written and blocked date night, though the resubscribe is newer and covers it."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        await couple.set(1)
        await couple.unsubscribe("all", at(1))
        await couple.resubscribe("all", "all", at(10))
        await couple.unsubscribe("date_night", at(5), channel="email")  # delivered late
        assert await couple.blocked() == OPEN
        await couple.unsubscribe("date_night", at(12), channel="email")  # a newer one holds
        assert await couple.blocked() == OPEN | {"date_night": True}

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


# Consent dated 2 s after the couple's preferences.set (T0), each through SET_IF_NEWER.
CONSENT: dict[str, Callable[[Couple], Awaitable[str]]] = {
    "pause": lambda c: c.pause(T0 + timedelta(seconds=2)),
    "unsubscribe": lambda c: c.unsubscribe("all", T0 + timedelta(seconds=2)),
    "complaint": lambda c: c.complaint(T0 + timedelta(seconds=2)),
}


class TestConsentBeforeItsCouple:
    """With two scheduler replicas (or publishers republishing after a loss of state), a
    pause or unsubscribe can be applied before the couple's preferences.set: it is parked,
    and the set that creates the couple takes it, last writer wins by occurred_at."""

    @pytest.mark.parametrize("kind", list(CONSENT))
    async def test_consent_applies_whichever_arrives_first(
        self, kind: str, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Set then consent, or consent then set: the same couple hash fields of consent."""
        consent = CONSENT[kind]
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        assert [await couple.set(1), await consent(couple)] == ["applied", "applied"]
        in_order = await couple.fields()
        assert any(f.startswith((b"pause", b"unsub:")) for f in in_order)
        await redis.delete(couple.key)  # the other order, from no couple again
        assert [await consent(couple), await couple.set(1)] == ["parked", "applied"]
        assert await couple.fields() == in_order
        assert await redis.exists(couple.settings.keys.parked("maya-sam")) == 0

    async def test_the_newer_of_two_parked_writes_wins(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A resume older than the parked pause is stale; a resubscribe clears a parked
        unsubscribe it is newer than."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        assert await couple.pause(at(2)) == "parked"
        resume = {"couple_id": "maya-sam", "partner_id": None}
        assert await couple.apply("preferences.resumed.v1", resume, at(1)) == "stale"
        assert await couple.unsubscribe("date_night", at(3), channel="email") == "parked"
        assert await couple.resubscribe("all", "all", at(4)) == "parked"
        assert await couple.set(1) == "applied"
        assert (await couple.state()).paused("maya", epoch_ms(at(5)))
        assert await couple.blocked() == OPEN

    async def test_a_parked_write_for_a_couple_that_never_comes_expires(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Nothing creates the couple: the parked fields expire in a day (PARKED_TTL_MS)."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        assert await couple.pause(at(1)) == "parked"
        parked = couple.settings.keys.parked("maya-sam")
        assert 0 < await redis.pttl(parked) <= lua.PARKED_TTL_MS
        assert await redis.pttl(parked) > lua.PARKED_TTL_MS - 60_000
        assert await redis.exists(couple.key) == 0

    async def test_erasure_removes_a_parked_write(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """couple.erased deletes the parked fields with every other key of the couple, and
        a parked write from before the erasure is refused afterwards."""
        couple = Couple(redis, scheduler_settings(redis_url, key_prefix))
        keys = couple.settings.keys
        assert keys.parked("maya-sam") in keys.couple_keys("maya-sam")
        assert await couple.unsubscribe("all", at(1)) == "parked"
        assert await couple.apply("couple.erased.v1", {"couple_id": "maya-sam"}, at(2)) == "erased"
        assert await redis.exists(*keys.couple_keys("maya-sam")) == 0
        assert await couple.pause(at(1)) == "erased"
        assert await redis.exists(*keys.couple_keys("maya-sam")) == 0
