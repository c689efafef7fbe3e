"""A shard's slot moves to another primary while both services run (a reshard): MOVED and ASK
are followed, nothing is lost and nothing is sent twice.

This test starts its own cluster. The slot holding shard 0 moves, key by key (the steps
`valkey-cli --cluster reshard` takes: SETSLOT IMPORTING / MIGRATING, MIGRATE, SETSLOT NODE),
slowly enough that the schedulers fire and the notifiers send from that shard while some of
its keys are on the old primary and some on the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from pydantic import SecretStr

from couples_nudge.common.runtime import redis_client
from couples_nudge.common.settings import CommonSettings
from couples_nudge.common.streams import read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge_schemas import parse_due
from tests.cluster.scenario import MONDAY, WorkWeek, applied, sends, undrained
from tests.support.cluster import ClusterNode, LocalCluster, start_or_skip
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

WEDNESDAY_CHECK_IN = MONDAY + timedelta(days=2, hours=8)  # 09:00 Berlin: every couple at once


def _migrate_slot(
    cluster: LocalCluster, slot: int, source: ClusterNode, target: ClusterNode, pause: float
) -> int:
    """Move `slot` from `source` to `target` one key at a time, `pause` s apart; the keys moved."""
    moved = 0
    with source.client(timeout=10) as src, target.client(timeout=10) as dst:
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source.node_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target.node_id)
        while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 1):
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            time.sleep(pause)
        for node in (target, source):
            with node.client(timeout=10) as client:
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
    for node in cluster.nodes:  # the others learn it by gossip; tell them at once, as the tool does
        if node.alive() and node not in (source, target) and node.primary_index is None:
            with node.client() as client, contextlib.suppress(redis.RedisError):
                client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target.node_id)
    return moved


class TestSlotMigration:
    async def test_a_shard_moved_between_primaries_mid_burst_loses_and_doubles_nothing(
        self, tmp_path: Path, key_prefix: str, mail: MailCatcher, cluster_report: list[str]
    ) -> None:
        cluster = start_or_skip(tmp_path / "cluster")
        client: aioredis.Redis | None = None
        week = WorkWeek(cluster.url, key_prefix, mail, tmp_path)
        try:
            client = redis_client(
                CommonSettings(redis_url=SecretStr(cluster.url), redis_cluster=True)
            )
            keys = week.keys
            slot = cluster.slot(keys.due(0))
            source = cluster.primary_of(keys.due(0))
            target = next(n for n in cluster.primaries() if n is not source)
            week.start(schedulers=2, notifiers=2)
            await week.publish_preferences(client)
            await eventually(
                lambda: applied(client, keys, week.couples),
                until=lambda n: n == week.couples,
                within=week.lead + 20,
            )
            await asyncio.sleep(max(0.0, week.wall(WEDNESDAY_CHECK_IN) - time.time() - 0.3))
            began = time.monotonic()
            moved = await asyncio.to_thread(_migrate_slot, cluster, slot, source, target, 0.05)
            took = time.monotonic() - began
            assert cluster.primary_of(keys.due(0)) is target
            await asyncio.sleep(max(0.0, week.wall(week.end) - time.time()))
            expected = len(week.expected_sends())
            await eventually(lambda: _count(mail), until=lambda n: n >= expected, within=60)
            await eventually(lambda: undrained(client, keys), until=_empty, within=30)
            await asyncio.sleep(1.0)  # a late double would show here
            sent = await sends(client, keys)
            fired: Counter[str] = Counter()
            for shard in range(keys.shards):
                for event in await read_events(client, keys.due(shard), parse_due):
                    fired[f"{event.data.occurrence_id}|{shard}"] += 1
        finally:
            codes = week.stop()
            if client is not None:
                await client.aclose()
            cluster.stop()
        # Counted by outcome, not by address: a run slower than planned lets the shared clock
        # reach next Monday's check-in, occurrences of their own (not repeats).
        lost = len(week.expected_sends() - set(sent))
        doubled = len(mail.messages) - sum(sent.values())  # an email sent again has no outcome
        cluster_report.append(
            f"slot of shard 0 migrated key by key ({moved} keys, {took:.1f}s) in the "
            f"Wednesday burst: lost {lost}, doubled {doubled}"
        )
        assert codes == [0, 0, 0, 0], week.logs()
        assert [k for k, n in fired.items() if n > 1] == []  # each occurrence fired once
        assert [k for k, n in sent.items() if n > 1] == []  # each (occurrence, partner) once
        assert lost == 0, week.expected_sends() - set(sent)
        assert doubled == 0


async def _count(mail: MailCatcher) -> int:
    return len(mail.messages)


def _empty(found: list[str]) -> bool:
    return not found
