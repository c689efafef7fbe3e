"""SIGTERM to real service processes: one shutdown budget, unfinished work left pending for
another replica, no error-level lines; and a slow preferences batch is neither taken over by
a second scheduler nor in the way of a stop.

Each test prints its figures (seconds to exit, entries left pending, applied twice) into the
run's summary ("fault tests: lost / doubled").
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import NOTIFIER_GROUP, SCHEDULER_GROUP
from couples_nudge.common.streams import DATA_FIELD
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from tests.support.couples import couple_event, plant_couples
from tests.support.processes import ServiceProcess, catches, pid_inside, pid_one_available
from tests.support.settings import scheduler_settings
from tests.support.throttle import CpuQuota
from tests.support.waiting import drained, eventually

pytestmark = pytest.mark.fault

BUDGET_S = 3.0  # NUDGE_SHUTDOWN_TIMEOUT in these tests
BATCH = 500  # one full preferences batch (the scheduler reads up to 500 entries at once)
STARVED = 0.02  # the busy scheduler's CPU quota: 2 ms of every 100 ms, like a starved pod
# Hungrier still for the batch that must outlast NUDGE_RECLAIM_IDLE by half again: ingestion
# got faster, and at 2 % a batch of 500 took 2.8-7 s (a CI rehearsal read 2.8, under 3).
STARVED_LONGER = 0.01
SHUTDOWN_SHARE = 0.1  # its quota while it stops
SLACK_S = 5.0  # generous: interpreter exit on a busy machine, not a promise about speed
FRIDAY = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)
TOGETHER = {
    "date_night": {
        "cadence": {"repeat": "weekly", "weekday": "fri", "at": "19:00"},
        "timing": "together",
    }
}


def _costly(n: int) -> dict[str, Any]:
    """Three raw crons per couple, each its own (no shared plan): the dearest couples to plan
    (still well under a millisecond: a batch is made long by a CPU quota, `CpuQuota`)."""
    kinds = ("date_night", "check_in", "appreciation")
    return {
        kind: {"cadence": {"repeat": "cron", "cron": f"{(n + 20 * i) % 60} */4 * * *"}}
        for i, kind in enumerate(kinds)
    }


def _noise(log: str) -> list[str]:
    """Lines at error or critical level, and anything that is not a JSON log line."""
    bad = []
    for line in log.splitlines():
        if not line.strip():
            continue
        try:
            level = json.loads(line).get("level")
        except ValueError:
            bad.append(line)
            continue
        if level in ("error", "critical"):
            bad.append(line)
    return bad


async def _running(service: ServiceProcess) -> None:
    """Wait until the process has started its service (its signal handlers are installed)."""

    async def lines() -> bool:
        await asyncio.sleep(0)
        return '"service_running"' in service.log()

    await eventually(lines, until=bool, within=60)


def _stop_timed(service: ServiceProcess) -> tuple[int, float]:
    """SIGTERM; the exit code and the seconds until the process was gone."""
    began = time.monotonic()
    code = service.terminate(timeout=60)
    return code, time.monotonic() - began


async def _pending(redis: aioredis.Redis, stream: str, group: str) -> int:
    """Entries delivered to the group and not acknowledged (0 before the group exists)."""
    try:
        return int((await redis.xpending(stream, group))["pending"])
    except ResponseError:  # NOGROUP: the service has not started yet
        return 0


async def _publish(redis: aioredis.Redis, stream: str, couples: int) -> list[str]:
    """One preferences.set per couple, with costly plans, in one transaction (one batch)."""
    async with redis.pipeline(transaction=True) as pipe:
        for n in range(couples):
            pipe.xadd(stream, {DATA_FIELD: couple_event(n, nudges=_costly(n))})
        ids: list[bytes] = await pipe.execute()
    return [i.decode() for i in ids]


def _applied(*services: ServiceProcess) -> Counter[str]:
    """How often each preferences entry was applied, from the services' debug lines."""
    seen: Counter[str] = Counter()
    for service in services:
        for line in service.log().splitlines():
            if '"preference_applied"' in line:
                seen[json.loads(line)["entry_id"]] += 1
    return seen


def _stale(*services: ServiceProcess) -> int:
    """Events found already applied (a second application of the same entry)."""
    count = 0
    for service in services:
        for line in service.log().splitlines():
            if '"preference_applied"' in line and json.loads(line).get("result") == "stale":
                count += 1
    return count


class TestNotifierStop:
    async def test_sigterm_with_sends_stuck_exits_in_budget_and_leaves_them_pending(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        mail: MailCatcher,
        tmp_path: Path,
        fault_report: list[str],
    ) -> None:
        """Sends hang on a slow SMTP server: SIGTERM exits 0 within the budget, without
        error-level lines; what was unfinished is still pending and a second notifier
        delivers it."""
        couples, concurrency = 20, 4
        settings = scheduler_settings(redis_url, key_prefix)
        store = ScheduleStore(redis, settings.keys, due_maxlen=1_000_000)
        await plant_couples(store, settings, couples, FRIDAY, nudges=TOGETHER)
        loop = TimerLoop(store, ManualClock(FRIDAY + timedelta(hours=1, seconds=5)), settings)
        while await loop.tick(0):
            pass
        due = settings.keys.due(0)
        mail.stall(600)
        env = {
            "REDIS_URL": redis_url,
            "NUDGE_KEY_PREFIX": key_prefix,
            "NUDGE_SMTP_PORT": str(mail.port),
            "NUDGE_SMTP_CONCURRENCY": str(concurrency),
            "NUDGE_SMTP_TIMEOUT": "300",  # the sends stay stuck: no timeout, no retry
            "NUDGE_MAX_IN_FLIGHT": "8",  # the batch's other entries wait for a place
            "NUDGE_SHUTDOWN_TIMEOUT": f"PT{BUDGET_S:g}S",
            "NUDGE_LOG_LEVEL": "debug",
        }
        first = ServiceProcess("notifier", env, tmp_path, "notifier-stuck").start()
        try:
            await eventually(
                lambda: _pending(redis, due, NOTIFIER_GROUP), until=lambda n: n == couples
            )
            await asyncio.sleep(2.0)  # the first sends reach DATA and hang there
            code, seconds = _stop_timed(first)
        finally:
            if first.alive():
                first.kill()
        left = await _pending(redis, due, NOTIFIER_GROUP)
        noise = _noise(first.log())
        mail.stall(0)
        env |= {"NUDGE_RECLAIM_IDLE": "PT1S", "NUDGE_LOG_LEVEL": "info"}
        with ServiceProcess("notifier", env, tmp_path, "notifier-after") as second:
            await eventually(lambda: _unique(mail), until=lambda n: n >= 2 * couples, within=120)
            await eventually(lambda: drained(redis, due), until=bool, within=60)
            second_code = second.terminate()
        received = Counter(str(m["To"]) for m in mail.messages)
        lost, doubled = 2 * couples - len(received), sum(received.values()) - len(received)
        fault_report.append(
            f"notifier SIGTERM with sends stuck (budget {BUDGET_S:g} s): exit {code} in "
            f"{seconds:.1f} s, left pending {left}/{couples}, error lines {len(noise)}; "
            f"then delivered by another: lost {lost}, doubled {doubled}"
        )
        assert (code, second_code) == (0, 0), first.log()[-3000:]
        assert seconds <= BUDGET_S + SLACK_S
        assert noise == [], "\n".join(noise)
        assert left == couples  # none finished: all left for another replica, none acked
        assert lost == 0
        assert doubled == 0  # the hung transactions were never confirmed, so never kept


class TestSchedulerSlowBatch:
    async def test_a_batch_in_progress_is_not_taken_over_by_another_scheduler(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        tmp_path: Path,
        fault_report: list[str],
    ) -> None:
        """A batch that takes far longer than NUDGE_RECLAIM_IDLE (its scheduler is held to a
        small CPU quota) stays with the scheduler applying it (its entries are kept claimed):
        every entry is applied exactly once, though a second scheduler is idle beside it."""
        couples = BATCH
        settings = scheduler_settings(redis_url, key_prefix)
        stream = settings.keys.preferences
        env = {
            "REDIS_URL": redis_url,
            "NUDGE_KEY_PREFIX": key_prefix,
            "NUDGE_RECLAIM_IDLE": "PT2S",
            "NUDGE_LOG_LEVEL": "debug",
        }
        first = ServiceProcess("scheduler", env, tmp_path, "scheduler-busy").start()
        second: ServiceProcess | None = None
        try:
            await _running(first)
            with CpuQuota(first.pid, share=STARVED_LONGER):
                ids = await _publish(redis, stream, couples)
                await eventually(
                    lambda: _pending(redis, stream, SCHEDULER_GROUP),
                    until=lambda n: n == couples,
                    within=60,
                )
                began = time.monotonic()
                second = ServiceProcess("scheduler", env, tmp_path, "scheduler-idle").start()
                await _running(second)
                await eventually(lambda: redis.xlen(stream), until=lambda n: n == 0, within=240)
                batch_s = time.monotonic() - began
            await eventually(
                lambda: _pending(redis, stream, SCHEDULER_GROUP), until=lambda n: n == 0
            )
            codes = [first.terminate(), second.terminate()]
        finally:
            for service in (first, second):
                if service is not None and service.alive():
                    service.kill()
        applied = _applied(first, second)
        twice = sum(n - 1 for n in applied.values())
        stale = _stale(first, second)
        fault_report.append(
            f"scheduler batch of {couples} couples at {STARVED_LONGER:.0%} CPU ({batch_s:.0f} s, "
            f"reclaim idle 2 s, 2 schedulers): applied {len(applied)}, applied twice {twice}, "
            f"stale {stale}"
        )
        assert codes == [0, 0]
        assert batch_s > 3.0  # the premise: the batch outlasts the idle time by half again
        assert set(applied) == set(ids)
        assert twice == 0
        assert stale == 0

    async def test_sigterm_mid_batch_exits_in_budget_and_leaves_the_rest_pending(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        tmp_path: Path,
        fault_report: list[str],
    ) -> None:
        """SIGTERM during a long batch: the scheduler stops between entries within the budget
        (exit 0, no error-level lines); what it applied is acknowledged and deleted, the rest is
        left pending and applied once by another scheduler."""
        couples = BATCH
        settings = scheduler_settings(redis_url, key_prefix)
        stream = settings.keys.preferences
        env = {
            "REDIS_URL": redis_url,
            "NUDGE_KEY_PREFIX": key_prefix,
            "NUDGE_SHUTDOWN_TIMEOUT": f"PT{BUDGET_S:g}S",
            "NUDGE_LOG_LEVEL": "debug",
        }
        first = ServiceProcess("scheduler", env, tmp_path, "scheduler-stopped").start()
        try:
            await _running(first)
            with CpuQuota(first.pid, share=STARVED) as quota:
                ids = await _publish(redis, stream, couples)
                await eventually(
                    lambda: _pending(redis, stream, SCHEDULER_GROUP),
                    until=lambda n: n == couples,
                    within=60,
                )
                await asyncio.sleep(1.0)  # some entries into the batch
                # Still held to a quota while it stops (a tenth: time to shut down well inside
                # the budget): unthrottled, one 50 ms planning slice can finish the batch
                # before the next check for a stop, and the test would prove nothing.
                quota.share = SHUTDOWN_SHARE
                began = time.monotonic()
                os.kill(first.pid, signal.SIGTERM)
                code = first.terminate(timeout=60)
                seconds = time.monotonic() - began
        finally:
            if first.alive():
                first.kill()
        left = await _pending(redis, stream, SCHEDULER_GROUP)
        remaining = await redis.xlen(stream)
        done_first = _applied(first)
        noise = _noise(first.log())
        env |= {"NUDGE_RECLAIM_IDLE": "PT1S"}
        with ServiceProcess("scheduler", env, tmp_path, "scheduler-after") as second:
            await _running(second)
            await eventually(lambda: redis.xlen(stream), until=lambda n: n == 0, within=240)
            await eventually(
                lambda: _pending(redis, stream, SCHEDULER_GROUP), until=lambda n: n == 0
            )
            second_code = second.terminate()
        applied = _applied(first, second)
        twice = sum(n - 1 for n in applied.values())
        fault_report.append(
            f"scheduler SIGTERM mid-batch (budget {BUDGET_S:g} s): exit {code} in "
            f"{seconds:.1f} s, applied {len(done_first)}/{couples}, left pending {left}, "
            f"error lines {len(noise)}; then applied by another: {len(applied) - len(done_first)}"
            f", applied twice {twice}"
        )
        assert (code, second_code) == (0, 0), first.log()[-3000:]
        assert seconds <= BUDGET_S + SLACK_S
        assert noise == [], "\n".join(noise)
        assert 0 < len(done_first) < couples  # stopped mid-batch, between entries
        assert left == remaining == couples - len(done_first)  # applied: acked and deleted
        assert set(applied) == set(ids)
        assert twice == 0


async def _unique(mail: MailCatcher) -> int:
    return len({str(m["To"]) for m in mail.messages})


@pytest.mark.skipif(not pid_one_available(), reason="needs root and util-linux's unshare")
class TestAsPidOne:
    """As a container's entry point (PID 1, which the kernel sends only the signals it has a
    handler for), SIGTERM stops the service at any moment, from before its imports on."""

    @staticmethod
    def _service(redis_url: str, key_prefix: str, tmp_path: Path) -> ServiceProcess:
        env = {"REDIS_URL": redis_url, "NUDGE_KEY_PREFIX": key_prefix, "NUDGE_LOG_LEVEL": "info"}
        return ServiceProcess("scheduler", env, tmp_path, "pid1", pid_one=True)

    async def test_sigterm_is_caught_before_the_service_starts(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, tmp_path: Path
    ) -> None:
        """SIGTERM is caught before the imports (not only once the event loop runs), and a
        SIGTERM then exits 0 at once, without starting the service."""
        with self._service(redis_url, key_prefix, tmp_path) as service:
            pid = service.pid
            assert pid_inside(pid) == 1

            async def catching() -> bool:
                return catches(pid, signal.SIGTERM)

            await eventually(catching, until=bool, within=30)
            code, seconds = _stop_timed(service)
        print(f"\n[pid 1] SIGTERM before start: exit {code} after {seconds:.2f} s")
        assert code == 0, service.log()
        assert '"service_running"' not in service.log()
        assert seconds < SLACK_S

    async def test_sigterm_once_running_stops_gracefully(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, tmp_path: Path
    ) -> None:
        with self._service(redis_url, key_prefix, tmp_path) as service:
            await _running(service)
            code, seconds = _stop_timed(service)
        print(f"\n[pid 1] SIGTERM running: exit {code} after {seconds:.2f} s")
        assert code == 0, service.log()
        assert '"service_stopped"' in service.log()
        assert _noise(service.log()) == []
