"""The light schemas distribution as a publishing app uses it: `publish` / `publish_async` do
the XADD the scheduler reads, and a fresh virtual environment holding nothing but
couples-nudge-schemas (and what it depends on, from the package index) publishes a couple
that a running scheduler applies."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis as sync_redis
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import read_entries
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import (
    DATA_FIELD,
    MAX_EVENT_BYTES,
    EventRejected,
    build_couple_erased,
    build_preferences_set,
    parse_preference,
    preferences_stream,
    publish,
    publish_async,
)
from tests.support.events import example
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually
from tests.support.wheels import FreshVenv, build_wheel

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class TestPublish:
    async def test_publish_writes_the_one_field_entry_the_service_reads(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """One entry per event, its only field `__data__` holding the event's JSON; the
        scheduler applies both the sync and the async publisher's events."""
        data = example()["data"]
        first = build_preferences_set({**data, "revision": 1}, producer="couples-app")
        second = build_preferences_set({**data, "revision": 2}, producer="couples-app")
        client = sync_redis.Redis.from_url(redis_url)
        try:
            entry = publish(client, first, prefix=key_prefix)
        finally:
            client.close()
        await publish_async(redis, second, prefix=key_prefix)
        stream = preferences_stream(key_prefix)
        entries = await read_entries(redis, stream)
        assert [entry_id for entry_id, _ in entries][:1] == [entry]
        for (_, fields), sent in zip(entries, (first, second), strict=True):
            assert list(fields) == [DATA_FIELD.encode()]
            assert parse_preference(fields[DATA_FIELD.encode()]) == sent

        settings = scheduler_settings(redis_url, key_prefix)
        assert settings.keys.preferences == stream
        service = SchedulerService(settings, ManualClock(NOW))
        await service.start()
        try:
            await eventually(
                lambda: redis.hget(settings.keys.couple(data["couple_id"]), "rev"),
                until=lambda rev: rev == b"2",
            )
        finally:
            await service.stop()

    async def test_an_event_over_the_limit_is_refused_before_it_is_written(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        event = build_couple_erased({"couple_id": "maya-sam"}, producer="couples-app")
        oversized = event.model_copy(update={"producer": "p" * (MAX_EVENT_BYTES + 1)})
        with pytest.raises(EventRejected, match="limit is 65536"):
            await publish_async(redis, oversized, prefix=key_prefix)
        assert await redis.exists(preferences_stream(key_prefix)) == 0

    def test_builders_fill_the_envelope_and_refuse_what_the_service_refuses(self) -> None:
        data = example()["data"]
        one = build_preferences_set(data, producer="couples-app")
        two = build_preferences_set(data, producer="couples-app")
        assert one.event_id != two.event_id
        assert one.occurred_at.tzinfo is not None
        assert abs((datetime.now(UTC) - one.occurred_at).total_seconds()) < 60
        given = build_preferences_set(
            data,
            producer="couples-app",
            event_id="7b0f7f0e-3c1a-4d59-9a55-0c3f1d2a8b01",
            occurred_at="2026-11-01T09:00:00Z",
        )
        assert str(given.event_id) == "7b0f7f0e-3c1a-4d59-9a55-0c3f1d2a8b01"
        assert given.occurred_at == datetime(2026, 11, 1, 9, tzinfo=UTC)
        with pytest.raises(EventRejected, match=r"data\.revision"):
            build_preferences_set({**data, "revision": True}, producer="couples-app")
        with pytest.raises(EventRejected, match="occurred_at"):
            build_preferences_set(data, producer="couples-app", occurred_at="2026-11-01 09:00")


PUBLISHER = textwrap.dedent(
    """
    import json, sys
    import redis
    from couples_nudge_schemas import build_preferences_set, publish

    url, prefix, payload = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    event = build_preferences_set(payload, producer="couples-app")
    entry = publish(redis.Redis.from_url(url), event, prefix=prefix)
    print(json.dumps({"entry": entry, "event_id": str(event.event_id)}))
    """
)


class TestFreshEnvironment:
    async def test_only_the_schemas_distribution_publishes_a_couple_the_scheduler_applies(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, tmp_path: Path
    ) -> None:
        """`pip install couples-nudge-schemas[redis]` into a new environment (its
        dependencies from the package index); the service's libraries are not there."""
        wheel = build_wheel("schemas", tmp_path / "build")
        env = FreshVenv.create(tmp_path / "venv")
        env.pip_install(f"{wheel}[redis]")
        work = tmp_path / "app"
        work.mkdir()
        absent = env.run("python", "-c", "import faststream", cwd=work)
        assert "No module named 'faststream'" in absent.stderr
        absent = env.run("python", "-c", "import couples_nudge", cwd=work)
        assert "No module named 'couples_nudge'" in absent.stderr

        data = {**example()["data"], "couple_id": "fresh-venv-couple", "revision": 3}
        done = env.run("python", "-c", PUBLISHER, redis_url, key_prefix, json.dumps(data), cwd=work)
        assert done.returncode == 0, done.stderr[-2000:]
        published = json.loads(done.stdout)
        print(f"\npublished from a fresh environment as entry {published['entry']}")

        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(NOW))
        await service.start()
        try:
            await eventually(
                lambda: redis.hget(settings.keys.couple("fresh-venv-couple"), "rev"),
                until=lambda rev: rev == b"3",
            )
            await eventually(
                lambda: redis.xinfo_groups(settings.keys.preferences),
                until=lambda groups: groups[0]["pending"] == 0,
            )
        finally:
            await service.stop()
        assert await redis.exists(settings.keys.rejected) == 0
