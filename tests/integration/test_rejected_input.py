"""Bad input never stops a consumer: it lands on the rejected stream with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_entries
from couples_nudge.scheduler.service import SchedulerService
from tests.support.events import example, preferences
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
