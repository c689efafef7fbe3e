"""The whole system on a Redis Cluster: preferences in, emails out, each exactly once.

Two schedulers and two notifiers run as real processes against 3 primaries + 3 replicas with
8 shards; preferences go in on the stream as apps send them, a simulated work week runs, and a
real SMTP server receives the emails.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from couples_nudge.embedded.mailcatcher import MailCatcher
from tests.cluster.scenario import MONDAY, WorkWeek, addresses, applied, sends, undrained
from tests.support.cluster import LocalCluster
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster


class TestWorkWeekOnCluster:
    async def test_two_schedulers_and_two_notifiers_send_every_nudge_exactly_once(
        self,
        cluster: LocalCluster,
        cluster_redis: aioredis.Redis,
        key_prefix: str,
        mail: MailCatcher,
        tmp_path: Path,
        cluster_report: list[str],
    ) -> None:
        """2 schedulers + 2 notifiers, 8 shards on 3 primaries: every email once, none missing."""
        week = WorkWeek(cluster.url, key_prefix, mail, tmp_path)
        keys = week.keys
        homes = Counter(cluster.primary_of(stream).port for stream in keys.all_due())
        assert sorted(homes.values()) == [2, 3, 3]  # 8 shards spread over the 3 primaries
        week.start(schedulers=2, notifiers=2)
        try:
            await week.publish_preferences(cluster_redis)
            await eventually(
                lambda: applied(cluster_redis, keys, week.couples),
                until=lambda n: n == week.couples,
                within=week.lead + 20,
            )
            assert time.time() < week.wall(MONDAY.replace(hour=8)), "ingest was too slow"
            await asyncio.sleep(max(0.0, week.wall(week.end) - time.time()))
            expected = week.expected_emails()
            await eventually(
                lambda: _count(mail), until=lambda n: n >= sum(expected.values()), within=45
            )
            await eventually(lambda: undrained(cluster_redis, keys), until=_empty, within=30)
            sent = await sends(cluster_redis, keys)
        finally:
            codes = week.stop()
        received = addresses(mail)
        lost = sum((expected - received).values())
        doubled = sum((received - expected).values())
        cluster_report.append(
            f"work week, 2 schedulers + 2 notifiers, 8 shards: {sum(expected.values())} emails "
            f"expected, lost {lost}, doubled {doubled}"
        )
        assert codes == [0, 0, 0, 0], week.logs()
        assert received == expected, (expected - received, received - expected)
        assert set(sent) == week.expected_sends()
        assert max(sent.values()) == 1  # one sent outcome per (occurrence, partner)


async def _count(mail: MailCatcher) -> int:
    return len(mail.messages)


def _empty(found: list[str]) -> bool:
    return not found
