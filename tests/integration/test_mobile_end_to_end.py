"""The whole path on phones: preferences with devices on the stream -> scheduler -> NudgeDue ->
a real notifier configured for FCM and APNs (settings only) -> local FCM and APNs -> outcomes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import structlog

from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.common.couple_state import device_ref
from couples_nudge.common.logging import configure_logging
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import OutcomeEvent, parse_outcome
from tests.support.events import envelope, example
from tests.support.mobile import BUNDLE, PACKAGE, MobileRig, mobile_rig
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

# Tuesday 1 December 2026; maya-and-sam's date night is Fridays 19:00 Europe/Berlin.
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FIRST_DATE_NIGHT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
ANDROID = "eP9k:APA91bG" + "a" * 140
IPHONE = "7c" * 32


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Logging configured as in production (JSON, at debug level) into a buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    configure_logging("e2e", "json", "debug", stream=buffer, cache_loggers=False)
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        root.handlers, root.level = saved


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[MobileRig]:
    async with mobile_rig(tmp_path) as running:
        yield running


def preferences() -> bytes:
    data = example()["data"]
    data["discreet"] = True
    maya, sam = data["partners"]
    maya["channels"] = ["mobile"]
    maya["devices"] = [{"platform": "android", "token": ANDROID, "app_id": PACKAGE}]
    sam["channels"] = ["mobile"]
    sam["devices"] = [{"platform": "ios", "token": IPHONE, "app_id": BUNDLE}]
    data["nudges"] = {"date_night": example()["data"]["nudges"]["date_night"]}
    return envelope("preferences.set.v1", json.loads(json.dumps(data)), START)


class TestPhonesEndToEnd:
    async def test_date_night_on_both_phones_then_a_dead_iphone_is_skipped(
        self, rig: MobileRig, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """An Android and an iPhone partner get the Friday date night through FCM and APNs
        (discreet titles, collapse key date_night). The next week APNs answers 410 for the
        iPhone: failed, marked dead; the week after it is skipped with channel_dead."""
        clock = ManualClock(START)
        scheduler = SchedulerService(
            scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.02), clock
        )
        notifier = NotifierService(
            notifier_settings(redis_url, key_prefix, **rig.settings()), clock
        )
        await scheduler.start()
        await notifier.start()

        async def date_nights() -> list[OutcomeEvent]:
            return await read_events(redis, scheduler.keys.outcomes, parse_outcome)

        def rows(events: list[OutcomeEvent], week: int) -> set[tuple[str, str | None, object]]:
            at = FIRST_DATE_NIGHT + timedelta(days=7 * week)
            return {
                (e.type, getattr(e.data, "device", None), getattr(e.data, "reason", None))
                for e in events
                if e.data.scheduled_at == at
            }

        try:
            await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: preferences()})
            timers = scheduler.keys.timers(0)
            await eventually(lambda: redis.zscore(timers, "maya-sam/d/both"), until=bool)

            clock.set(FIRST_DATE_NIGHT + timedelta(seconds=1))
            first = await eventually(date_nights, until=lambda found: len(rows(found, 0)) >= 2)
            assert rows(first, 0) == {
                ("nudge.sent.v1", device_ref(ANDROID), None),
                ("nudge.sent.v1", device_ref(IPHONE), None),
            }
            (android,) = rig.fcm.received
            (iphone,) = rig.apns.received
            assert (android["token"], iphone.token) == (ANDROID, IPHONE)
            assert android["android"]["collapse_key"] == "date_night"
            assert iphone.headers["apns-collapse-id"] == "date_night"
            assert android["notification"]["title"] == "Reminder"
            assert iphone.payload["aps"]["alert"]["title"] == "Reminder"

            rig.apns.unregistered.add(IPHONE)
            clock.set(FIRST_DATE_NIGHT + timedelta(days=7, seconds=1))
            second = await eventually(date_nights, until=lambda found: len(rows(found, 1)) >= 2)
            assert rows(second, 1) == {
                ("nudge.sent.v1", device_ref(ANDROID), None),
                ("nudge.failed.v1", device_ref(IPHONE), None),
            }

            clock.set(FIRST_DATE_NIGHT + timedelta(days=14, seconds=1))
            third = await eventually(date_nights, until=lambda found: len(rows(found, 2)) >= 2)
            assert rows(third, 2) == {
                ("nudge.sent.v1", device_ref(ANDROID), None),
                ("nudge.suppressed.v1", device_ref(IPHONE), "channel_dead"),
            }
            print(
                f"pushes: fcm {len(rig.fcm.received)}, apns {len(rig.apns.received)}, "
                f"fcm token requests {rig.fcm.token_requests}"
            )
            assert len(rig.fcm.received) == 3
            assert len(rig.apns.received) == 2  # the dead iPhone is not tried again
            assert rig.fcm.token_requests == 1
            assert rig.fcm.refused == []
            assert rig.apns.refused == []
        finally:
            await notifier.stop()
            await scheduler.stop()

    async def test_a_provider_outage_is_retried_after_its_retry_after_and_logs_no_token(
        self,
        rig: MobileRig,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        json_logs: io.StringIO,
    ) -> None:
        """APNs answers 503 with Retry-After 120: the nudge waits at least 120 s (not the
        30 s backoff), is then sent to the iPhone only, and no device token is logged."""
        clock = ManualClock(START)
        scheduler = SchedulerService(
            scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.02), clock
        )
        settings = notifier_settings(
            redis_url, key_prefix, retry_poll_seconds=0.05, **rig.settings()
        )
        notifier = NotifierService(settings, clock)
        await scheduler.start()
        await notifier.start()

        async def sent() -> set[str | None]:
            events = await read_events(redis, scheduler.keys.outcomes, parse_outcome)
            return {getattr(e.data, "device", None) for e in events if e.type == "nudge.sent.v1"}

        try:
            await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: preferences()})
            timers = scheduler.keys.timers(0)
            await eventually(lambda: redis.zscore(timers, "maya-sam/d/both"), until=bool)
            rig.apns.answers.append(("ServiceUnavailable", {"retry-after": "120"}))
            clock.set(FIRST_DATE_NIGHT + timedelta(seconds=1))
            await eventually(sent, until=lambda found: device_ref(ANDROID) in found)
            retries = notifier.keys.retries(0)
            waiting = await eventually(
                lambda: redis.zrange(retries, 0, -1, withscores=True), until=bool
            )
            wait_s = (float(waiting[0][1]) - epoch_ms(clock.now())) / 1000
            print(f"retry scheduled in {wait_s:.0f} s after Retry-After: 120")
            assert wait_s >= 119

            clock.set(FIRST_DATE_NIGHT + timedelta(seconds=wait_s + 2))
            found = await eventually(sent, until=lambda found: len(found) >= 2)
            assert found == {device_ref(ANDROID), device_ref(IPHONE)}
            assert len(rig.fcm.received) == 1  # the retry did not send to Android again
            assert len(rig.apns.received) == 2
        finally:
            await notifier.stop()
            await scheduler.stop()
        logged = json_logs.getvalue()
        assert "nudge_delivery_failed" in logged
        assert ANDROID not in logged
        assert IPHONE not in logged
        assert ANDROID[:12] not in logged
        assert IPHONE[:16] not in logged
