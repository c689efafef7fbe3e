"""Bad input never stops a consumer: it lands on the rejected stream with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_entries
from couples_nudge.scheduler.service import SchedulerService
from tests.support.events import envelope, example, preferences
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually

BAD_ZONE = example()
BAD_ZONE["data"]["partners"][0]["timezone"] = "Europe/Atlantis"
NAIVE = example()
NAIVE["occurred_at"] = "2026-11-01T09:00:00"
FREQUENT = example()
FREQUENT["data"]["nudges"]["check_in"]["cadence"] = {"repeat": "cron", "cron": "*/10 * * * *"}
NEVER = example()  # 30 February: applied with no timer and no reason, before 2026-12-07
NEVER["data"]["nudges"]["check_in"]["cadence"] = {"repeat": "cron", "cron": "0 0 30 2 *"}
FUTURE = example()  # applied before 2026-12-07: it then won over every later revision
FUTURE["occurred_at"] = "9999-12-30T00:00:00Z"


class TestSchedulerRejects:
    @pytest.mark.parametrize(
        ("raw", "reason_part"),
        [
            (b"{not json", "not valid JSON"),
            (b'{"type": "preferences.exploded.v1"}', "does not match any of the expected tags"),
            (str(BAD_ZONE).encode(), "not valid JSON"),
            (
                json.dumps(BAD_ZONE).encode(),
                "timezone: Value error, unknown IANA time zone",
            ),
            (
                json.dumps(NAIVE).encode(),
                "occurred_at: Value error, must be an ISO 8601 date and time with a UTC offset",
            ),
            (json.dumps(FREQUENT).encode(), "minimum interval between nudges"),
            (json.dumps(NEVER).encode(), "check_in: cron never fires"),
            (json.dumps(FUTURE).encode(), "occurred_at: more than 300 s ahead"),
            (b'{"type": "couple.erased.v1", "data": {"couple_id": 7}}', "Field required"),
            (b"x" * 70_000, "the limit is 65536"),
        ],
        ids=[
            "not-json",
            "unknown-type",
            "python-repr",
            "bad-zone",
            "naive-time",
            "too-frequent",
            "never-fires",
            "future-dated",
            "wrong-types",
            "oversized",
        ],
    )
    async def test_bad_event_is_rejected_and_the_next_good_one_applied(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        raw: bytes,
        reason_part: str,
    ) -> None:
        """A bad event is kept on the rejected stream with its reason; the consumer goes on."""
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(datetime(2026, 12, 1, tzinfo=UTC)))
        await service.start()
        try:
            await redis.xadd(settings.keys.preferences, {DATA_FIELD: raw})
            await redis.xadd(settings.keys.preferences, {DATA_FIELD: preferences("good")})
            await eventually(
                lambda: redis.hget(settings.keys.couple("good"), "rev"), until=lambda r: r == b"1"
            )
            # One batch: its rejections and acknowledgements follow the good event's apply.
            rejected = await eventually(
                lambda: read_entries(redis, settings.keys.rejected), until=lambda r: len(r) >= 1
            )
            assert len(rejected) == 1
            fields = rejected[0][1]
            assert reason_part in fields[b"reason"].decode()
            assert fields[b"raw"] == raw[:8192]
            assert fields[b"source"] == settings.keys.preferences.encode()
            await eventually(  # both acknowledged
                lambda: redis.xinfo_groups(settings.keys.preferences),
                until=lambda groups: groups[0]["pending"] == 0,
            )
        finally:
            await service.stop()


class TestFutureDates:
    """An event dated past the service's clock plus NUDGE_FUTURE_TOLERANCE is refused: ordered
    by occurred_at, it would otherwise win over every later event until its date."""

    async def test_a_pause_dated_tomorrow_is_refused_and_one_within_the_tolerance_applies(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        settings = scheduler_settings(redis_url, key_prefix)
        # A simulated clock behind the wall clock: events dated now still apply.
        service = SchedulerService(settings, ManualClock(datetime(2026, 12, 1, tzinfo=UTC)))
        await service.start()
        now = datetime.now(UTC)
        tomorrow = envelope("preferences.paused.v1", {"couple_id": "c1"}, now + timedelta(days=1))
        soon = envelope("preferences.paused.v1", {"couple_id": "c2"}, now + timedelta(minutes=1))
        try:
            for raw in (preferences("c1"), preferences("c2"), tomorrow, soon):
                await redis.xadd(settings.keys.preferences, {DATA_FIELD: raw})
            await eventually(
                lambda: redis.hget(settings.keys.couple("c2"), "pause"),
                until=lambda p: p is not None,
            )
            rejected = await eventually(
                lambda: read_entries(redis, settings.keys.rejected), until=lambda r: len(r) >= 1
            )
            assert [fields[b"raw"] for _id, fields in rejected] == [tomorrow]
            assert b"more than 300 s ahead" in rejected[0][1][b"reason"]
            assert await redis.hget(settings.keys.couple("c1"), "pause") is None
            assert await redis.hget(settings.keys.couple("c1"), "rev") == b"1"
        finally:
            await service.stop()

    async def test_the_tolerance_is_a_setting(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        settings = scheduler_settings(redis_url, key_prefix).model_copy(
            update={"future_tolerance": timedelta(hours=2)}
        )
        service = SchedulerService(settings, ManualClock(datetime(2026, 12, 1, tzinfo=UTC)))
        await service.start()
        later = datetime.now(UTC) + timedelta(hours=1)
        try:
            await redis.xadd(settings.keys.preferences, {DATA_FIELD: preferences("c1")})
            await redis.xadd(
                settings.keys.preferences,
                {DATA_FIELD: envelope("preferences.paused.v1", {"couple_id": "c1"}, later)},
            )
            await eventually(
                lambda: redis.hget(settings.keys.couple("c1"), "pause"),
                until=lambda p: p is not None,
            )
            assert await redis.xlen(settings.keys.rejected) == 0
        finally:
            await service.stop()
