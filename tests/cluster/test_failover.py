"""A primary dies mid-run: its replica takes over, the services carry on, nothing is lost.

This test starts its own cluster (3 primaries + 3 replicas, cluster-node-timeout 1 s) so that
killing a node never disturbs the other tests. Replication is asynchronous: writes the dead
primary acknowledged but had not yet sent to its replica are gone. For this service that can
only repeat work (a timer fires again, an entry is delivered again); the occurrence and
idempotency ids then keep the repeat from becoming a second email in most cases, and the
count of doubles is reported.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from couples_nudge.common.runtime import redis_client
from couples_nudge.common.settings import CommonSettings
from couples_nudge.embedded.mailcatcher import MailCatcher
from tests.cluster.scenario import MONDAY, WorkWeek, addresses, applied, undrained
from tests.support.cluster import start_or_skip
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

WEDNESDAY_CHECK_IN = MONDAY + timedelta(days=2, hours=8)  # 09:00 Berlin: every couple at once


class TestPrimaryFailover:
    async def test_killed_primary_is_replaced_and_every_email_still_arrives(
        self, tmp_path: Path, key_prefix: str, mail: MailCatcher, cluster_report: list[str]
    ) -> None:
        """kill -9 shard 0's primary in a burst: its replica takes over, no email is lost."""
        cluster = start_or_skip(tmp_path / "cluster")
        client: aioredis.Redis | None = None
        week = WorkWeek(cluster.url, key_prefix, mail, tmp_path)
        try:
            client = redis_client(
                CommonSettings(redis_url=SecretStr(cluster.url), redis_cluster=True)
            )
            keys = week.keys
            victim = cluster.primary_of(keys.due(0))
            shards = [s for s in range(keys.shards) if cluster.primary_of(keys.due(s)) is victim]
            week.start(schedulers=2, notifiers=2)
            await week.publish_preferences(client)
            await eventually(
                lambda: applied(client, keys, week.couples),
                until=lambda n: n == week.couples,
                within=week.lead + 20,
            )
            await asyncio.sleep(max(0.0, week.wall(WEDNESDAY_CHECK_IN) - time.time() + 0.1))
            before = len(mail.messages)
            cluster.kill(victim)
            successor = cluster.wait_failover(victim, timeout=30)
            await asyncio.sleep(max(0.0, week.wall(week.end) - time.time()))
            expected = week.expected_emails()
            await eventually(
                lambda: _count(mail), until=lambda n: n >= sum(expected.values()), within=60
            )
            await eventually(lambda: undrained(client, keys), until=_empty, within=30)
        finally:
            codes = week.stop()
            if client is not None:
                await client.aclose()
            cluster.stop()
        received = addresses(mail)
        lost = sum((expected - received).values())
        doubled = sum((received - expected).values())
        cluster_report.append(
            f"primary of shards {shards} killed at email {before}/{sum(expected.values())}: "
            f"replica {successor.index} took over, lost {lost}, doubled {doubled}"
        )
        assert successor.primary_index == victim.index  # its own replica, promoted
        assert codes == [0, 0, 0, 0], week.logs()
        assert lost == 0, expected - received
        # Only sends in flight while the primary was gone can repeat: at most the burst's
        # emails of the shards it served (their idempotency records could not be written).
        burst = sum(2 for n in range(week.couples) if keys.shard_of(f"c{n:05d}") in shards)
        assert doubled <= burst


async def _count(mail: MailCatcher) -> int:
    return len(mail.messages)


def _empty(found: list[str]) -> bool:
    return not found
