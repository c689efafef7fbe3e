"""Redis's CPU per fire at a burst's instant, alone (issue 20's fire path).

    python -m benchmarks.fire_instant [--n 50000] [--instants 3]

The burst scenario measures a fire end to end in separate processes, where the lookahead's
reads, `tick`'s leftovers and the machine's load all land in one figure. This measures only
what the lateness of a burst is made of: N burst couples stored, then for each of the next
`--instants` Fridays the real TimerLoop (in this process, on a manual clock) looks ahead 1.5 s
before the instant and, at the instant, sends its prepared chunks (`fire_ahead`); the server's
INFO cpu (user + system) over `fire_ahead` alone, per fire, with commandstats per fire. Every
fire must go through prepared steps (asserted). Compare commits by alternating runs: the
figure is the server's own CPU time, which other load on the machine moves much less than
wall time (but not at all only under `valgrind --tool=callgrind`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import timedelta
from typing import Any, NamedTuple, cast

import redis

from benchmarks.burst import START, moving_clock
from benchmarks.floor import server_cpu_s
from benchmarks.harness import (
    couple_event,
    instant_after,
    private_server,
    quiet_logs,
    scheduler_settings,
)
from couples_nudge.common.clock import ManualClock
from couples_nudge.common.runtime import redis_client
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import parse_preference

__all__ = ["Instant", "measure"]


class Instant(NamedTuple):
    """One instant's fires: Redis CPU per fire in the lookahead and at the instant (us)."""

    fired: int
    ahead_us: float  # lua.AHEAD's reads, before the instant
    fire_us: float  # the prepared chunks sent at the instant (FIRE_AHEAD or FIRE)
    by_command_us: dict[str, float]  # commandstats usec per fire at the instant (wall time)


async def measure(url: str, n: int, instants: int) -> list[Instant]:
    """Store `n` burst couples on `url`, then fire `instants` Friday evenings."""
    settings = scheduler_settings(url)
    client = redis_client(settings)
    store = ScheduleStore(client, settings.keys, due_maxlen=settings.due_maxlen)
    ingest = PreferenceIngest(store, moving_clock(), settings)
    raws = [couple_event(i, mix="burst", occurred=START) for i in range(n)]
    for start in range(0, n, 500):
        await ingest.apply_many([parse_preference(raw) for raw in raws[start : start + 500]])
    sync = redis.Redis.from_url(url)
    friday = instant_after(START, 4, 19, "Europe/Berlin")
    out: list[Instant] = []
    for week in range(instants):
        instant = friday + timedelta(days=7 * week)
        clock = ManualClock(instant - timedelta(seconds=1.5))
        loop = TimerLoop(store, clock, settings)
        before = server_cpu_s(sync)
        await loop.look_ahead(0)
        ahead = server_cpu_s(sync) - before
        clock.set(instant + timedelta(milliseconds=5))
        sync.config_resetstat()
        before = server_cpu_s(sync)
        await loop.fire_ahead(0)
        spent = server_cpu_s(sync) - before
        stats = cast("dict[str, dict[str, Any]]", sync.info("commandstats"))
        if loop.fired_ahead != n or await loop.tick(0):
            raise RuntimeError(f"{loop.fired_ahead} of {n} fired by prepared steps")
        out.append(
            Instant(
                n,
                ahead / n * 1e6,
                spent / n * 1e6,
                {k.removeprefix("cmdstat_"): float(v["usec"]) / n for k, v in stats.items()},
            )
        )
    sync.close()
    await client.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000)
    parser.add_argument("--instants", type=int, default=3)
    args = parser.parse_args()
    quiet_logs()
    with private_server() as url:
        for instant in asyncio.run(measure(url, args.n, args.instants)):
            print(json.dumps(instant._asdict()))


if __name__ == "__main__":
    main()
