"""Memory: Redis bytes per schedule (timer + record) and per couple (every key), at N couples.

The realistic mix (4 schedules per couple: date night together, a monthly check-in,
appreciation 3x a week for each partner) is ingested through PreferenceIngest.apply_many.
Per couple: the INFO memory used_memory delta over N. Per schedule: MEMORY USAGE (all
samples) of the timers zset over the number of schedules, plus the record's share of its
couple hash: MEMORY USAGE of sampled couple hashes minus that of a copy without the record
fields, over their records. Also the timer loop's record decode time per fire, on records as
lua.DUE returns them (best of 5 passes over up to 20,000 records of distinct couples).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio as aioredis

from benchmarks.harness import (
    Options,
    Row,
    couple_event,
    private_server,
    scheduler_settings,
    used_memory,
)
from couples_nudge.common.clock import ManualClock
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.records import decode_record
from couples_nudge.scheduler.store import ScheduleStore, TimerRow
from couples_nudge_schemas import parse_preference

DEFAULT_N = 100_000
START = datetime(2026, 12, 1, 9, tzinfo=UTC)


async def measure(url: str, n: int, start: datetime = START) -> dict[str, Any]:
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
    schedules = int(await client.zcard(keys.timers(0)))
    timers = int(await client.memory_usage(keys.timers(0), samples=0) or 0)
    sample = [keys.couple(f"c{i:07d}") for i in range(0, n, max(1, n // 200))]
    share = await couple_hashes(client, sample)
    due = await store.due_records(0, 2**62, 20_000)
    await client.aclose()
    return {
        "per_couple": (after - before) / n,
        "per_schedule": timers / schedules + share["record"],
        "timer_per_schedule": timers / schedules,
        "record_per_schedule": share["record"],
        "schedules_per_couple": schedules / (n + 10),
        "couple_hash": share["hash"],
        "couple_hash_without_records": share["without_records"],
        "profile_values": share["profile_values"],
        "couple_hash_encoding": share["encodings"],
        "decode_us": _decode_us(due),
    }


async def couple_hashes(client: aioredis.Redis, sample: list[str]) -> dict[str, Any]:
    """Mean MEMORY USAGE of sampled couple hashes, with and without their record fields.

    A record's share is the difference over the number of records: what the schedules cost
    in their couples' hashes (a copy of each hash without them is measured, then deleted).
    """
    hashes = records = without = fields = 0
    encodings: set[str] = set()
    for key in sample:
        hashes += int(await client.memory_usage(key, samples=0) or 0)
        encodings.add(cast("bytes", await client.object("encoding", key)).decode())
        raw = cast("dict[bytes, bytes]", await client.hgetall(key))
        profile = {f: v for f, v in raw.items() if b"/" not in f}
        records += len(raw) - len(profile)
        fields += sum(len(v) for v in profile.values())
        scratch = f"{key}:scratch"
        await client.hset(scratch, mapping=profile)  # type: ignore[arg-type]
        without += int(await client.memory_usage(scratch, samples=0) or 0)
        await client.delete(scratch)
    return {
        "hash": hashes / len(sample),
        "without_records": without / len(sample),
        "record": (hashes - without) / max(1, records),
        "profile_values": fields / len(sample),
        "encodings": ",".join(sorted(encodings)),
    }


def _decode_us(due: list[TimerRow]) -> float:
    rows = [(sid, raw) for sid, _, raw in due if raw is not None]
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for sid, raw in rows:
            decode_record(sid, raw)
        best = min(best, (time.perf_counter() - started) / max(1, len(rows)))
    return best * 1e6


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
        Row(
            "memory",
            "ours",
            "  record (field of the couple hash)",
            m["record_per_schedule"],
            "B",
        ),
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
            "  couple hash (profile, records, rev)",
            m["couple_hash"],
            "B",
            note=(
                f"{m['couple_hash_encoding']}; {m['couple_hash_without_records']:.0f} B without"
                f" records; profile values {m['profile_values']:.0f} B"
            ),
        ),
        Row(
            "memory",
            "ours",
            "record decode (timer loop, per fire)",
            m["decode_us"],
            "us",
            note="decode_record on lua.DUE output, best of 5",
        ),
    ]
