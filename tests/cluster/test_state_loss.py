"""One primary of the cluster (and its replica) comes back empty under running services: the
loss is noticed and reported once, and the couples of the other primaries keep being served.

This test starts its own cluster (it restarts nodes). The state marker lives in the outcomes
stream's slot; the primary restarted here is another one, so only a marker per shard
(`Keys.shard_state`) can tell that its shards' couples, timers and groups are gone. Before
that, nothing was reported: the services went on and a third of the couples were never
nudged again, silently.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from couples_nudge.common.keys import Keys
from couples_nudge.common.runtime import redis_client
from couples_nudge.common.settings import CommonSettings
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge_schemas import ServiceStateLost, parse_outcomes_entry
from tests.support.cluster import start_or_skip
from tests.support.couples import couple_event
from tests.support.processes import ServiceProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

SHARDS = 8
COUPLES = 24
START = datetime(2026, 12, 7, tzinfo=UTC)
# Every 4 simulated hours (4 real seconds at 3600x), to both partners at once.
EVERY_FOUR_HOURS = {
    "check_in": {"cadence": {"repeat": "cron", "cron": "0 */4 * * *"}, "timing": "together"}
}


async def _publish(redis: aioredis.Redis, keys: Keys, couples: list[int]) -> None:
    for n in couples:
        await redis.xadd(keys.preferences, {DATA_FIELD: couple_event(n, nudges=EVERY_FOUR_HOURS)})


async def _notices(redis: aioredis.Redis, keys: Keys) -> list[ServiceStateLost]:
    events: list[Any] = list(await read_events(redis, keys.outcomes, parse_outcomes_entry))
    return [e for e in events if isinstance(e, ServiceStateLost)]


def _emailed(mail: MailCatcher, since: int = 0) -> Counter[int]:
    """Emails per couple number since the `since`-th message."""
    return Counter(
        int(str(m["To"]).split("-")[-1].split("@")[0]) for m in list(mail.messages)[since:]
    )


class TestOnePrimaryLostItsState:
    async def test_noticed_reported_once_and_the_other_primaries_couples_still_served(
        self, tmp_path: Path, key_prefix: str, mail: MailCatcher, cluster_report: list[str]
    ) -> None:
        """Restart the primary of a shard (not the marker's) and its replica empty, with 2
        schedulers and 2 notifiers running: one service.state_lost.v1 within seconds; the
        couples of the other primaries get their nudges on."""
        cluster = start_or_skip(tmp_path / "cluster", shards=SHARDS)
        keys = Keys(prefix=key_prefix, shards=SHARDS)
        client = redis_client(CommonSettings(redis_url=SecretStr(cluster.url), redis_cluster=True))
        marker_home = cluster.primary_of(keys.state)
        victim = next(
            cluster.primary_of(keys.due(s))
            for s in range(SHARDS)
            if cluster.primary_of(keys.due(s)) is not marker_home
        )
        lost_shards = {s for s in range(SHARDS) if cluster.primary_of(keys.due(s)) is victim}
        lost = {n for n in range(COUPLES) if keys.shard_of(f"c{n:05d}") in lost_shards}
        kept = set(range(COUPLES)) - lost
        env = {
            "REDIS_URL": cluster.url,
            "NUDGE_REDIS_CLUSTER": "true",
            "NUDGE_SHARDS": str(SHARDS),
            "NUDGE_KEY_PREFIX": key_prefix,
            "NUDGE_SMTP_PORT": str(mail.port),
            "NUDGE_CLOCK_START": START.isoformat(),
            "NUDGE_CLOCK_SPEED": "3600",
            "NUDGE_CLOCK_ANCHOR": str(time.time() + 4.0),
            "NUDGE_MAX_POLL_SECONDS": "0.05",
            "NUDGE_RECLAIM_IDLE": "PT5S",
            "NUDGE_DAILY_CAP_PER_PARTNER": "50",
        }
        processes = [
            ServiceProcess(role, env, tmp_path, f"{role}-{i}").start()
            for role in ("scheduler", "notifier")
            for i in range(2)
        ]
        try:
            await _publish(client, keys, list(range(COUPLES)))
            await eventually(  # every couple nudged once: the services run
                lambda: asyncio.sleep(0, _emailed(mail)),
                until=lambda got: all(got[n] >= 2 for n in range(COUPLES)),
                within=60,
            )
            cluster.restart_empty(victim)
            restarted = time.monotonic()
            at_restart = len(mail.messages)
            cluster.wait_healthy(timeout=30)
            notices = await eventually(
                lambda: _notices(client, keys), until=lambda found: len(found) >= 1, within=30
            )
            noticed = time.monotonic() - restarted
            await eventually(  # the other primaries' couples: two more rounds each
                lambda: asyncio.sleep(0, _emailed(mail, at_restart)),
                until=lambda got: all(got[n] >= 4 for n in kept),
                within=30,
            )
            served = time.monotonic() - restarted
            await _publish(client, keys, sorted(lost))  # what publishers do on the notice
            at_republish = len(mail.messages)
            await eventually(
                lambda: asyncio.sleep(0, _emailed(mail, at_republish)),
                until=lambda got: all(got[n] >= 2 for n in lost),
                within=30,
            )
            back = time.monotonic() - restarted
            await asyncio.sleep(3.0)  # every process has checked again since
            notices = await _notices(client, keys)
        finally:
            codes = [p.terminate() for p in processes if p.alive()]
            await client.aclose()
            cluster.stop()
        cluster_report.append(
            f"primary of shards {sorted(lost_shards)} restarted empty: {len(notices)} notice(s) "
            f"after {noticed:.1f}s, other couples served on ({served:.1f}s), republished "
            f"couples nudged again after {back:.1f}s"
        )
        assert codes == [0, 0, 0, 0], "\n".join(p.log()[-2000:] for p in processes)
        assert len(notices) == 1, notices
