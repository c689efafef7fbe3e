"""The scheduler applies preference events sent as CloudEvents (structured-mode JSON) exactly
as the envelope, and refuses a malformed CloudEvent with a short reason like any entry."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_entries
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import parse_preference
from couples_nudge_schemas.cloudevents import to_cloudevent
from tests.support.events import preferences
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually


def cloud_preferences(couple_id: str, revision: int) -> dict[str, Any]:
    """A preferences.set.v1 as a publisher following docs/publishers.md sends it."""
    event = to_cloudevent(parse_preference(preferences(couple_id, revision)))
    event["id"] = str(uuid.uuid4())
    event["source"] = "/apps/couples"
    return event


class TestCloudEventsOnThePreferencesStream:
    async def test_a_cloudevent_is_applied_and_a_bad_one_rejected(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A valid CloudEvent sets the couple's revision; a newer one applies too; one with a
        naive `time` lands on the rejected stream with a CloudEvents reason, and the entries
        around it are applied."""
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(datetime(2026, 12, 1, tzinfo=UTC)))
        bad = cloud_preferences("ce-couple", 3)
        bad["time"] = "2026-11-01T09:00:00"
        raw_bad = json.dumps(bad).encode()
        await service.start()
        try:
            for entry in (
                json.dumps(cloud_preferences("ce-couple", 1)).encode(),
                raw_bad,
                json.dumps(cloud_preferences("ce-couple", 2)).encode(),
            ):
                await redis.xadd(settings.keys.preferences, {DATA_FIELD: entry})
            await eventually(
                lambda: redis.hget(settings.keys.couple("ce-couple"), "rev"),
                until=lambda rev: rev == b"2",
            )
            rejected = await eventually(
                lambda: read_entries(redis, settings.keys.rejected), until=lambda r: len(r) >= 1
            )
            assert len(rejected) == 1
            fields = rejected[0][1]
            reason = fields[b"reason"].decode()
            print(f"\nrejected CloudEvent: {reason}")
            assert reason.startswith("cloudevent: preferences.set.v1.time: Value error")
            assert fields[b"raw"] == raw_bad
            await eventually(
                lambda: redis.xinfo_groups(settings.keys.preferences),
                until=lambda groups: groups[0]["pending"] == 0,
            )
        finally:
            await service.stop()
