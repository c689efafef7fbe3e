"""Memory: Redis bytes per schedule (timer + record) and per couple (every key), at N couples.

The realistic mix (4 schedules per couple: date night together, a monthly check-in,
appreciation 3x a week for each partner) is ingested through PreferenceIngest.apply_many.
Per couple: the INFO memory used_memory delta over N. Per schedule: MEMORY USAGE (all
samples) of the timers zset and the schedules hash over the number of schedules.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import redis.asyncio as aioredis

from benchmarks.harness import (
    Options,
    Row,
    couple_event,
    private_server,
    scheduler_settings,
    used_memory,
)
from schemas import parse_preference
from services.common.clock import ManualClock
from services.scheduler.ingest import PreferenceIngest
from services.scheduler.store import ScheduleStore

DEFAULT_N = 100_000
START = datetime(2026, 12, 1, 9, tzinfo=UTC)


async def measure(url: str, n: int, start: datetime = START) -> dict[str, float]:
    settings = scheduler_settings(url)
    client = aioredis.Redis.from_url(url)
    store = ScheduleStore(client, settings.keys, due_maxlen=settings.due_maxlen)
    ingest = PreferenceIngest(store, ManualClock(start), settings)
    # Create the shard's keys first, so the delta is per couple, not per empty structure.
    warmup = [
        parse_preference(couple_event(n + i, mix="realistic", occurred=start)) for i in range(10)
    ]
    await ingest.apply_many(warmup)
    before = await used_memory(client)
    for i in range(0, n, 1000):
        chunk = [
            parse_preference(couple_event(j, mix="realistic", occurred=start))
            for j in range(i, min(n, i + 1000))
        ]
        await ingest.apply_many(chunk)
    after = await used_memory(client)
    keys = settings.keys
    schedules = int(await client.zcard(keys.timers(0))) - 0
    timers = int(await client.memory_usage(keys.timers(0), samples=0) or 0)
    records = int(await client.memory_usage(keys.schedules(0), samples=0) or 0)
    sample = [keys.couple(f"c{i:07d}") for i in range(0, n, max(1, n // 200))]
    couple_hashes = [int(await client.memory_usage(k, samples=0) or 0) for k in sample]
    profile_lengths = [len(await client.hget(k, "profile") or b"") for k in sample]
    await client.aclose()
    return {
        "per_couple": (after - before) / n,
        "per_schedule": (timers + records) / schedules,
        "timer_per_schedule": timers / schedules,
        "record_per_schedule": records / schedules,
        "schedules_per_couple": schedules / (n + 10),
        "couple_hash": sum(couple_hashes) / len(couple_hashes),
        "profile_json": sum(profile_lengths) / len(profile_lengths),
    }


def run(options: Options) -> list[Row]:
    n = options.n or DEFAULT_N
    with private_server() as url:
        m = asyncio.run(measure(url, n))
    note = f"N = {n:,} couples, {m['schedules_per_couple']:.1f} schedules each"
    return [
        Row(
            "memory",
            "ours",
            "per schedule (timer + record)",
            m["per_schedule"],
            "B",
            target=300,
            goal="min",
            note=note,
            extra=m,
        ),
        Row("memory", "ours", "  timer (zset entry)", m["timer_per_schedule"], "B"),
        Row("memory", "ours", "  record (hash field)", m["record_per_schedule"], "B"),
        Row(
            "memory",
            "ours",
            "per couple (all keys)",
            m["per_couple"],
            "B",
            target=1024,
            goal="min",
            note="INFO used_memory delta / N",
        ),
        Row(
            "memory",
            "ours",
            "  couple hash (profile, rev, sids)",
            m["couple_hash"],
            "B",
            note=f"profile JSON {m['profile_json']:.0f} B",
        ),
    ]
