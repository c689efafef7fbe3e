"""The other peer: Celery beat with RedBeat (schedule kept in Redis), measured without workers.

Beat is what decides *when*; workers only execute. So we run `celery beat` with the RedBeat
scheduler and count what beat itself emits: task messages pushed onto the broker's queue
(a Redis list), sampled every 10 ms. One crontab entry per couple, all due at one minute
(crontab has minute resolution, so the run waits for the next whole minute).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import redis
from celery import Celery

from benchmarks.peers import PeerResult

QUEUE = "celery"


class Sample(NamedTuple):
    """The broker queue's length, read at `at` (epoch seconds)."""

    at: float
    queued: int


REPO = Path(__file__).resolve().parents[1]

app = Celery("nudge_bench", broker=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    redbeat_redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
    redbeat_key_prefix="redbeat:",
    timezone="UTC",
    enable_utc=True,
    beat_max_loop_interval=1,
    broker_connection_retry_on_startup=True,
)


def _nudge(couple_id: str) -> None:  # never executed here: no worker runs
    return None


nudge = app.task(name="nudge")(_nudge)


def run(url: str, n: int) -> dict[str, Any]:
    from celery.schedules import crontab
    from redbeat import RedBeatSchedulerEntry

    os.environ["BENCH_REDIS_URL"] = url
    app.conf.update(broker_url=url, redbeat_redis_url=url)
    r = redis.Redis.from_url(url)
    memory0 = int(r.info("memory")["used_memory"])
    # The next whole minute leaving time to save every entry (~2,000/s) and start beat.
    earliest = datetime.now(UTC) + timedelta(seconds=n / 1500 + 8)
    instant = (earliest + timedelta(minutes=1)).replace(second=0, microsecond=0)
    schedule = crontab(
        minute=instant.minute, hour=instant.hour, day_of_week=(instant.weekday() + 1) % 7
    )
    started = time.perf_counter()
    for i in range(n):
        RedBeatSchedulerEntry(f"c{i:07d}", "nudge", schedule, args=[f"c{i:07d}"], app=app).save()
    add_seconds = time.perf_counter() - started
    bytes_per_job = (int(r.info("memory")["used_memory"]) - memory0) / n
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "benchmarks.peer_redbeat",
            "beat",
            "-S",
            "redbeat.RedBeatScheduler",
            "--loglevel",
            "WARNING",
            "--max-interval",
            "1",
        ],
        cwd=REPO,
        env={**os.environ, "BENCH_REDIS_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    seen: list[Sample] = []
    try:
        deadline = instant.timestamp() + max(120.0, n / 100)
        while time.time() < deadline:
            count = int(r.llen(QUEUE))
            if not seen or count != seen[-1].queued:
                seen.append(Sample(time.time(), count))
            if count >= n or beat.poll() is not None:
                break
            time.sleep(0.01)
    finally:
        beat.terminate()
        try:
            _, err = beat.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            beat.kill()
            _, err = beat.communicate()
    if not seen or seen[-1].queued == 0:
        raise RuntimeError(f"celery beat emitted nothing: {err.decode(errors='replace')[-500:]}")
    # The k-th message appeared by the first sample that counted at least k of them.
    lateness: list[float] = []
    previous = 0
    for sample in seen:
        lateness += [sample.at - instant.timestamp()] * max(0, sample.queued - previous)
        previous = max(previous, sample.queued)
    return PeerResult.from_lateness(
        n, lateness, adds_per_s=n / add_seconds, bytes_per_job=bytes_per_job
    ).as_dict()
