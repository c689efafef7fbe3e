"""Steady state: a realistic spread of couples over a week, on a fast clock.

N couples (the realistic mix: zones, weekdays and times vary; 4 schedules each) are ingested,
then one scheduler process (the real TimerLoop.run) runs for `--seconds` of wall time on a
clock `--speed` times faster than real, starting Friday 16:50 UTC (the European evening).
At speed S, N couples fire as often as N x S couples would in real time. Lateness is in real
time: stream entry id (wall ms) - the wall instant the simulated clock reached scheduled_at.
CPU is the scheduler process's user + system time over its wall time.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

from benchmarks.harness import (
    Options,
    RealOffsetClock,
    Row,
    couple_event,
    entry_ms,
    percentile,
    private_server,
    scheduler_settings,
    stream_page,
)
from benchmarks.memory import measure as _ingest_and_measure
from couples_nudge.common.clock import epoch_ms

REPO = Path(__file__).resolve().parents[1]
DEFAULT_N = 50_000
SIM_START = datetime(2026, 12, 4, 16, 50, tzinfo=UTC)  # Friday, before 18:00 in Berlin


def run(options: Options) -> list[Row]:
    n = options.n or DEFAULT_N
    speed, seconds = options.speed, options.seconds
    with private_server() as url:
        # Planned at the start: every first fire is after it, nothing is overdue.
        asyncio.run(_ingest_and_measure(url, n, SIM_START))
        settings = scheduler_settings(url)
        sync = redis.Redis.from_url(url)
        due_key = settings.keys.due(0)
        stop_at = SIM_START + timedelta(seconds=seconds * speed)
        clock = RealOffsetClock(time.time() + 1.0, SIM_START.timestamp(), speed)
        stats = _drive(url, clock, stop_at=stop_at, until=stop_at)
        lateness_ms: list[float] = []
        for entry_id, fields in stream_page(sync, due_key, count=10_000_000):
            written = entry_ms(entry_id) / 1000
            due = json.loads(fields[b"__data__"])
            scheduled = datetime.fromisoformat(due["data"]["scheduled_at"]).timestamp()
            lateness_ms.append((written - clock.wall(scheduled)) * 1000)
        sync.close()
    cpu_pct = stats["cpu_s"] / stats["wall_s"] * 100
    note = (
        f"{n:,} couples at {speed:g}x ~ {n * speed:,.0f} couples in real time; "
        f"{len(lateness_ms)} fires in {seconds:g} s"
    )
    return [
        Row(
            "steady",
            "ours",
            "p50 firing lateness",
            percentile(lateness_ms, 50),
            "ms",
            target=50,
            goal="min",
            note=note,
            extra={**stats, "fires": len(lateness_ms)},
        ),
        Row(
            "steady",
            "ours",
            "p99 firing lateness",
            percentile(lateness_ms, 99),
            "ms",
            target=250,
            goal="min",
        ),
        Row("steady", "ours", "max firing lateness", max(lateness_ms, default=0.0), "ms"),
        Row("steady", "ours", "scheduler CPU", cpu_pct, "% of a core", target=10, goal="min"),
    ]


def _drive(
    url: str, clock: RealOffsetClock, *, stop_at: datetime, until: datetime
) -> dict[str, float]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "benchmarks.scheduler_proc",
            url,
            "--until-ms",
            str(epoch_ms(until)),
            "--stop-at-ms",
            str(epoch_ms(stop_at)),
            "--deadline",
            "900",
        ],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("scheduler process did not start")
    proc.stdin.write(f"{clock.anchor} {clock.start} {clock.speed}\n")
    proc.stdin.flush()
    stats: dict[str, float] = json.loads(proc.stdout.readline())
    proc.wait(timeout=60)
    return stats


_ = couple_event  # the workload is memory.measure's realistic mix
