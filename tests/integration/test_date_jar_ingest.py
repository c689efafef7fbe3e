"""The scheduler applies the couple's date-jar events to a real Redis: add, remove, the bound,
replays, preferences.set and erasure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
import redis.asyncio as aioredis
import structlog

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import read_entries
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.planning import PlanningError
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge_schemas import JAR_LIMIT, parse_preference
from tests.support.events import envelope, preferences
from tests.support.jar import idea_added, idea_removed
from tests.support.settings import scheduler_settings

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
SECRET = "Picnic on the roof where we first kissed"


def ingest_for(redis: aioredis.Redis, settings: SchedulerSettings) -> PreferenceIngest:
    store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
    return PreferenceIngest(store, ManualClock(NOW), settings)


async def jar_of(redis: aioredis.Redis, settings: SchedulerSettings, couple: str) -> dict[str, str]:
    raw = cast("dict[bytes, bytes]", await redis.hgetall(settings.keys.jar(couple)))
    return {k.decode(): json.loads(v)["text"] for k, v in raw.items()}


class TestJarIngest:
    async def test_ideas_are_added_and_removed(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """An added idea is stored with who added it and when; a removed one is gone."""
        settings = scheduler_settings(redis_url, key_prefix)
        ingest = ingest_for(redis, settings)
        await ingest.apply(parse_preference(preferences("c1", occurred_at=NOW)))
        assert await ingest.apply(parse_preference(idea_added("c1", "roof", SECRET))) == "added"
        assert await ingest.apply(parse_preference(idea_added("c1", "dance", "Salsa class", "sam")))
        entry = json.loads(cast("bytes", await redis.hget(settings.keys.jar("c1"), "roof")))
        assert (entry["text"], entry["added_by"]) == (SECRET, "maya")
        assert datetime.fromisoformat(entry["added_at"]).tzinfo is not None
        assert await ingest.apply(parse_preference(idea_removed("c1", "roof"))) == "removed"
        assert await jar_of(redis, settings, "c1") == {"dance": "Salsa class"}

    async def test_replays_are_idempotent(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The same idea id twice is one idea (the first text stays); removing a missing idea
        is a no-op."""
        settings = scheduler_settings(redis_url, key_prefix)
        ingest = ingest_for(redis, settings)
        await ingest.apply(parse_preference(preferences("c1", occurred_at=NOW)))
        added = idea_added("c1", "roof", SECRET)
        assert await ingest.apply(parse_preference(added)) == "added"
        assert await ingest.apply(parse_preference(added)) == "present"
        assert await ingest.apply(parse_preference(idea_added("c1", "roof", "Other"))) == "present"
        assert await ingest.apply(parse_preference(idea_removed("c1", "nope"))) == "absent"
        assert await jar_of(redis, settings, "c1") == {"roof": SECRET}

    async def test_ideas_survive_a_new_preferences_revision(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A preferences.set replaces the profile and plans, not the couple's jar."""
        settings = scheduler_settings(redis_url, key_prefix)
        ingest = ingest_for(redis, settings)
        await ingest.apply(parse_preference(preferences("c1", occurred_at=NOW)))
        await ingest.apply(parse_preference(idea_added("c1", "roof", SECRET)))
        later = preferences("c1", revision=2, occurred_at=NOW + timedelta(minutes=1))
        assert await ingest.apply(parse_preference(later)) == "applied"
        assert await jar_of(redis, settings, "c1") == {"roof": SECRET}

    async def test_the_jar_holds_at_most_200_ideas(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The 201st idea is refused with a reason that names the bound, not the idea."""
        settings = scheduler_settings(redis_url, key_prefix)
        ingest = ingest_for(redis, settings)
        await ingest.apply(parse_preference(preferences("c1", occurred_at=NOW)))
        for n in range(JAR_LIMIT):
            await ingest.apply(parse_preference(idea_added("c1", f"i{n}", f"Idea {n}")))
        with pytest.raises(PlanningError) as refused:
            await ingest.apply(parse_preference(idea_added("c1", "one-more", SECRET)))
        reason = str(refused.value)
        assert "full (200 ideas)" in reason
        assert SECRET not in reason
        assert "one-more" not in reason
        assert await redis.hlen(settings.keys.jar("c1")) == JAR_LIMIT
        # A replay of an idea already in a full jar is still just a replay.
        assert await ingest.apply(parse_preference(idea_added("c1", "i0", "Idea 0"))) == "present"

    async def test_strangers_and_unknown_couples_are_refused(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """added_by must be a partner of the couple, and the couple must exist: nothing stored."""
        settings = scheduler_settings(redis_url, key_prefix)
        ingest = ingest_for(redis, settings)
        await ingest.apply(parse_preference(preferences("c1", occurred_at=NOW)))
        for event, why in [
            (idea_added("c1", "x", SECRET, added_by="stranger"), "not one of the couple's"),
            (idea_added("c2", "x", SECRET), "unknown couple"),
        ]:
            with pytest.raises(PlanningError) as refused:
                await ingest.apply(parse_preference(event))
            assert why in str(refused.value)
            assert SECRET not in str(refused.value)
        assert await redis.exists(settings.keys.jar("c1"), settings.keys.jar("c2")) == 0

    async def test_erasure_removes_the_jar_and_its_draws(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """couple.erased deletes the jar and its draws; an idea replayed from before the
        erasure does not bring the jar back."""
        settings = scheduler_settings(redis_url, key_prefix)
        ingest = ingest_for(redis, settings)
        await ingest.apply(parse_preference(preferences("c1", occurred_at=NOW)))
        before = NOW + timedelta(minutes=1)
        added = idea_added("c1", "roof", SECRET, occurred_at=before)
        await ingest.apply(parse_preference(added))
        await redis.hset(settings.keys.jar_draws("c1"), "d:roof", "1")  # as the notifier does
        assert settings.keys.jar("c1") in settings.keys.couple_keys("c1")
        assert settings.keys.jar_draws("c1") in settings.keys.couple_keys("c1")
        erase = envelope("couple.erased.v1", {"couple_id": "c1"}, NOW + timedelta(minutes=2))
        assert await ingest.apply(parse_preference(erase)) == "erased"
        assert await redis.exists(*settings.keys.couple_keys("c1")) == 0
        assert await ingest.apply(parse_preference(added)) == "erased"
        assert await redis.exists(settings.keys.jar("c1")) == 0


class TestJarRejections:
    async def test_a_full_jar_is_rejected_on_the_rejected_stream_and_scrubbed_on_erasure(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The refused idea lands on the rejected stream with a bounded reason; the logs never
        carry the idea's text; erasing the couple removes the rejected entry."""
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(NOW))
        try:
            await service.handle(preferences("c1", occurred_at=NOW), "1-1")
            for n in range(JAR_LIMIT):
                await service.handle(idea_added("c1", f"i{n}", f"Idea {n}"), f"2-{n}")
            with structlog.testing.capture_logs() as logs:
                await service.handle(idea_added("c1", "more", SECRET), "3-1")
            [(_, fields)] = await read_entries(redis, settings.keys.rejected)
            reason = fields[b"reason"].decode()
            print(f"rejection reason ({len(reason)} chars): {reason}")
            assert "full" in reason
            assert SECRET not in reason
            assert fields[b"couple_id"] == b"c1"
            assert SECRET not in repr(logs)
            await service.handle(envelope("couple.erased.v1", {"couple_id": "c1"}), "4-1")
            assert await redis.xlen(settings.keys.rejected) == 0
        finally:
            await service.redis.aclose()

    async def test_hostile_idea_text_is_refused_by_the_schema(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Too long, control or invisible characters, or an id that cannot be a content id:
        rejected with a reason that does not repeat the text."""
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(NOW))
        hostile = [
            ("long", "x" * 201),
            ("bidi", "Dinner \u202eout"),
            ("newline", "Dinner\nSubject: hi"),
            ("x" * 49, "A fine idea"),
        ]
        try:
            await service.handle(preferences("c1", occurred_at=NOW), "1-1")
            for n, (idea_id, text) in enumerate(hostile):
                await service.handle(idea_added("c1", idea_id, text), f"2-{n}")
            rejected = await read_entries(redis, settings.keys.rejected)
            reasons = [fields[b"reason"].decode() for _, fields in rejected]
            assert len(reasons) == len(hostile)
            for reason, (_, text) in zip(reasons, hostile, strict=True):
                assert text not in reason
                assert len(reason) <= 300
            assert await redis.exists(settings.keys.jar("c1")) == 0
        finally:
            await service.redis.aclose()
