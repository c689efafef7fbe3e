"""Shard leases on the cluster (8 shards on 3 primaries): `auto` keeps fair shares there."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from couples_nudge.scheduler.store import ScheduleStore
from tests.support.cluster import LocalCluster
from tests.support.leases import settled_shares
from tests.support.settings import scheduler_settings

pytestmark = pytest.mark.cluster

SHARDS = 8
START = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)


class TestLeasesOnTheCluster:
    @pytest.mark.parametrize(
        ("policy", "shares"), [("auto", [4, 4]), ("one", [0, 8])], ids=["auto", "one"]
    )
    async def test_two_loops_split_the_shards_unless_told_one_fires_all(
        self,
        cluster: LocalCluster,
        cluster_redis: aioredis.Redis,
        key_prefix: str,
        policy: str,
        shares: list[int],
    ) -> None:
        """Two loops started together: under `auto` each holds a fair share (4 of 8: a
        primary is a core of its own); under `one` one holds all; stopped, none is held."""
        settings = scheduler_settings(
            cluster.url,
            key_prefix,
            redis_cluster=True,
            shards=SHARDS,
            lease_policy=policy,
            max_poll_seconds=0.05,
        )
        store = ScheduleStore(cluster_redis, settings.keys, due_maxlen=1000)
        assert await settled_shares(store, settings, START, shares, within=15) == shares
        leases = [settings.keys.fire_lease(s) for s in range(SHARDS)]
        assert sum([await cluster_redis.exists(key) for key in leases]) == 0
