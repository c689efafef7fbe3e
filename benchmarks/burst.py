"""Burst: N couples with the same 19:00 date night, and the peers on the same workload.

1. Ingestion through the real path: the scheduler service consuming the preferences stream
   (FastStream batches: validate, apply_many, XDEL + XACK per batch); for comparison the
   service's one-entry path (SchedulerService.handle: parse, plan, APPLY_PLAN, XDEL per
   event, as the Reclaimer uses it) and PreferenceIngest.apply_many on its own.
2. One scheduler process (benchmarks.scheduler_proc: the real TimerLoop.run) emits every
   NudgeDue for the instant; lateness = stream entry id (server wall ms, shifted to simulated
   time) - the scheduled instant. Then two processes on the next week's occurrence.
3. The peers on peer_n jobs due at one instant, each on a private server of its own:
   APScheduler 3.11 (RedisJobStore), Celery beat + RedBeat, arq (_defer_until) and BullMQ
   (delayed jobs; skipped with the reason when node or its packages are missing).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, cast

import redis
import redis.asyncio as aioredis

from benchmarks import floor
from benchmarks.harness import (
    CpuSampler,
    Options,
    RealOffsetClock,
    Row,
    couple_event,
    entry_ms,
    instant_after,
    percentile,
    private_server,
    scheduler_settings,
    stream_page,
)
from benchmarks.memory import couple_hashes
from couples_nudge import runner
from couples_nudge.common.clock import epoch_ms
from couples_nudge.common.keys import SCHEDULER_GROUP
from couples_nudge.common.runtime import redis_client, settle_heap
from couples_nudge.common.streams import DATA_FIELD
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge_schemas import parse_preference

REPO = Path(__file__).resolve().parents[1]
DEFAULT_N = 100_000
SAMPLE = 5_000  # events applied one at a time (the per-message path), before the batched run
START = datetime(2026, 12, 1, 9, tzinfo=UTC)  # a Tuesday; the burst is Friday 19:00 Berlin
# Wall seconds between handing the processes their clock and the instant: a deployed scheduler
# runs long before 19:00, so it sees the instant coming and starts preparing it when its own
# lead says (lookahead.lead_ms: ~6 s for 100,000 fires at the prior cost per step). 3 s cut
# that short on a slow machine (2026-12-07: 68,000 of 100,000 prepared by the instant).
LEAD_S = 8.0


async def ingest(url: str, n: int) -> dict[str, float]:
    settings = scheduler_settings(url)
    client = redis_client(settings)  # the service's own client (hiredis packing)
    raws = [couple_event(i, mix="burst", occurred=START) for i in range(n)]
    sample = raws[: min(n, SAMPLE)]

    service = SchedulerService(settings, moving_clock())
    settle_heap()  # as `nudge scheduler` does before it starts (services/runner.py)
    await service.before_start()
    entries = await _enqueue(client, settings.keys.preferences, sample, read=True)
    started = time.perf_counter()
    for entry, raw in entries:
        await service.handle(raw, entry)
    one_by_one = len(sample) / (time.perf_counter() - started)
    await service.redis.aclose()
    await client.flushdb()

    ingest_ = PreferenceIngest(
        ScheduleStore(client, settings.keys, due_maxlen=settings.due_maxlen),
        moving_clock(),
        settings,
    )
    settle_heap()
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, n, 500):
        results = await ingest_.apply_many([parse_preference(raw) for raw in raws[i : i + 500]])
        assert all(result == "applied" for result in results), results[:3]
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu
    await client.flushdb()

    # The service as deployed: a backlog on the preferences stream, consumed in batches; first
    # the realistic mix (four schedules a couple, two of them times-per-week: seeded per
    # schedule, so each couple's first fires are its own even where its shape is shared), then
    # the burst's couples, which stay for the fire runs.
    mixed = [couple_event(i, mix="realistic", occurred=START) for i in range(n)]
    redis_before = await _redis_cpu_s(client)
    realistic = await drain(settings, client, mixed)
    realistic_redis = (await _redis_cpu_s(client) - redis_before) / n * 1e6
    await client.flushdb()
    weekly = await drain(settings, client, raws)
    couples = int(await client.zcard(settings.keys.timers(0)))
    assert couples == n, couples
    await client.aclose()
    return {
        "one_by_one": one_by_one,
        "batched": n / seconds,
        "cpu_us_per_event": cpu_s / n * 1e6,
        "service": weekly.rate,
        "service_cpu_us_per_event": weekly.cpu_us,
        "realistic": realistic.rate,
        "realistic_cpu_us_per_event": realistic.cpu_us,
        "realistic_redis_us_per_event": realistic_redis,
        "realistic_drain_redis_us_per_event": realistic.redis_us,
    }


async def _redis_cpu_s(client: aioredis.Redis) -> float:
    """The server's CPU seconds so far (INFO cpu: system + user)."""
    info = await client.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


class Drained(NamedTuple):
    """A backlog drained by the scheduler service (`drain`)."""

    rate: float  # events/s
    cpu_us: float  # the scheduler process's CPU per event
    redis_us: float  # Redis's CPU per event while it drained (the backlog's XADDs not in)


async def drain(settings: SchedulerSettings, client: aioredis.Redis, raws: list[bytes]) -> Drained:
    """A scheduler service consuming `raws` from a backlog."""
    service = SchedulerService(settings, moving_clock())
    await _enqueue(client, settings.keys.preferences, raws, read=False)
    settle_heap()
    redis_cpu = await _redis_cpu_s(client)
    started, cpu = time.perf_counter(), time.process_time()
    await service.start()
    while True:  # drained: every entry applied and deleted
        if not await client.xlen(settings.keys.preferences):
            break
        await asyncio.sleep(0.005)
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    redis_s = await _redis_cpu_s(client) - redis_cpu
    await service.stop()
    return Drained(len(raws) / seconds, cpu_s / len(raws) * 1e6, redis_s / len(raws) * 1e6)


def moving_clock() -> RealOffsetClock:
    """START, moving with the wall clock as a deployed service's does: every event planned
    at its own instant (a memo keyed by the instant would never hit in production)."""
    return RealOffsetClock(time.time(), START.timestamp())


async def _enqueue(
    client: aioredis.Redis, stream: str, raws: list[bytes], *, read: bool
) -> list[tuple[str, bytes]]:
    """XADD the events (pipelined); with `read`, deliver them to the scheduler group too."""
    for i in range(0, len(raws), 1000):
        async with client.pipeline(transaction=False) as pipe:
            for raw in raws[i : i + 1000]:
                pipe.xadd(stream, {DATA_FIELD: raw})
            await pipe.execute()
    if not read:
        return []
    reply = cast(
        "list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes]]]]]",
        await client.xreadgroup(SCHEDULER_GROUP, "bench", {stream: ">"}, count=len(raws)),
    )
    return [(entry.decode(), fields[DATA_FIELD.encode()]) for entry, fields in reply[0][1]]


def fire(url: str, instant: datetime, processes: int, n: int) -> dict[str, Any]:
    """Run `processes` scheduler processes over the burst at `instant`; read the due stream."""
    settings = scheduler_settings(url)
    sync = redis.Redis.from_url(url)
    due_key = settings.keys.due(0)
    sync.delete(due_key)
    sync.config_resetstat()  # commandstats of this burst only (Lua and the calls it makes)
    server_pid = int(sync.info("server")["process_id"])
    instant_ms = epoch_ms(instant)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.scheduler_proc", url, "--until-ms", str(instant_ms)],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("scheduler process did not start")
        # Each process wakes up by itself; the instant is LEAD_S of wall time from now.
        clock = RealOffsetClock(time.time() + LEAD_S, instant.timestamp())
        server_cpu = floor.server_cpu_s(sync)
        with CpuSampler([server_pid, *(proc.pid for proc in procs)]) as cpu:
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(f"{clock.anchor} {clock.start} {clock.speed}\n")
                proc.stdin.flush()
            stats = []
            for proc in procs:
                assert proc.stdout is not None
                stats.append(json.loads(proc.stdout.readline()))
        server_cpu = floor.server_cpu_s(sync) - server_cpu
    finally:
        for proc in procs:
            proc.wait(timeout=60)
    lateness: list[float] = []
    scheduled_at = instant.timestamp()
    last = "-"
    while True:
        page = stream_page(sync, due_key, last)
        if last != "-":
            page = page[1:]
        if not page:
            break
        for entry_id, fields in page:
            written = clock.simulated(entry_ms(entry_id) / 1000)
            due = json.loads(fields[b"__data__"])
            at = datetime.fromisoformat(due["data"]["scheduled_at"]).timestamp()
            assert at == scheduled_at, due
            lateness.append(written - at)
        last = page[-1][0].decode()
    redis_us = _redis_us(sync)
    sync.close()
    span = max(lateness) if lateness else 0.0
    # How busy Redis and the schedulers were from the first fire to the last: with Redis's
    # one core near 100 %, more scheduler processes cannot emit faster.
    emitting = (
        clock.wall(scheduled_at + min(lateness, default=0.0)),
        clock.wall(scheduled_at + span),
    )
    server_busy, *schedulers_busy = cpu.busy(*emitting)
    # Redis's CPU from the first fire to the last, per fire: what the instant's lateness is made
    # of (the lookahead's reads came before it); /proc ticks of 10 ms, over a window of ~1 s.
    at_instant_s = server_busy * (emitting[1] - emitting[0])
    return {
        "processes": processes,
        "fired": len(lateness),
        "fired_by_loops": sum(s["fired"] for s in stats),
        # Which process fired how many: on one server one fires them all (NUDGE_LEASE_POLICY)
        "fired_by_process": sorted((s["fired"] for s in stats), reverse=True),
        "fired_ahead": sum(s.get("fired_ahead", 0) for s in stats),  # prepared (lookahead)
        "expected": n,
        "fires_per_s": len(lateness) / span if span > 0 else 0.0,
        "all_within_s": span,
        "first_s": min(lateness) if lateness else 0.0,
        "p50_s": percentile(lateness, 50),
        "p99_s": percentile(lateness, 99),
        "max_s": span,
        "cpu_s": sum(s["cpu_s"] for s in stats),
        "redis_core_busy": server_busy,
        "schedulers_cores_busy": sum(schedulers_busy),
        "redis_us_per_fire": redis_us.get("evalsha", 0.0) / max(1, len(lateness)),
        "redis_cpu_us_per_fire": server_cpu / max(1, len(lateness)) * 1e6,
        "redis_cpu_us_per_fire_at_instant": at_instant_s / max(1, len(lateness)) * 1e6,
        "redis_us_per_fire_by_command": {
            name: round(usec / max(1, len(lateness)), 3) for name, usec in redis_us.items()
        },
    }


def _redis_us(sync: redis.Redis) -> dict[str, float]:
    """Server microseconds by command since the reset (Lua's own calls counted too, and in
    evalsha: its usec is the scripts' whole time)."""
    stats = cast("dict[str, dict[str, float]]", sync.info("commandstats"))
    return {k.removeprefix("cmdstat_"): float(v["usec"]) for k, v in stats.items()}


async def _bytes_per_schedule(url: str, n: int) -> float:
    """The timers zset per schedule plus a record's share of its couple hash (memory.py)."""
    settings = scheduler_settings(url)
    client = aioredis.Redis.from_url(url)
    timers = int(await client.memory_usage(settings.keys.timers(0), samples=0) or 0)
    count = int(await client.zcard(settings.keys.timers(0)))
    sample = [settings.keys.couple(f"c{i:07d}") for i in range(0, n, max(1, n // 200))]
    share = await couple_hashes(client, sample)
    await client.aclose()
    return timers / max(1, count) + float(share["record"])


def run(options: Options) -> list[Row]:
    n = options.n or DEFAULT_N
    rows: list[Row] = []
    with private_server() as url:
        ing = runner.run(ingest(url, n))  # on the services' event loop
        rows += [
            Row(
                "burst",
                "ours",
                "ingest, service, batched",
                ing["service"],
                "events/s",
                target=10_000,
                note=(
                    "SchedulerService consuming a backlog in batches (validate, apply_many, "
                    f"XDEL+XACK); {ing['service_cpu_us_per_event']:.0f} us CPU/event"
                ),
            ),
            Row(
                "burst",
                "ours",
                "ingest, service, realistic mix",
                ing["realistic"],
                "events/s",
                target=12_000,  # issue 20: per process
                extra={
                    "realistic_mix_events_per_s": ing["realistic"],  # benchmarks/targets.py
                    "cpu_us_per_event": ing["realistic_cpu_us_per_event"],
                    "redis_us_per_event": ing["realistic_redis_us_per_event"],
                    "redis_drain_us_per_event": ing["realistic_drain_redis_us_per_event"],
                },
                note=(
                    "as above, 4 schedules/couple (2 times-per-week: first fires per couple); "
                    f"{ing['realistic_cpu_us_per_event']:.0f} us CPU/event, Redis "
                    f"{ing['realistic_redis_us_per_event']:.0f} us CPU/event with the backlog's "
                    f"XADDs, {ing['realistic_drain_redis_us_per_event']:.0f} us draining it"
                ),
            ),
            Row(
                "burst",
                "ours",
                "ingest, realistic mix / burst couples",
                ing["realistic"] / ing["service"],
                "ratio",
                note=(
                    "same run; CPU per event "
                    f"{ing['realistic_cpu_us_per_event'] / ing['service_cpu_us_per_event']:.2f}x"
                ),
            ),
            Row(
                "burst",
                "ours",
                "ingest, service, one at a time",
                ing["one_by_one"],
                "events/s",
                note="SchedulerService.handle per entry (parse, plan, APPLY_PLAN, XDEL)",
            ),
            Row(
                "burst",
                "ours",
                "ingest, apply_many alone",
                ing["batched"],
                "events/s",
                note=f"parse + apply_many; {ing['cpu_us_per_event']:.0f} us CPU/event",
            ),
        ]
        if not options.fires:
            return rows
        friday = instant_after(START, 4, 19, "Europe/Berlin")
        # 1, 2, 2, 1 processes on four weeks' instants: a drift of the machine's speed over
        # the four (linear) cancels from the means, where one run each always put the two
        # processes second. The detail rows are the first of each.
        one, two, two_b, one_b = (
            fire(url, friday + timedelta(days=7 * week), processes, n)
            for week, processes in enumerate((1, 2, 2, 1))
        )
        with redis.Redis.from_url(url) as sync:
            settings = scheduler_settings(url)
            floor_us, pairs = floor.floor_us_per_fire(
                sync, settings.keys.due(0), maxlen=settings.due_maxlen
            )
        per_schedule = asyncio.run(_bytes_per_schedule(url, n))
    for result, label in ((one, "1 process"), (two, "2 processes")):
        extra = {k: v for k, v in result.items() if k not in ("fires_per_s",)}
        rows += [
            Row(
                "burst",
                f"ours, {label}",
                "NudgeDue emitted",
                result["fires_per_s"],
                "fires/s",
                target=25_000,
                extra=extra,
                note=f"{result['fired']}/{n} in {result['all_within_s']:.2f} s",
            ),
            Row("burst", f"ours, {label}", "p50 lateness", result["p50_s"], "s"),
            Row(
                "burst",
                f"ours, {label}",
                "Redis core busy, first to last fire",
                100 * result["redis_core_busy"],
                "%",
                note=(
                    f"server CPU / wall (/proc); scheduler processes "
                    f"{result['schedulers_cores_busy']:.2f} cores"
                ),
            ),
            Row(
                "burst",
                f"ours, {label}",
                "Redis CPU per NudgeDue, first to last fire",
                result["redis_cpu_us_per_fire_at_instant"],
                "us",
                goal="min",
                note="server CPU (/proc) from the first fire to the last / fired: the instant's",
            ),
            Row(
                "burst",
                f"ours, {label}",
                "Redis Lua time per NudgeDue",
                result["redis_us_per_fire"],
                "us",
                note="commandstats evalsha usec / fired (all scripts, lookahead included)",
            ),
            Row(
                "burst",
                f"ours, {label}",
                "p99 lateness",
                result["p99_s"],
                "s",
                target=2.0,
                goal="min",
            ),
            Row(
                "burst",
                f"ours, {label}",
                "all emitted within",
                result["all_within_s"],
                "s",
                target=4.0,
                goal="min",
            ),
        ]
    rows.append(
        Row(
            "burst",
            "ours",
            "Redis bytes per schedule (timer + record)",
            per_schedule,
            "B",
            target=300,
            goal="min",
        )
    )
    ones, twos = (one, one_b), (two, two_b)
    rows.append(
        Row(
            "burst",
            "ours",
            "2 processes / 1 process",
            _mean(twos, "fires_per_s") / max(1e-9, _mean(ones, "fires_per_s")),
            "x",
            target=1.0,
            note=(
                "together faster than one: > 1; means of 1, 2, 2, 1 processes ("
                + ", ".join(f"{r['fires_per_s']:,.0f}" for r in (one, two, two_b, one_b))
                + " fires/s); fires by process "
                + ", ".join(" / ".join(f"{f:,}" for f in r["fired_by_process"]) for r in twos)
            ),
        )
    )
    rows += floor.rows([("1 process", one), ("2 processes", two)], floor_us, pairs)
    rows += floor.replicas_row(ones, twos)
    if options.peers:
        rows += _peers(options, one)
    return rows


def _mean(results: Sequence[dict[str, Any]], key: str) -> float:
    return sum(float(r[key]) for r in results) / len(results)


def _peers(options: Options, ours: dict[str, Any]) -> list[Row]:
    from benchmarks import peer_apscheduler, peer_arq, peer_bullmq, peer_redbeat
    from benchmarks.peers import PeerUnavailable
    from benchmarks.targets import PEER_RATIO_TARGETS

    rows: list[Row] = []
    for name, module in (
        ("APScheduler 3.11", peer_apscheduler),
        ("Celery beat + RedBeat", peer_redbeat),
        ("arq 0.28", peer_arq),
        ("BullMQ 6", peer_bullmq),
    ):
        try:
            with private_server() as url:
                peer = module.run(url, options.peer_n)
        except PeerUnavailable as exc:  # not installed here: skipped, and the row says why
            rows.append(Row("burst", name, "skipped", 0.0, "", note=str(exc)))
            continue
        except Exception as exc:  # a peer that cannot run here is reported, not fatal
            rows.append(Row("burst", name, "could not run", 0.0, "", note=str(exc)[:200]))
            continue
        rows += [
            Row(
                "burst",
                name,
                "fires",
                peer["fires_per_s"],
                "fires/s",
                extra=peer,
                note=f"{peer['fired']}/{peer['n']} jobs, all within {peer['max_s']:.2f} s",
            ),
            Row("burst", name, "p50 lateness", peer["p50_s"], "s"),
            Row("burst", name, "p99 lateness", peer["p99_s"], "s"),
            Row("burst", name, "jobs added", peer["adds_per_s"], "jobs/s"),
            Row("burst", name, "Redis bytes per job", peer["bytes_per_job"], "B"),
            Row(
                "burst",
                f"ours / {name}",
                "fires/s ratio",
                ours["fires_per_s"] / max(1e-9, peer["fires_per_s"]),
                "x",
                target=PEER_RATIO_TARGETS.get(name),
            ),
            Row(
                "burst",
                f"ours / {name}",
                "p99 lateness ratio (lower is better)",
                ours["p99_s"] / max(1e-9, peer["p99_s"]),
                "x",
            ),
        ]
    return rows
