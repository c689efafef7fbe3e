"""Cluster: 1, 2 and 3 scheduler and notifier processes on a Valkey cluster and on one server.

Both topologies run in the same invocation, with the same code and NUDGE_SHARDS=8, and each
primary with as many replicas (`--replicas`, 1 by default, as docs/scaling.md deploys them):
  single   one valkey-server (no persistence) and its replica (REPLICAOF);
  cluster  3 primaries and their replicas (tests.support.cluster.LocalCluster, no AOF), slot
           ranges from couples_nudge.common.slots.balanced_ranges (3/3/2 shards per primary),
           every process on the same machine, replicas included (they cost CPU here too).
Redis CPU is the primaries' (INFO cpu), which includes streaming every write to a replica: about
3 us per fire, the same on one server as on the cluster. Before, the single server had no
replica, and that difference was the whole of the cluster's extra Redis CPU per fire (compare
`--replicas 0`).

Measured per topology:
1. Scheduler burst: N couples share one Friday 19:00 date night (burst mix); P scheduler
   processes (the real TimerLoop.run on a shared wall-anchored clock) fire it; fires/s = N /
   time from the instant to the last NudgeDue written (stream entry ids are server time).
   Each P fires a later week of the same timers.
2. Notifier drain: M couples' date nights fired onto the 8 due streams (2 emails each), then P
   notifier processes (the real NotifierService: consumer groups, consent, caps, idempotency,
   content, rendering, outcomes; a counting email channel instead of SMTP) drain the backlog;
   nudges/s = M / time until every `sent` outcome is on the outcomes stream. CPU per nudge is
   the processes' from "go" (their start included) until then, not their stop (`stop_cpu_s`);
   the note gives its CPU until `start()` returned (`start_cpu_s`; its subscribers already
   read meanwhile), which does not grow with M.
   Both topologies run side by side for this part: per process count, `--rounds` rounds of one
   drain on each (the order turned each round, each round a later week), pooled; the cluster /
   one server ratio is of the pooled figures, each round's ratio printed beside it.
3. Memory: Redis bytes per couple (realistic mix, 4 schedules) from INFO used_memory summed
   over the primaries, before and after ingesting K couples; and bytes per sent nudge (the
   idempotency, cap and seen records the notifier keeps).

    .venv/bin/python -m benchmarks.cluster [--n 20000] [--notifier-n 10000] [--memory-n 100000]
                                            [--replicas 1] [--rounds 3]

Writes benchmarks/results/cluster.json; `run(options)` serves `python -m benchmarks` too.
Worker processes: `python -m benchmarks.cluster worker scheduler|notifier URL ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import redis
import redis.asyncio as aioredis
from pydantic import SecretStr
from redis.cluster import RedisCluster as SyncCluster

from benchmarks.harness import (
    RESULTS,
    Options,
    RealOffsetClock,
    Row,
    couple_event,
    instant_after,
    machine,
    percentile,
    quiet_logs,
    report_json,
)
from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.common.runtime import redis_client, settle_heap
from couples_nudge.common.slots import balanced_ranges
from couples_nudge.common.streams import DATA_FIELD, read_entries
from couples_nudge.embedded.valkey import EmbeddedValkey
from couples_nudge.notifier.channels.base import Channel, Outgoing
from couples_nudge.notifier.service import NotifierService
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import Channel as ChannelName
from couples_nudge_schemas import parse_preference

REPO = Path(__file__).resolve().parents[1]
SHARDS = 8
PROCESSES = (1, 2, 3)
REPLICAS = 1  # per primary, on both topologies
DEFAULT_N = 20_000
# 10,000 nudges a drain, not 2,000: at 2,000 a drain lasted ~1 s of CPU, and one round's
# cluster / one-server ratio ranged 0.85-1.49x within a run (2026-12-07, same minutes); at
# 10,000, 0.90-1.22x, and the pooled ratio near the steady-state instruction ratio (1.14x).
DEFAULT_NOTIFIER_N = 10_000
NOTIFIER_ROUNDS = 3  # drains per topology and process count, interleaved (`drains`)
DEFAULT_MEMORY_N = 100_000
START = datetime(2026, 12, 1, 9, tzinfo=UTC)  # a Tuesday; the burst is Friday 19:00 Berlin
FRIDAY = instant_after(START, 4, 19, "Europe/Berlin")
WEEK = timedelta(days=7)


@dataclass(frozen=True)
class Topology:
    name: str  # "single" or "cluster"
    url: str
    cluster: bool
    nodes: tuple[str, ...]  # primaries' URLs (for INFO memory)


@contextlib.contextmanager
def topology(name: str, replicas: int = REPLICAS) -> Iterator[Topology]:
    if name == "single":
        with contextlib.ExitStack() as stack:
            server = EmbeddedValkey().start()
            stack.callback(server.stop)
            for _ in range(replicas):
                follower = EmbeddedValkey().start()
                stack.callback(follower.stop)
                _follow(follower.url, server.url)
            yield Topology(name, server.url, False, (server.url,))
        return
    from tests.support.cluster import LocalCluster

    with tempfile.TemporaryDirectory(prefix="nudge-cluster-") as directory:
        ranges = balanced_ranges(SHARDS, 3)  # an equal share of the shards per primary
        local = LocalCluster(
            Path(directory), appendonly=False, replicas=replicas, slot_ranges=ranges
        ).start()
        try:
            primaries = tuple(n.url for n in local.primaries())
            yield Topology(name, local.url, True, primaries)
        finally:
            local.stop()


def _follow(replica_url: str, primary_url: str, timeout: float = 20.0) -> None:
    """REPLICAOF, then wait until the replica's link to its primary is up (synced)."""
    primary = redis.Redis.from_url(primary_url).connection_pool.connection_kwargs
    with redis.Redis.from_url(replica_url) as replica:
        replica.execute_command("REPLICAOF", primary["host"], primary["port"])
        deadline = time.monotonic() + timeout
        while replica.info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError(f"the replica did not sync with its primary in {timeout}s")
            time.sleep(0.05)


def _scheduler_settings(top: Topology, prefix: str) -> SchedulerSettings:
    return SchedulerSettings(
        redis_url=SecretStr(top.url),
        redis_cluster=top.cluster,
        shards=SHARDS,
        key_prefix=prefix,
        due_maxlen=10_000_000,
    )


def _notifier_settings(top: Topology, prefix: str) -> NotifierSettings:
    return NotifierSettings(
        redis_url=SecretStr(top.url),
        redis_cluster=top.cluster,
        shards=SHARDS,
        key_prefix=prefix,
        consumer_name=f"bench-notifier-{os.getpid()}",
        due_maxlen=10_000_000,
    )


async def _ingest(settings: SchedulerSettings, n: int, mix: Any, first: int = 0) -> None:
    """Couples first .. first + n - 1, applied in pipelined batches (apply_many)."""
    client = redis_client(settings)
    store = ScheduleStore(client, settings.keys, due_maxlen=settings.due_maxlen)
    ingest = PreferenceIngest(store, ManualClock(START), settings)
    for i in range(first, first + n, 500):
        events = [
            parse_preference(couple_event(j, mix=mix, occurred=START))
            for j in range(i, min(first + n, i + 500))
        ]
        results = await ingest.apply_many(events)
        assert all(r == "applied" for r in results), results[:3]
    await client.aclose()


async def _used_memory(top: Topology) -> int:
    total = 0
    for url in top.nodes:
        client = aioredis.Redis.from_url(url)
        total += int((await client.info("memory"))["used_memory"])
        await client.aclose()
    return total


async def _redis_cpu(top: Topology) -> float:
    """CPU seconds (user + system) the primaries have used so far."""
    total = 0.0
    for url in top.nodes:
        client = aioredis.Redis.from_url(url)
        info = await client.info("cpu")
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        await client.aclose()
    return total


# ---- scheduler burst -------------------------------------------------------------------------


def _protocol() -> TextIO:
    """The worker's line protocol to the parent: the real stdout; anything else the process
    prints (library logs) goes to stderr instead."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    return out


def _spawn(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.cluster", "worker", *args],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def _ready(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker process did not start")


def _say(procs: list[subprocess.Popen[str]], line: str) -> None:
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write(line + "\n")
        proc.stdin.flush()


def _results(procs: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    out = []
    for proc in procs:
        assert proc.stdout is not None
        out.append(json.loads(proc.stdout.readline()))
        proc.wait(timeout=60)
    return out


def fire(top: Topology, prefix: str, instant: datetime, processes: int, n: int) -> dict[str, Any]:
    """`processes` scheduler processes fire the burst at `instant`; read every due stream."""
    settings = _scheduler_settings(top, prefix)
    flag = ["--cluster"] if top.cluster else []
    procs = [
        _spawn(["scheduler", top.url, prefix, "--until-ms", str(epoch_ms(instant)), *flag])
        for _ in range(processes)
    ]
    try:
        _ready(procs)  # started: Redis's CPU counts from the clock handed over, as in `burst`
        redis_cpu = asyncio.run(_redis_cpu(top))
        clock = RealOffsetClock(time.time() + 0.5, instant.timestamp())
        _say(procs, f"{clock.anchor} {clock.start} {clock.speed}")
        stats = _results(procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    redis_cpu = asyncio.run(_redis_cpu(top)) - redis_cpu
    lateness = asyncio.run(_lateness(settings, clock, instant))
    span = max(lateness) if lateness else 0.0
    return {
        "processes": processes,
        "fired": len(lateness),
        "fired_by_loops": sum(s["fired"] for s in stats),
        "expected": n,
        "fires_per_s": len(lateness) / span if span > 0 else 0.0,
        "all_within_s": span,
        "p50_s": percentile(lateness, 50),
        "p99_s": percentile(lateness, 99),
        "cpu_s": sum(s["cpu_s"] for s in stats),
        "redis_cpu_s": redis_cpu,
    }


async def _lateness(
    settings: SchedulerSettings, clock: RealOffsetClock, instant: datetime
) -> list[float]:
    client = redis_client(settings)
    lateness: list[float] = []
    for stream in settings.keys.all_due():
        start = "-"
        while page := await read_entries(client, stream, start=start, count=20_000):
            for entry_id, fields in page:
                due = json.loads(fields[DATA_FIELD.encode()])
                if datetime.fromisoformat(due["data"]["scheduled_at"]) != instant:
                    continue
                written = clock.simulated(int(entry_id.split("-")[0]) / 1000)
                lateness.append(written - instant.timestamp())
            start = "(" + page[-1][0]
    await client.aclose()
    return lateness


async def scheduler_worker(url: str, prefix: str, cluster: bool, until_ms: int) -> None:
    out = _protocol()
    quiet_logs()
    top = Topology("worker", url, cluster, ())
    settings = _scheduler_settings(top, prefix)
    redis = redis_client(settings)
    store = ScheduleStore(redis, settings.keys, due_maxlen=settings.due_maxlen)
    await redis.ping()
    settle_heap()  # as `nudge scheduler` does before it starts (services/runner.py)
    print("ready", file=out, flush=True)
    anchor, start, speed = map(float, (await asyncio.to_thread(sys.stdin.readline)).split())
    clock = RealOffsetClock(anchor, start, speed)
    loop = TimerLoop(store, clock, settings, replica=f"bench-scheduler-{os.getpid()}")
    stop = asyncio.Event()
    cpu0, wall0 = time.process_time(), time.perf_counter()

    async def watch() -> None:
        while not stop.is_set():
            await asyncio.sleep(0.02)
            if epoch_ms(clock.now()) < until_ms:
                continue
            heads = [await store.next_due_ms(s) for s in range(SHARDS)]
            if all(h is None or h > until_ms for h in heads) or time.perf_counter() - wall0 > 120:
                stop.set()

    await asyncio.gather(loop.run(stop), watch())
    await redis.aclose()
    result = {"fired": loop.fired, "cpu_s": time.process_time() - cpu0}
    print(json.dumps(result), file=out, flush=True)


# ---- notifier drain --------------------------------------------------------------------------


class _Counting:
    """An email channel that only counts: the notifier's own work, without a network."""

    name: ChannelName = "email"

    def __init__(self) -> None:
        self.count = 0

    async def send(self, message: Outgoing) -> None:
        self.count += 1

    async def close(self) -> None:
        return None


async def _backlog(top: Topology, prefix: str, instant: datetime) -> int:
    """Fire every couple's date night at `instant` onto the 8 due streams; how many fired."""
    settings = _scheduler_settings(top, prefix)
    client = redis_client(settings)
    store = ScheduleStore(client, settings.keys, due_maxlen=settings.due_maxlen)
    loop = TimerLoop(store, ManualClock(instant), settings)
    for shard in range(SHARDS):
        while await loop.tick(shard):
            pass
    await client.aclose()
    return loop.fired


@contextlib.contextmanager
def _outcomes(top: Topology, settings: NotifierSettings) -> Iterator[Callable[[], int]]:
    """XLEN of the outcomes stream, through one client for the whole drain: a client per poll
    loaded the cluster's slot map and command table again every 50 ms, on the cores the
    notifiers were measured on."""
    client: redis.Redis | SyncCluster = (
        SyncCluster.from_url(top.url) if top.cluster else redis.Redis.from_url(top.url)
    )
    try:
        yield lambda: int(client.xlen(settings.keys.outcomes))
    finally:
        client.close()


def drain(top: Topology, prefix: str, instant: datetime, processes: int, m: int) -> dict[str, Any]:
    """`processes` notifier processes drain M NudgeDue (2 emails each) fired at `instant`."""
    settings = _notifier_settings(top, prefix)
    fired = asyncio.run(_backlog(top, prefix, instant))
    with _outcomes(top, settings) as sent_outcomes:
        return _drain(top, prefix, instant, processes, m, fired, sent_outcomes)


def _drain(
    top: Topology,
    prefix: str,
    instant: datetime,
    processes: int,
    m: int,
    fired: int,
    sent_outcomes: Callable[[], int],
) -> dict[str, Any]:
    base = sent_outcomes()
    flag = ["--cluster"] if top.cluster else []
    procs = [
        _spawn(["notifier", top.url, prefix, "--at", instant.isoformat(), *flag])
        for _ in range(processes)
    ]
    try:
        _ready(procs)
        redis_cpu = asyncio.run(_redis_cpu(top))
        started = time.perf_counter()
        _say(procs, "go")
        target, done = base + 2 * fired, base
        while done < target and time.perf_counter() - started < 300:
            time.sleep(0.01)
            done = sent_outcomes()
        seconds = time.perf_counter() - started
        _say(procs, "drained")  # CPU per nudge counts to here: not the processes' stop
        redis_cpu = asyncio.run(_redis_cpu(top)) - redis_cpu
        _say(procs, "stop")
        stats = _results(procs)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return {
        "processes": processes,
        "nudges": fired,
        "expected": m,
        "emails_counted": sum(s["sent"] for s in stats),
        "outcomes": done - base,
        "seconds": seconds,
        "nudges_per_s": fired * min(1.0, (done - base) / (2 * fired)) / seconds,
        "cpu_s": sum(s["cpu_s"] for s in stats),
        "start_cpu_s": sum(s["start_cpu_s"] for s in stats),
        "stop_cpu_s": sum(s["stop_cpu_s"] for s in stats),
        "redis_cpu_s": redis_cpu,
    }


async def notifier_worker(url: str, prefix: str, cluster: bool, at: datetime) -> None:
    out = _protocol()
    quiet_logs()
    top = Topology("worker", url, cluster, ())
    settings = _notifier_settings(top, prefix)
    channel = _Counting()
    channels: dict[ChannelName, Channel] = {"email": channel}
    service = NotifierService(settings, ManualClock(at + timedelta(seconds=5)), channels)
    await service.redis.ping()
    settle_heap()  # as `nudge notifier` does before it starts (services/runner.py)
    print("ready", file=out, flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "go"
    cpu0 = time.process_time()
    await service.start()
    started = time.process_time() - cpu0
    await asyncio.to_thread(sys.stdin.readline)  # "drained"
    drained = time.process_time() - cpu0  # start-up included
    await asyncio.to_thread(sys.stdin.readline)  # "stop"
    await service.stop()
    stop = time.process_time() - cpu0 - drained
    result = {"sent": channel.count, "cpu_s": drained, "start_cpu_s": started, "stop_cpu_s": stop}
    print(json.dumps(result), file=out, flush=True)


# ---- memory ----------------------------------------------------------------------------------


async def memory(top: Topology, prefix: str, k: int) -> dict[str, float]:
    settings = _scheduler_settings(top, prefix)
    await _ingest(settings, 10, "realistic", first=k)  # the shards' keys exist: per couple
    before = await _used_memory(top)
    await _ingest(settings, k, "realistic")
    after = await _used_memory(top)
    return {"couples": k, "per_couple": (after - before) / k}


async def per_sent(top: Topology, prefix: str) -> dict[str, float]:
    """Bytes of a couple's sent + seen zsets per nudge it received (the notifier's records)."""
    settings = _notifier_settings(top, prefix)
    client = redis_client(settings)
    keys = settings.keys
    total, nudges = 0, 0
    for i in range(0, 200):
        cid = f"c{i:07d}"
        for key in (keys.sent(cid), keys.seen(cid)):
            total += int(await client.memory_usage(key, samples=0) or 0)
        seen = await client.zcard(keys.seen(cid))
        nudges += int(seen)
    await client.aclose()
    return {"bytes_per_nudge": total / max(1, nudges), "sampled_couples": 200}


# ---- the scenario ----------------------------------------------------------------------------


def measure(top: Topology, n: int, k: int) -> dict[str, Any]:
    """The scheduler burst and the memory rows of one topology (the notifier's: `drains`)."""
    result: dict[str, Any] = {"scheduler": []}
    asyncio.run(_ingest(_scheduler_settings(top, "benchs"), n, "burst"))
    for week, p in enumerate(PROCESSES):
        result["scheduler"].append(fire(top, "benchs", FRIDAY + week * WEEK, p, n))
        _progress(top, "scheduler", result["scheduler"][-1])
    if k:
        result["memory"] = asyncio.run(memory(top, "benchm", k))
    return result


def drains(tops: list[Topology], m: int, rounds: int) -> dict[str, list[dict[str, Any]]]:
    """The notifier drains of every topology, interleaved: for each process count, `rounds`
    rounds of one drain per topology, the order turned each round. A ratio of two CPU
    figures taken minutes apart (one topology's drains, then the other's) moved by 0.15x
    with the shared machine's load; side by side, and pooled over the rounds (CPU summed
    over nudges summed), it compares like with like."""
    for top in tops:
        asyncio.run(_ingest(_scheduler_settings(top, "benchn"), m, "burst"))
    out: dict[str, list[dict[str, Any]]] = {top.name: [] for top in tops}
    week = 0
    for p in PROCESSES:
        runs: dict[str, list[dict[str, Any]]] = {top.name: [] for top in tops}
        for r in range(rounds):
            for top in tops if r % 2 == 0 else tops[::-1]:
                runs[top.name].append(drain(top, "benchn", FRIDAY + week * WEEK, p, m))
            week += 1  # each round fires the next week's date nights
        for top in tops:
            out[top.name].append(_pooled(runs[top.name]))
            _progress(top, "notifier", out[top.name][-1])
    return out


def _pooled(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One process count's drains of one topology as one: counts and seconds summed."""
    summed = (
        "nudges", "expected", "emails_counted", "outcomes", "seconds",
        "cpu_s", "start_cpu_s", "stop_cpu_s", "redis_cpu_s",
    )  # fmt: skip
    pooled: dict[str, Any] = {key: sum(r[key] for r in runs) for key in summed}
    pooled["processes"] = runs[0]["processes"]
    pooled["rounds"] = len(runs)
    pooled["nudges_per_s"] = sum(r["nudges_per_s"] * r["seconds"] for r in runs) / max(
        1e-9, pooled["seconds"]
    )
    pooled["cpu_ms_per_nudge_each"] = [r["cpu_s"] / max(1, r["nudges"]) * 1e3 for r in runs]
    return pooled


def _progress(top: Topology, what: str, figures: dict[str, Any]) -> None:
    print(f"{top.name} {what}: {json.dumps(figures)}", file=sys.stderr, flush=True)


def rows(measured: dict[str, dict[str, Any]], n: int, m: int) -> list[Row]:
    out: list[Row] = []
    for name, res in measured.items():
        for s in res["scheduler"]:
            out.append(
                Row(
                    "cluster",
                    f"{name}, {s['processes']} scheduler(s)",
                    "NudgeDue emitted",
                    s["fires_per_s"],
                    "fires/s",
                    extra=s,
                    note=f"{s['fired']:,}/{n:,} in {s['all_within_s']:.2f} s, "
                    f"p99 lateness {s['p99_s']:.2f} s",
                )
            )
            out.append(
                Row(
                    "cluster",
                    f"{name}, {s['processes']} scheduler(s)",
                    "  CPU per fire: schedulers / Redis",
                    s["cpu_s"] / max(1, s["fired"]) * 1e6,
                    "us",
                    note=f"Redis primaries {s['redis_cpu_s'] / max(1, s['fired']) * 1e6:.0f} us",
                )
            )
        for d in res.get("notifier", []):
            out.append(
                Row(
                    "cluster",
                    f"{name}, {d['processes']} notifier(s)",
                    "nudges end to end",
                    d["nudges_per_s"],
                    "nudges/s",
                    extra=d,
                    note=f"{d['nudges']:,} NudgeDue, {d['outcomes']:,} sent in "
                    f"{d['seconds']:.1f} s ({d['rounds']} drains; counting channel)",
                )
            )
            out.append(
                Row(
                    "cluster",
                    f"{name}, {d['processes']} notifier(s)",
                    "  CPU per nudge: notifiers / Redis",
                    d["cpu_s"] / max(1, d["nudges"]) * 1e3,
                    "ms",
                    note=f"Redis primaries {d['redis_cpu_s'] / max(1, d['nudges']) * 1e3:.2f} ms; "
                    f"until start() returned {_start_ms(d):.0f} ms a process",
                )
            )
        if "per_sent" in res:
            out.append(
                Row(
                    "cluster",
                    name,
                    "Redis bytes per sent nudge",
                    res["per_sent"]["bytes_per_nudge"],
                    "B",
                    note="sent + seen zsets (idempotency, cap, content) per nudge received",
                )
            )
        if "memory" in res:
            out.append(
                Row(
                    "cluster",
                    name,
                    "Redis bytes per couple",
                    res["memory"]["per_couple"],
                    "B",
                    extra=res["memory"],
                    note=f"INFO used_memory over primaries, {res['memory']['couples']:,} "
                    "couples, 4 schedules each",
                )
            )
    return out


def _start_ms(drains: dict[str, Any]) -> float:
    """A process's CPU until its `start()` returned, averaged over the pooled drains."""
    processes = int(drains["rounds"]) * int(drains["processes"])
    return float(drains["start_cpu_s"]) / max(1, processes) * 1e3


NOTIFIER_CPU_RATIO_TARGET = 1.2  # issue 20: notifier CPU per nudge, cluster / one server


def notifier_ratio_rows(measured: dict[str, dict[str, Any]]) -> list[Row]:
    """Notifier CPU per nudge on the cluster over one server's, per process count (one run):
    pooled over the interleaved drains (`drains`); the note gives each round's ratio too."""
    if not {"single", "cluster"} <= measured.keys() or "notifier" not in measured["single"]:
        return []
    out = []
    pairs = zip(measured["single"]["notifier"], measured["cluster"]["notifier"], strict=True)
    for one, many in pairs:
        single = one["cpu_s"] / max(1, one["nudges"])
        cluster = many["cpu_s"] / max(1, many["nudges"])
        each = zip(many["cpu_ms_per_nudge_each"], one["cpu_ms_per_nudge_each"], strict=True)
        rounds = ", ".join(f"{c / max(1e-12, s):.2f}" for c, s in each)
        out.append(
            Row(
                "cluster",
                f"cluster / single, {one['processes']} notifier(s)",
                "notifier CPU per nudge",
                cluster / max(1e-12, single),
                "x",
                target=NOTIFIER_CPU_RATIO_TARGET,
                goal="min",
                note=f"{cluster * 1e3:.2f} ms / {single * 1e3:.2f} ms (rounds: {rounds})",
            )
        )
    return out


def run(options: Options) -> list[Row]:
    n = options.n or DEFAULT_N
    return _run(n, DEFAULT_NOTIFIER_N, DEFAULT_MEMORY_N)


def _run(
    n: int, m: int, k: int, replicas: int = REPLICAS, rounds: int = NOTIFIER_ROUNDS
) -> list[Row]:
    measured: dict[str, dict[str, Any]] = {}
    with contextlib.ExitStack() as stack:
        tops = [stack.enter_context(topology(name, replicas)) for name in ("single", "cluster")]
        for top in tops:
            measured[top.name] = measure(top, n, k)
        if m:
            for name, pooled in drains(tops, m, rounds).items():
                measured[name]["notifier"] = pooled
            for top in tops:
                measured[top.name]["per_sent"] = asyncio.run(per_sent(top, "benchn"))
    return rows(measured, n, m) + notifier_ratio_rows(measured)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cluster", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    worker = sub.add_parser("worker", help="internal: one scheduler or notifier process")
    worker.add_argument("role", choices=["scheduler", "notifier"])
    worker.add_argument("url")
    worker.add_argument("prefix")
    worker.add_argument("--cluster", action="store_true")
    worker.add_argument("--until-ms", type=int, default=0)
    worker.add_argument("--at", type=datetime.fromisoformat, default=FRIDAY)
    parser.add_argument("--n", type=int, default=DEFAULT_N, help="couples in the burst")
    parser.add_argument("--notifier-n", type=int, default=DEFAULT_NOTIFIER_N, help="0 skips it")
    parser.add_argument(
        "--rounds", type=int, default=NOTIFIER_ROUNDS, help="notifier drains per topology"
    )
    parser.add_argument("--memory-n", type=int, default=DEFAULT_MEMORY_N, help="0 skips it")
    parser.add_argument(
        "--replicas", type=int, default=REPLICAS, help="per primary, on both topologies"
    )
    args = parser.parse_args()
    if args.command == "worker":
        if args.role == "scheduler":
            asyncio.run(scheduler_worker(args.url, args.prefix, args.cluster, args.until_ms))
        else:
            asyncio.run(notifier_worker(args.url, args.prefix, args.cluster, args.at))
        return
    from rich.console import Console

    from benchmarks.__main__ import table

    quiet_logs()
    meta: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "machine": machine()}
    started = time.perf_counter()
    result = _run(args.n, args.notifier_n, args.memory_n, args.replicas, args.rounds)
    options = {"n": args.n, "notifier_n": args.notifier_n, "memory_n": args.memory_n}
    meta |= {
        "scenario": "cluster",
        "options": options | {"replicas": args.replicas, "rounds": args.rounds},
        "seconds": time.perf_counter() - started,
    }
    report_json(result, RESULTS / "cluster.json", meta)
    Console(width=170).print(table(result))


if __name__ == "__main__":
    main()
