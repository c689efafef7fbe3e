"""The per-partner daily cap, enforced by Delivery against the real Redis server.

A partner receives at most `daily_cap_per_partner` nudges in any rolling 24 hours; all
channels of one occurrence count once; over the cap the nudge is suppressed "cap_reached".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.notifier.channels.base import Outgoing, RecordingChannel
from couples_nudge.notifier.delivery import Delivery
from couples_nudge.notifier.errors import TransientSendError
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge_schemas import NudgeKind, OutcomeEvent
from tests.support.events import example
from tests.support.notifier import deliver_published, delivery, due, plant
from tests.support.settings import notifier_settings

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
KINDS: list[NudgeKind] = ["appreciation", "check_in", "date_night", "appreciation"]


def summary(outcomes: list[OutcomeEvent]) -> list[tuple[str, str | None, str | None]]:
    """(type, partner, channel or suppression reason), sorted."""
    return sorted(
        (o.type.split(".")[1], o.data.partner_id, getattr(o.data, "reason", None) or o.data.channel)
        for o in outcomes
    )


class Couple:
    def __init__(
        self, redis: aioredis.Redis, settings: NotifierSettings, channels: dict[str, Any]
    ) -> None:
        self.redis, self.settings, self.channels = redis, settings, channels
        self.clock = ManualClock(NOW)
        self.sids: list[str] = []
        self.delivery: Delivery | None = None
        self.n = 0

    async def plant(self, data: dict[str, Any]) -> None:
        self.sids = await plant(self.redis, self.settings, data, NOW)
        self.delivery = delivery(self.redis, self.settings, self.channels, self.clock)

    async def nudge(
        self, recipients: list[str], *, at: datetime | None = None
    ) -> list[OutcomeEvent]:
        """Deliver the next occurrence (a new one each call) to the recipients, now."""
        assert self.delivery is not None
        self.n += 1
        when = (at or self.clock.now()) - timedelta(seconds=self.n)  # a distinct occurrence
        nudge = due("maya-sam", self.sids[0], KINDS[self.n % 4], recipients, when)
        return (await deliver_published(self.delivery, nudge)).outcomes


@pytest.fixture
def email() -> RecordingChannel:
    return RecordingChannel()


@pytest.fixture
async def couple(
    redis: aioredis.Redis, redis_url: str, key_prefix: str, email: RecordingChannel
) -> Couple:
    settings = notifier_settings(redis_url, key_prefix, daily_cap_per_partner=2)
    c = Couple(redis, settings, {"email": email})
    await c.plant(example()["data"])
    return c


class TryLater(RecordingChannel):
    """A mail server that always answers 451: every send is to be retried."""

    async def send(self, message: Outgoing) -> None:
        raise TransientSendError("email", "SMTP 451")


class TestSlotsExpire:
    async def test_a_couple_whose_sends_only_fail_for_a_while_keeps_no_set_for_ever(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """RESERVE writes the cap slot and "sending" marks before a send; only RECORD_SENT
        gave the sent set an expiry, and a send that is retried until it is dead-lettered
        (or a partner over the cap) is never recorded: such a couple kept its slots and marks
        for ever. Now RESERVE gives the set the lifetime RECORD_SENT gives."""
        settings = notifier_settings(redis_url, key_prefix)
        c = Couple(redis, settings, {"email": TryLater()})
        await c.plant(example()["data"])
        assert summary(await c.nudge(["maya"])) == []  # to be retried: no outcome yet
        sent = settings.keys.sent("maya-sam")
        assert await redis.zcard(sent) > 0  # the slot and the "sending" mark
        keep = settings.idempotency_retention + timedelta(days=1)
        assert 0 < await redis.pttl(sent) <= keep.total_seconds() * 1000


class TestDailyCap:
    async def test_third_nudge_of_the_day_is_suppressed(
        self, couple: Couple, email: RecordingChannel
    ) -> None:
        """With a cap of 2, the third nudge within 24 h is suppressed with reason cap_reached."""
        assert summary(await couple.nudge(["maya"])) == [("sent", "maya", "email")]
        couple.clock.advance(timedelta(hours=3))
        assert summary(await couple.nudge(["maya"])) == [("sent", "maya", "email")]
        couple.clock.advance(timedelta(hours=3))
        assert summary(await couple.nudge(["maya"])) == [("suppressed", "maya", "cap_reached")]
        assert len(email.sent) == 2

    async def test_window_is_rolling(self, couple: Couple, email: RecordingChannel) -> None:
        """24 hours after the first nudge, a slot is free again (not at midnight)."""
        await couple.nudge(["maya"])
        couple.clock.advance(timedelta(hours=20))
        await couple.nudge(["maya"])
        couple.clock.advance(timedelta(hours=3, minutes=59))
        assert summary(await couple.nudge(["maya"])) == [("suppressed", "maya", "cap_reached")]
        couple.clock.advance(timedelta(minutes=2))  # 24 h and 1 min after the first
        assert summary(await couple.nudge(["maya"])) == [("sent", "maya", "email")]
        assert len(email.sent) == 3

    async def test_partners_are_counted_separately(self, couple: Couple) -> None:
        """Maya's nudges do not use up Sam's slots."""
        await couple.nudge(["maya"])
        await couple.nudge(["maya"])
        assert summary(await couple.nudge(["maya", "sam"])) == [
            ("sent", "sam", "email"),
            ("suppressed", "maya", "cap_reached"),
        ]

    async def test_concurrent_deliveries_never_exceed_the_cap(
        self, couple: Couple, email: RecordingChannel
    ) -> None:
        """Six occurrences delivered at once still give the partner exactly two nudges."""
        results = await asyncio.gather(*(couple.nudge(["maya"]) for _ in range(6)))
        kinds = sorted(o.type for outcomes in results for o in outcomes)
        assert kinds == ["nudge.sent.v1"] * 2 + ["nudge.suppressed.v1"] * 4
        assert len(email.sent) == 2


class TestOneSlotPerOccurrence:
    async def test_all_channels_of_an_occurrence_count_once(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A partner on email and webhook gets both for each of two occurrences within a cap
        of 2; the third occurrence is capped on both."""
        settings = notifier_settings(redis_url, key_prefix, daily_cap_per_partner=2)
        email, hook = RecordingChannel(), RecordingChannel(name="webhook")
        couple = Couple(redis, settings, {"email": email, "webhook": hook})
        data = example()["data"]
        data["partners"][0]["channels"] = ["email", "webhook"]
        await couple.plant(data)
        for _ in range(2):
            assert summary(await couple.nudge(["maya"])) == [
                ("sent", "maya", "email"),
                ("sent", "maya", "webhook"),
            ]
        assert summary(await couple.nudge(["maya"])) == [("suppressed", "maya", "cap_reached")]
        assert (len(email.sent), len(hook.sent)) == (2, 2)

    async def test_redelivery_takes_no_second_slot(
        self, couple: Couple, email: RecordingChannel
    ) -> None:
        """Redelivering a sent occurrence sends nothing and uses no further slot."""
        assert couple.delivery is not None
        first = due("maya-sam", couple.sids[0], "check_in", ["maya"], NOW)
        await deliver_published(couple.delivery, first)
        assert (await couple.delivery.deliver(first)).outcomes == []
        assert summary(await couple.nudge(["maya"])) == [("sent", "maya", "email")]
        assert len(email.sent) == 2

    async def test_a_capped_occurrence_stays_capped(
        self, couple: Couple, email: RecordingChannel
    ) -> None:
        """A capped occurrence redelivered after the window is not sent late, and adds no
        second outcome."""
        assert couple.delivery is not None
        await couple.nudge(["maya"])
        await couple.nudge(["maya"])
        capped = due("maya-sam", couple.sids[0], "check_in", ["maya"], NOW)
        assert summary((await deliver_published(couple.delivery, capped)).outcomes) == [
            ("suppressed", "maya", "cap_reached")
        ]
        couple.clock.advance(timedelta(days=2))
        assert (await couple.delivery.deliver(capped)).outcomes == []
        assert len(email.sent) == 2

    async def test_suppressed_channels_take_no_slot(
        self, couple: Couple, email: RecordingChannel, redis: aioredis.Redis
    ) -> None:
        """A nudge that was not sent (unsubscribed) does not count toward the cap."""
        couple_key = couple.settings.keys.couple("maya-sam")
        await redis.hset(couple_key, "unsub:maya:all:email", "1")
        assert summary(await couple.nudge(["maya"])) == [("suppressed", "maya", "unsubscribed")]
        await redis.hdel(couple_key, "unsub:maya:all:email")
        assert summary(await couple.nudge(["maya"])) == [("sent", "maya", "email")]
        assert summary(await couple.nudge(["maya"])) == [("sent", "maya", "email")]


class TestState:
    async def test_kept_in_the_couples_sent_set(
        self, couple: Couple, redis: aioredis.Redis
    ) -> None:
        """Slots live in the couple's existing sent zset, so erasure removes them."""
        await couple.nudge(["maya"])
        keys = couple.settings.keys
        raw = cast("list[bytes]", await redis.zrange(keys.sent("maya-sam"), 0, -1))
        members = {m.decode() for m in raw}
        assert any(m.endswith("|maya|cap") for m in members)
        assert keys.sent("maya-sam") in keys.couple_keys("maya-sam")
        assert {k.decode() async for k in redis.scan_iter(match=f"{keys.prefix}:*")} <= {
            *keys.couple_keys("maya-sam"),
            keys.timers(0),
            keys.schedules(0),
            keys.changes(0),  # the shard's change counter (scheduler/lua.py BUMP)
        }

    def test_default_cap(self) -> None:
        """By default a partner gets at most three nudges a day."""
        assert NotifierSettings().daily_cap_per_partner == 3
