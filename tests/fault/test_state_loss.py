"""kill -9 a Redis without persistence and restart it empty on the same port, under running
scheduler and notifier processes: they notice, say so once, and consume again without a restart.

Before issue 15, both processes stayed alive consuming nothing: FastStream stopped every
subscriber on the missing group, the reclaimers logged errors, new preferences sat on the
stream with no group, and nudges in flight were reported `erased`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner

from couples_nudge.cli import app
from couples_nudge.common.keys import Keys
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.embedded.valkey import EmbeddedValkey, free_port
from couples_nudge_schemas import NudgeSuppressed, ServiceStateLost, parse_outcomes_entry
from tests.support.couples import couple_event
from tests.support.processes import ServiceProcess
from tests.support.waiting import eventually

pytestmark = pytest.mark.fault

START = datetime(2026, 12, 7, tzinfo=UTC)
COUPLES = 8
# Every 4 simulated hours (the shortest raw cron allowed), to both partners at once.
EVERY_FOUR_HOURS = {
    "check_in": {"cadence": {"repeat": "cron", "cron": "0 */4 * * *"}, "timing": "together"}
}


async def _publish_couples(redis: aioredis.Redis, keys: Keys) -> None:
    """What a publishing app does at first, and again when it reads service.state_lost.v1."""
    for n in range(COUPLES):
        await redis.xadd(keys.preferences, {DATA_FIELD: couple_event(n, nudges=EVERY_FOUR_HOURS)})


async def _outcomes(redis: aioredis.Redis, keys: Keys) -> list[Any]:
    return list(await read_events(redis, keys.outcomes, parse_outcomes_entry))


async def _notices(redis: aioredis.Redis, keys: Keys) -> list[ServiceStateLost]:
    return [e for e in await _outcomes(redis, keys) if isinstance(e, ServiceStateLost)]


async def _emails(mail: MailCatcher) -> int:
    return len(mail.messages)


async def _applied(redis: aioredis.Redis, keys: Keys) -> bool:
    """Every republished couple has its timer, and the preferences queue is empty."""
    return await redis.zcard(keys.timers(0)) == COUPLES and await redis.xlen(keys.preferences) == 0


def _critical_lines(*logs: str) -> list[dict[str, Any]]:
    lines = []
    for text in logs:
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == "state_lost":
                lines.append(record)
    return lines


class TestRedisLostItsState:
    async def test_services_recover_report_once_and_erase_nobody(
        self, tmp_path: Path, fault_report: list[str]
    ) -> None:
        """Both services consume again within seconds; one notice; /readyz and `nudge status`
        say so; no nudge is reported `erased`."""
        port = free_port()
        server = EmbeddedValkey(port=port).start()  # no persistence: a restart comes back empty
        url, keys = server.url, Keys()
        redis = aioredis.Redis.from_url(url)
        http = {"scheduler": free_port(), "notifier": free_port()}
        anchor = time.time() + 4.0  # processes are up before simulated time starts
        with MailCatcher() as mail:
            env = {
                "REDIS_URL": url,
                "NUDGE_SMTP_PORT": str(mail.port),
                "NUDGE_CLOCK_START": START.isoformat(),
                "NUDGE_CLOCK_SPEED": "3600",  # a simulated hour per second
                "NUDGE_CLOCK_ANCHOR": str(anchor),
                "NUDGE_MAX_POLL_SECONDS": "0.02",
                "NUDGE_DAILY_CAP_PER_PARTNER": "50",
            }
            procs = {
                role: ServiceProcess(
                    role, {**env, "NUDGE_HTTP_PORT": str(http[role])}, tmp_path, role
                ).start()
                for role in ("scheduler", "notifier")
            }
            try:
                await _publish_couples(redis, keys)
                before = await eventually(
                    lambda: _emails(mail), until=lambda n: n >= 4 * COUPLES, within=90
                )
                await redis.aclose()
                server.kill()  # kill -9, mid-run
                await asyncio.sleep(1.0)
                server = EmbeddedValkey(port=port).start()  # empty, same port
                restarted = time.monotonic()
                redis = aioredis.Redis.from_url(url)

                [notice] = await eventually(
                    lambda: _notices(redis, keys), until=lambda n: len(n) >= 1, within=30
                )
                noticed = time.monotonic() - restarted
                await _publish_couples(redis, keys)
                at_republish = len(mail.messages)
                await eventually(lambda: _applied(redis, keys), until=bool, within=30)
                applied = time.monotonic() - restarted
                await eventually(
                    lambda: _emails(mail),
                    until=lambda n: n >= at_republish + 2 * COUPLES,
                    within=60,
                )
                delivered = time.monotonic() - restarted

                ready = {}
                async with httpx.AsyncClient() as client:
                    for role, p in http.items():
                        ready[role] = await client.get(f"http://127.0.0.1:{p}/readyz")
                status = await asyncio.to_thread(
                    CliRunner().invoke, app, ["status", "--json"], env={"REDIS_URL": url}
                )
                outcomes = await _outcomes(redis, keys)
            finally:
                codes = {role: p.terminate() for role, p in procs.items()}
                await redis.aclose()
                server.stop()
        logs = {role: p.log() for role, p in procs.items()}
        notices = [e for e in outcomes if isinstance(e, ServiceStateLost)]
        reasons = Counter(e.data.reason for e in outcomes if isinstance(e, NudgeSuppressed))
        criticals = _critical_lines(*logs.values())
        fault_report.append(
            f"redis kill -9 without persistence, restarted empty: notice after {noticed:.1f}s, "
            f"republished preferences applied after {applied:.1f}s, nudges delivered again "
            f"after {delivered:.1f}s; {before} emails before, "
            f"notices {len(notices)}, in-flight suppressed state_lost "
            f"{reasons['state_lost']}, erased {reasons['erased']}"
        )
        print(fault_report[-1])
        assert codes == {"scheduler": 0, "notifier": 0}, str(logs)[-3000:]
        assert len(notices) == 1
        assert notices[0].event_id == notice.event_id
        assert notice.data.detected_by.split("-")[0] in ("scheduler", "notifier")
        assert reasons["erased"] == 0
        assert len(criticals) == 1, criticals
        for role, answer in ready.items():
            assert answer.status_code == 200, (role, answer.text)
            assert answer.json()["state_lost"]["detected_by"] == notice.data.detected_by
        assert status.exit_code == 0, status.output
        assert json.loads(status.output)["state_lost_recently"] is True
