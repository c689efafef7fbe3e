"""Each service's HTTP side: liveness, and readiness that reflects Redis and consumer groups."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import SCHEDULER_GROUP
from couples_nudge.notifier.channels.base import RecordingChannel
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from tests.support.settings import notifier_settings, scheduler_settings

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class TestHealth:
    async def test_scheduler_is_live_and_ready_then_not_ready_without_its_group(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """/readyz turns 503 when the consumer group disappears (a Redis that lost its data)."""
        service = SchedulerService(
            scheduler_settings(redis_url, key_prefix, http_port=0), ManualClock(NOW)
        )
        await service.start()
        try:
            assert service.http is not None
            async with httpx.AsyncClient(base_url=service.http.url) as client:
                assert (await client.get("/healthz")).json() == {"status": "ok"}
                ready = await client.get("/readyz")
                assert ready.status_code == 200
                assert ready.json()["consumer_group"] is True
                await redis.xgroup_destroy(service.keys.preferences, SCHEDULER_GROUP)
                assert (await client.get("/readyz")).status_code == 503
        finally:
            await service.stop()

    @pytest.mark.usefixtures("redis")  # removes the consumer group's stream afterwards
    async def test_notifier_serves_health_on_a_free_port(
        self, redis_url: str, key_prefix: str
    ) -> None:
        """With NUDGE_HTTP_PORT=0 the notifier picks a free port and answers on it."""
        service = NotifierService(
            notifier_settings(redis_url, key_prefix, http_port=0),
            ManualClock(NOW),
            channels={"email": RecordingChannel()},
        )
        await service.start()
        try:
            assert service.http is not None
            assert service.http.port > 0
            async with httpx.AsyncClient(base_url=service.http.url) as client:
                ready = await client.get("/readyz")
            assert ready.status_code == 200
            assert ready.json() == {
                "status": "ok",
                "redis": True,
                "consumer_groups": True,
                "state_lost": None,  # no loss of the Redis state in the last day
            }
        finally:
            await service.stop()
