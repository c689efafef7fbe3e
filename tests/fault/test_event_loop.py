"""The service processes run on uvloop (services/runner.py), as the fault tests exercise them."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.processes import ServiceProcess
from tests.support.waiting import eventually


@pytest.mark.parametrize("role", ["scheduler", "notifier"])
@pytest.mark.usefixtures("redis")  # removes the streams and groups the service made
async def test_a_service_process_runs_on_uvloop_and_stops_cleanly(
    role: str, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    """`python -m couples_nudge <role>` reports its event loop when running; SIGTERM exits 0."""
    env = {"REDIS_URL": redis_url, "NUDGE_KEY_PREFIX": key_prefix, "NUDGE_LOG_LEVEL": "info"}
    with ServiceProcess(role, env, tmp_path, role) as service:

        async def running() -> list[str]:
            await asyncio.sleep(0)
            return [line for line in service.log().splitlines() if "service_running" in line]

        [line] = await eventually(running, until=bool, within=60)
        assert "uvloop" in line, line
        assert service.terminate() == 0, service.log()[-2000:]
