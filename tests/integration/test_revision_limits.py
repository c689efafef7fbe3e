"""Revisions compare exactly across their whole range (real server, the real scripts).

APPLY_PLAN compares the stored revision with the event's in Lua, as doubles: exact only up to
2^53. A revision of 2^53 + 1 after 2^53 read as equal, and the newer event was dropped as
stale, silently (so were two nanosecond timestamps 100 apart, and anything past 2^63). The
schema now caps revisions at 2^53 - 1 (MAX_REVISION), refusing a larger one with a reason.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge_schemas import MAX_REVISION, EventRejected, parse_preference
from tests.support.events import preferences
from tests.support.settings import scheduler_settings

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class TestRevisionLimits:
    async def test_the_largest_revisions_still_order(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """MAX_REVISION - 1, then MAX_REVISION: the newer applies; the same again is stale."""
        settings = scheduler_settings(redis_url, key_prefix)
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        ingest = PreferenceIngest(store, ManualClock(T0), settings)
        results = [
            await ingest.apply(parse_preference(preferences("c1", revision, T0 + timedelta(s))))
            for s, revision in enumerate([MAX_REVISION - 1, MAX_REVISION, MAX_REVISION])
        ]
        assert results == ["applied", "applied", "stale"]
        assert await redis.hget(settings.keys.couple("c1"), "rev") == str(MAX_REVISION).encode()

    @pytest.mark.parametrize("revision", [MAX_REVISION + 1, 2**63, 10**400])
    def test_a_larger_revision_is_refused_with_a_reason(self, revision: int) -> None:
        raw = json.loads(preferences("c1", 1, T0))
        raw["data"]["revision"] = revision
        with pytest.raises(EventRejected) as refused:
            parse_preference(json.dumps(raw).encode())
        assert "revision" in refused.value.reason
        assert str(revision) not in refused.value.reason  # the limit, not the value
