"""The peer a team would reach for first: APScheduler 3.11 with its RedisJobStore.

One cron job per couple (the same weekly "19:00 date night" rule, all due at one real
instant), stored in Redis; each run XADDs one entry to a stream, so lateness is read from
stream entry ids exactly as for our scheduler. Defaults a team would keep: BackgroundScheduler,
ThreadPoolExecutor(10); misfire_grace_time=None so that late jobs still run (the default of
1 s would silently drop most of a burst), coalesce=True.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import redis

from benchmarks.peers import PeerResult, stream_lateness

STREAM = "aps:due"
JOBS_KEY = "aps:jobs"
RUN_TIMES_KEY = "aps:run_times"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


def nudge(url: str, couple_id: str) -> None:
    """The job: announce the nudge (one XADD), like our NudgeDue."""
    _client(url).xadd(STREAM, {"couple_id": couple_id})


def run(url: str, n: int) -> dict[str, Any]:
    from apscheduler.jobstores.redis import RedisJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    r = _client(url)
    parts = urlsplit(url)
    store = RedisJobStore(
        jobs_key=JOBS_KEY, run_times_key=RUN_TIMES_KEY, host=parts.hostname, port=parts.port
    )
    scheduler = BackgroundScheduler(
        jobstores={"default": store},
        job_defaults={"misfire_grace_time": None, "coalesce": True},
        timezone=UTC,
    )
    scheduler.start(paused=True)
    memory0 = int(r.info("memory")["used_memory"])
    # The instant: whole second, far enough ahead for adding every job at ~1,000/s.
    instant = (datetime.now(UTC) + timedelta(seconds=n / 800 + 5)).replace(microsecond=0)
    trigger = CronTrigger(
        day_of_week=instant.weekday(),
        hour=instant.hour,
        minute=instant.minute,
        second=instant.second,
        timezone=UTC,
    )
    started = time.perf_counter()
    for i in range(n):
        scheduler.add_job(nudge, trigger, args=[url, f"c{i:07d}"], id=f"c{i:07d}")
    add_seconds = time.perf_counter() - started
    bytes_per_job = (int(r.info("memory")["used_memory"]) - memory0) / n
    if datetime.now(UTC) >= instant:
        scheduler.shutdown(wait=False)
        raise RuntimeError("adding the jobs took longer than planned; the instant passed")
    scheduler.resume()
    deadline = instant.timestamp() + max(120.0, n / 100)
    while r.xlen(STREAM) < n and time.time() < deadline:
        time.sleep(0.2)
    scheduler.shutdown(wait=False)
    lateness = stream_lateness(r, STREAM, instant.timestamp())
    return PeerResult.from_lateness(
        n, lateness, adds_per_s=n / add_seconds, bytes_per_job=bytes_per_job
    ).as_dict()
