"""Delivery on the "mobile" channel through a local FCM and APNs and a real Redis: every live
device once, one outcome per device (with its reference, never its token), dead devices marked
and skipped, one cap slot per nudge, and a retry that resends only what is missing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.couple_state import device_ref
from couples_nudge.notifier.channels.mobile import MobileChannel
from couples_nudge.notifier.delivery import Delivery
from couples_nudge_schemas import OutcomeEvent
from tests.support.events import example
from tests.support.mobile import BUNDLE, PACKAGE, MobileRig, mobile_rig
from tests.support.notifier import deliver_published, delivery, due, plant
from tests.support.settings import notifier_settings

NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
PIXEL = "fQz1:APA91bE" + "p" * 140  # Maya's Android phone
TABLET = "cW2x:APA91bF" + "t" * 140  # Maya's Android tablet
IPHONE = "5e" * 32  # Sam's iPhone


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[MobileRig]:
    async with mobile_rig(tmp_path) as running:
        yield running


@pytest.fixture
async def mobile(rig: MobileRig) -> AsyncIterator[MobileChannel]:
    channel = rig.channel()
    yield channel
    await channel.close()


def couple(*, discreet: bool = True, maya: list[str] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = example()["data"]
    data["discreet"] = discreet
    m, s = data["partners"]
    m["channels"] = ["mobile"]
    m["devices"] = [
        {"platform": "android", "token": t, "app_id": PACKAGE} for t in (maya or [PIXEL])
    ]
    s["channels"] = ["mobile"]  # the email address stays in the profile
    s["devices"] = [{"platform": "ios", "token": IPHONE, "app_id": BUNDLE}]
    return data


def summary(outcomes: list[OutcomeEvent]) -> list[tuple[str, str | None, str | None, Any]]:
    """(type, partner, device ref, reason or permanent) of each outcome, sorted."""
    rows = []
    for o in outcomes:
        d = o.data
        extra = getattr(d, "reason", None) or getattr(d, "permanent", None)
        rows.append((o.type, getattr(d, "partner_id", None), getattr(d, "device", None), extra))
    return sorted(rows, key=str)


async def setup(
    redis: aioredis.Redis,
    redis_url: str,
    key_prefix: str,
    mobile: MobileChannel,
    data: dict[str, Any],
    **settings: Any,
) -> tuple[Delivery, list[str], ManualClock]:
    config = notifier_settings(redis_url, key_prefix, **settings)
    sids = await plant(redis, config, data, NOW - timedelta(days=1))
    clock = ManualClock(NOW)
    return delivery(redis, config, {"mobile": mobile}, clock), sids, clock


def date_night(sids: list[str], at: datetime = NOW) -> Any:
    sid = next(s for s in sids if "/d/" in s)
    return due("maya-sam", sid, "date_night", ["maya", "sam"], at, turn="sam")


class TestBothPhones:
    async def test_android_and_iphone_partners_get_the_date_night(
        self,
        rig: MobileRig,
        mobile: MobileChannel,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
    ) -> None:
        """Maya's Android phone (FCM) and Sam's iPhone (APNs) each get the date night once,
        with the kind as collapse key, the discreet title, and no address or token in any
        outcome; a redelivery sends nothing more."""
        deliver, sids, _ = await setup(redis, redis_url, key_prefix, mobile, couple())
        result = await deliver_published(deliver, date_night(sids))
        assert summary(result.outcomes) == [
            ("nudge.sent.v1", "maya", device_ref(PIXEL), None),
            ("nudge.sent.v1", "sam", device_ref(IPHONE), None),
        ]
        assert result.retry == []
        (android,) = rig.fcm.received
        (iphone,) = rig.apns.received
        assert android["token"] == PIXEL
        assert android["android"]["collapse_key"] == "date_night"
        assert android["notification"]["title"] == "Reminder"  # discreet
        assert iphone.token == IPHONE
        assert iphone.headers["apns-collapse-id"] == "date_night"
        assert iphone.payload["aps"]["alert"]["title"] == "Reminder"
        texts = [str(android), str(iphone.payload), *(o.model_dump_json() for o in result.outcomes)]
        assert not [t for t in texts if "example.test" in t]  # no email address anywhere
        for o in result.outcomes:
            assert PIXEL not in o.model_dump_json()
            assert IPHONE not in o.model_dump_json()

        again = await deliver_published(deliver, date_night(sids))
        assert again.outcomes == []
        assert len(rig.fcm.received) == 1
        assert len(rig.apns.received) == 1

    async def test_titles_are_the_items_when_not_discreet(
        self,
        rig: MobileRig,
        mobile: MobileChannel,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
    ) -> None:
        """Without discreet mode the title is the nudge's own (not the neutral one)."""
        deliver, sids, _ = await setup(redis, redis_url, key_prefix, mobile, couple(discreet=False))
        await deliver_published(deliver, date_night(sids))
        titles = {rig.fcm.received[0]["notification"]["title"]}
        titles.add(rig.apns.received[0].payload["aps"]["alert"]["title"])
        assert "Reminder" not in titles


class TestDeadDevices:
    async def test_unregistered_device_is_marked_dead_and_skipped_later(
        self,
        rig: MobileRig,
        mobile: MobileChannel,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
    ) -> None:
        """FCM says UNREGISTERED for Maya's tablet and APNs 410 for Sam's iPhone: a permanent
        failure for each of those devices; the next nudge skips them with channel_dead
        outcomes, while Maya's phone still gets it."""
        data = couple(maya=[PIXEL, TABLET])
        deliver, sids, clock = await setup(redis, redis_url, key_prefix, mobile, data)
        rig.fcm.unregistered.add(TABLET)
        rig.apns.unregistered.add(IPHONE)
        first = await deliver_published(deliver, date_night(sids))
        assert summary(first.outcomes) == sorted(
            [
                ("nudge.sent.v1", "maya", device_ref(PIXEL), None),
                ("nudge.failed.v1", "maya", device_ref(TABLET), True),
                ("nudge.failed.v1", "sam", device_ref(IPHONE), True),
            ],
            key=str,
        )
        assert first.retry == []
        keys = notifier_settings(redis_url, key_prefix).keys
        stored = cast("dict[bytes, bytes]", await redis.hgetall(keys.couple("maya-sam")))
        dead = sorted(k.decode() for k in stored if k.startswith(b"dead:"))
        assert dead == [
            f"dead:maya:mobile:{device_ref(TABLET)}",
            f"dead:sam:mobile:{device_ref(IPHONE)}",
        ]

        clock.advance(timedelta(days=7))
        second = await deliver_published(deliver, date_night(sids, NOW + timedelta(days=7)))
        assert summary(second.outcomes) == sorted(
            [
                ("nudge.sent.v1", "maya", device_ref(PIXEL), None),
                ("nudge.suppressed.v1", "maya", device_ref(TABLET), "channel_dead"),
                ("nudge.suppressed.v1", "sam", device_ref(IPHONE), "channel_dead"),
            ],
            key=str,
        )
        tokens = [m["token"] for m in rig.fcm.received]
        assert sorted(tokens) == sorted([PIXEL, TABLET, PIXEL])  # the tablet tried once
        assert len(rig.apns.received) == 1


class TestRetriesAndCaps:
    async def test_a_transient_failure_resends_only_that_device(
        self,
        rig: MobileRig,
        mobile: MobileChannel,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
    ) -> None:
        """APNs is unavailable (503) while FCM delivers: the retry names the iPhone, and
        delivering the nudge again sends to the iPhone only."""
        deliver, sids, _ = await setup(redis, redis_url, key_prefix, mobile, couple())
        rig.apns.failing[IPHONE] = ["ServiceUnavailable"]
        first = await deliver_published(deliver, date_night(sids))
        assert summary(first.outcomes) == [("nudge.sent.v1", "maya", device_ref(PIXEL), None)]
        (retry,) = first.retry
        assert (retry.partner_id, retry.channel, retry.device) == (
            "sam",
            "mobile",
            device_ref(IPHONE),
        )
        second = await deliver_published(deliver, date_night(sids))
        assert summary(second.outcomes) == [("nudge.sent.v1", "sam", device_ref(IPHONE), None)]
        assert len(rig.fcm.received) == 1
        assert len(rig.apns.received) == 2

    async def test_devices_share_one_cap_slot(
        self,
        rig: MobileRig,
        mobile: MobileChannel,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
    ) -> None:
        """With a daily cap of one, Maya's two devices both get the first nudge (one slot),
        and the next nudge that day is suppressed cap_reached once."""
        deliver, sids, clock = await setup(
            redis,
            redis_url,
            key_prefix,
            mobile,
            couple(maya=[PIXEL, TABLET]),
            daily_cap_per_partner=1,
        )
        first = await deliver_published(deliver, date_night(sids))
        sent = [o for o in first.outcomes if o.type == "nudge.sent.v1"]
        assert len(sent) == 3
        clock.advance(timedelta(hours=1))
        later = date_night(sids, NOW + timedelta(hours=1))
        second = await deliver_published(deliver, later)
        assert summary(second.outcomes) == [
            ("nudge.suppressed.v1", "maya", None, "cap_reached"),
            ("nudge.suppressed.v1", "sam", None, "cap_reached"),
        ]
        assert len(rig.fcm.received) == 2
