"""`nudge publish FILE` as docs/publishers.md offers it: it validates the event with the
service's own rules first, then does the one XADD; what it publishes, a running scheduler
applies. Either wire form the scheduler reads is a valid FILE: our envelope or a CloudEvent."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import read_entries
from couples_nudge.scheduler.service import SchedulerService
from tests.support.cli import cli_env, closed_port, nudge
from tests.support.contracts import EXAMPLES
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually


class TestPublishCommand:
    async def test_an_envelope_and_a_cloudevent_are_published_and_applied(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The CloudEvents form was refused by `nudge publish` ("specversion: Extra inputs are
        not permitted") though the scheduler applies it from the stream."""
        env = cli_env(REDIS_URL=redis_url, NUDGE_KEY_PREFIX=key_prefix)
        files = [
            EXAMPLES / "couples/maya-and-sam.json",
            EXAMPLES / "cloudevents/preferences.set.v1.json",
        ]
        for path in files:
            ran = await asyncio.to_thread(nudge, "publish", str(path), env=env)
            assert ran.code == 0, ran.err
            assert ran.out.startswith("published preferences.set.v1 ")
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(datetime(2026, 12, 1, tzinfo=UTC)))
        await service.start()
        try:
            await eventually(
                lambda: redis.hget(settings.keys.couple("zoe-ravi"), "rev"),
                until=lambda rev: rev == b"7",
            )
            assert await redis.hget(settings.keys.couple("maya-sam"), "rev") == b"1"
            assert await read_entries(redis, settings.keys.rejected) == []
        finally:
            await service.stop()

    def test_a_bad_cloudevent_gets_its_own_reason(self, tmp_path: Path) -> None:
        """A malformed CloudEvent is refused as the scheduler refuses it, before any XADD."""
        path = tmp_path / "naive.json"
        text = (EXAMPLES / "cloudevents/preferences.paused.v1.json").read_text()
        path.write_text(text.replace("2026-11-20T18:00:00+01:00", "2026-11-20T18:00:00"))
        ran = nudge("publish", str(path), env=cli_env(REDIS_URL="redis://127.0.0.1:1/0"))
        assert ran.code == 2
        [line] = ran.err_lines
        assert "not a valid preference event: cloudevent: preferences.paused.v1.time:" in line

    def test_an_event_dated_past_the_tolerance_is_refused_before_the_xadd(
        self, tmp_path: Path
    ) -> None:
        """The scheduler refuses an event dated more than NUDGE_FUTURE_TOLERANCE ahead of its
        clock; `nudge publish` said "published" and the event went to the rejected stream.
        Now it refuses it with the scheduler's reason (exit 2, before reaching Redis: the
        server here is unreachable), and reads the same setting."""
        path = tmp_path / "later.json"
        later = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
        event = json.loads((EXAMPLES / "events/couple.erased.v1.json").read_text())
        path.write_text(json.dumps({**event, "occurred_at": later}))
        unreachable = f"redis://127.0.0.1:{closed_port()}/0"
        ran = nudge("publish", str(path), env=cli_env(REDIS_URL=unreachable))
        assert ran.code == 2
        assert ran.err_lines == [
            f"nudge: {path}: occurred_at: more than 300 s ahead of the service's clock; a "
            "future-dated event would win over every later one (fix the publisher's clock)"
        ]
        allowed = cli_env(REDIS_URL=unreachable, NUDGE_FUTURE_TOLERANCE="PT3H")
        ran = nudge("publish", str(path), env=allowed)
        assert ran.code == 1  # valid: it went on to Redis, which is not there
        assert "cannot reach Redis" in ran.err
