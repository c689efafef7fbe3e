"""A nudge whose couple record is gone is reported `erased` only when the couple was erased.

Erasure is a user's act and leaves a tombstone; a record that vanished without one (Redis
came back empty, keys flushed or evicted) is reported `state_lost`, so publishing apps do not
take a loss of our state for their users' wish.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.notifier.channels.base import RecordingChannel
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge_schemas import NudgeSuppressed, parse_preference
from tests.support.events import envelope, example
from tests.support.notifier import delivery, due, plant
from tests.support.settings import notifier_settings, scheduler_settings

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def _reasons(
    redis: aioredis.Redis, redis_url: str, key_prefix: str, *, erase: bool
) -> list[str]:
    """Plant maya-sam, make it vanish (erased, or its keys deleted), deliver one nudge."""
    settings = notifier_settings(redis_url, key_prefix)
    sids = await plant(redis, settings, example()["data"], NOW)
    if erase:
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        ingest = PreferenceIngest(
            store, ManualClock(NOW), scheduler_settings(redis_url, key_prefix)
        )
        erased = envelope("couple.erased.v1", {"couple_id": "maya-sam"}, NOW)
        assert await ingest.apply(parse_preference(erased)) == "erased"
    else:  # what an empty Redis looks like to the notifier: the couple's keys are just gone
        await redis.delete(*settings.keys.couple_keys("maya-sam"))
    email = RecordingChannel()
    nudge = due("maya-sam", sids[0], "check_in", ["maya", "sam"], NOW - timedelta(minutes=1))
    result = await delivery(redis, settings, {"email": email}, ManualClock(NOW)).deliver(nudge)
    assert email.sent == []
    return [o.data.reason for o in result.outcomes if isinstance(o, NudgeSuppressed)]


class TestVanishedCouple:
    async def test_erased_couple_is_reported_erased(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """An erasure (tombstone present) is reported as `erased`, as before."""
        assert await _reasons(redis, redis_url, key_prefix, erase=True) == ["erased"]

    async def test_couple_lost_with_the_state_is_reported_state_lost(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A record gone without an erasure is `state_lost`: nobody erased that couple."""
        assert await _reasons(redis, redis_url, key_prefix, erase=False) == ["state_lost"]
