"""Ten thousand generated hostile entries against a live scheduler, valid events among them.

The entries (tests/support/hostile.py, from a fixed seed) are broken JSON, wrong types, binary
field names and values, huge strings, control characters and every single-field break of a
valid event. They are published in waves of one batch (500 entries), with a valid event for
its own couple every 20 entries. Promises: no crash; every hostile entry lands once on the
rejected stream with a bounded, printable reason; every valid event is applied; nothing is
left pending; and no valid event waits a second behind the hostile ones of its batch.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, cast

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import SCHEDULER_GROUP
from couples_nudge.common.streams import RAW_LIMIT, read_entries
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import REASON_LIMIT
from tests.support.hostile import Fields, hostile_entries, valid_entry
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually

SEED = 15
HOSTILE = 10_000
WAVE = 500  # one batch: the scheduler reads up to 500 entries at a time
VALID_EVERY = 20
BATCH_BOUND_S = 1.0


async def _applied(redis: aioredis.Redis, service: SchedulerService, couples: list[str]) -> int:
    async with redis.pipeline(transaction=False) as pipe:
        for couple in couples:
            pipe.hget(service.keys.couple(couple), "rev")
        revisions: list[bytes | None] = await pipe.execute()
    return sum(rev == b"1" for rev in revisions)


async def _all_applied(
    redis: aioredis.Redis, service: SchedulerService, couples: list[str]
) -> None:
    await eventually(
        lambda: _applied(redis, service, couples), until=lambda n: n == len(couples), within=30
    )


async def _pending(redis: aioredis.Redis, stream: str) -> int:
    groups = await redis.xinfo_groups(stream)
    return sum(int(g["pending"]) for g in groups if g["name"] == SCHEDULER_GROUP.encode())


def _waves(hostile: list[Fields]) -> list[list[tuple[Fields, str | None]]]:
    """Waves of WAVE entries: (fields, None) for hostile ones, (fields, couple) for valid ones."""
    entries: list[tuple[Fields, str | None]] = []
    for index, fields in enumerate(hostile):
        entries.append((fields, None))
        if index % (VALID_EVERY - 1) == VALID_EVERY - 2:
            couple = f"good-{index}"
            entries.append((valid_entry(couple), couple))
    return [entries[i : i + WAVE] for i in range(0, len(entries), WAVE)]


class TestFuzzedInput:
    async def test_hostile_entries_are_rejected_alone_and_valid_ones_applied_promptly(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """10,000+ hostile entries: each rejected once with a bounded reason; each valid event
        among them applied within a second of its batch's publication; nothing pending."""
        settings = scheduler_settings(redis_url, key_prefix, rejected_maxlen=50_000)
        service = SchedulerService(settings, ManualClock(datetime(2026, 12, 1, tzinfo=UTC)))
        hostile = hostile_entries(SEED, HOSTILE)
        assert len(hostile) >= HOSTILE
        hostile_ids: set[str] = set()
        couples: list[str] = []
        delays: list[float] = []
        started = time.monotonic()
        await service.start()
        try:
            for wave in _waves(hostile):
                published = time.monotonic()
                async with redis.pipeline(transaction=False) as pipe:
                    for fields, _ in wave:
                        pipe.xadd(settings.keys.preferences, cast("Any", fields))
                    ids: list[bytes] = await pipe.execute()
                hostile_ids.update(i.decode() for i, (_, c) in zip(ids, wave, strict=True) if not c)
                valid = [c for _, c in wave if c]
                await _all_applied(redis, service, valid)
                delays.append(time.monotonic() - published)
                couples += valid
            await eventually(
                lambda: redis.xlen(settings.keys.rejected),
                until=lambda n: n >= len(hostile),
                within=60,
            )
            await eventually(
                lambda: _pending(redis, settings.keys.preferences), until=lambda n: n == 0
            )
            assert all(not task.done() for task in service._tasks)  # loops still alive
        finally:
            await service.stop()
        elapsed = time.monotonic() - started

        rejected = await read_entries(redis, settings.keys.rejected)
        reasons = [fields[b"reason"].decode() for _, fields in rejected]
        rejected_ids = [fields[b"entry_id"].decode() for _, fields in rejected]
        print(
            f"\nfuzz: {len(hostile)} hostile entries, {len(couples)} valid, "
            f"{len(_waves(hostile))} waves of {WAVE} in {elapsed:.1f} s; "
            f"rejected {len(rejected)}; worst delay of a valid event {max(delays):.3f} s "
            f"(median wave {sorted(delays)[len(delays) // 2]:.3f} s); "
            f"longest reason {max(map(len, reasons))} characters"
        )
        assert sorted(rejected_ids) == sorted(hostile_ids)  # each once, none valid
        assert all(len(r) <= REASON_LIMIT and r.isprintable() for r in reasons)
        assert all(len(fields[b"raw"]) <= RAW_LIMIT for _, fields in rejected)
        assert await _applied(redis, service, couples) == len(couples)
        assert await redis.xlen(settings.keys.preferences) == 0  # handled entries deleted
        assert max(delays) < BATCH_BOUND_S
