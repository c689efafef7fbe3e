"""Operators see a lost Redis state: `nudge status`, its JSON, and the notifier's status page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from couples_nudge.cli import app
from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import Keys
from couples_nudge.common.state_marker import StateEpoch, StateMarker
from couples_nudge.notifier.channels.base import RecordingChannel
from couples_nudge.notifier.service import NotifierService
from tests.support.settings import notifier_settings

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def lose_state(redis: aioredis.Redis, prefix: str) -> StateEpoch:
    """A process knew an epoch, Redis lost it, the process reported the loss (wall clock)."""
    marker = StateMarker(
        redis,
        Keys(prefix),
        name="scheduler-box-7",
        producer="nudge-scheduler",
        outcomes_maxlen=1000,
    )
    old = (await marker.observe(None)).epoch
    await redis.delete(Keys(prefix).state)
    seen = await marker.observe(old)
    assert seen.verdict == "reported"
    return seen.epoch


async def invoke(args: list[str], redis_url: str, prefix: str) -> Any:
    env = {"REDIS_URL": redis_url, "NUDGE_KEY_PREFIX": prefix, "NUDGE_SHARDS": "1"}
    return await asyncio.to_thread(CliRunner().invoke, app, args, env=env)


class TestStatusCommand:
    async def test_tables_say_the_state_was_lost_and_by_whom(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """`nudge status` prints "STATE LOST at ..., detected by ..." after a recent loss."""
        await lose_state(redis, key_prefix)
        result = await invoke(["status"], redis_url, key_prefix)
        assert result.exit_code == 0, result.output
        assert "STATE LOST at" in result.output
        assert "detected by scheduler-box-7" in result.output

    async def test_json_carries_the_marker(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """`nudge status --json` has `state` (when lost, by whom) and `state_lost_recently`."""
        epoch = await lose_state(redis, key_prefix)
        result = await invoke(["status", "--json"], redis_url, key_prefix)
        data = json.loads(result.output)
        assert data["state_lost_recently"] is True
        assert data["state"] == epoch.as_json()
        assert data["state"]["detected_by"] == "scheduler-box-7"

    async def test_without_a_loss_only_the_epoch_is_shown(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A Redis that kept its state: no alarm, just since when the state runs."""
        marker = StateMarker(
            redis, Keys(key_prefix), name="n", producer="nudge-notifier", outcomes_maxlen=1000
        )
        await marker.observe(None)
        result = await invoke(["status"], redis_url, key_prefix)
        assert "state since" in result.output
        assert "LOST" not in result.output


@pytest.fixture
async def notifier(redis_url: str, key_prefix: str) -> AsyncIterator[NotifierService]:
    # Its own watcher stays out of the way: the test plays the process that reports the loss.
    settings = notifier_settings(redis_url, key_prefix, http_port=0, state_check_seconds=60)
    service = NotifierService(settings, ManualClock(NOW), channels={"email": RecordingChannel()})
    await service.start()
    try:
        yield service
    finally:
        await service.stop()


class TestStatusPage:
    async def test_data_shows_the_loss_and_the_notice(
        self, redis: aioredis.Redis, key_prefix: str, notifier: NotifierService
    ) -> None:
        """/status/data.json flags the loss for the page's banner and lists the notice."""
        await lose_state(redis, key_prefix)
        assert notifier.http is not None
        async with httpx.AsyncClient(base_url=notifier.http.url) as http:
            data = (await http.get("/status/data.json")).json()
        assert data["status"]["state_lost_recently"] is True
        assert data["status"]["state"]["detected_by"] == "scheduler-box-7"
        [notice] = [o for o in data["outcomes"] if o["type"] == "state_lost"]
        assert notice["reason"] == "detected by scheduler-box-7"
        assert notice["couple_id"] is None
