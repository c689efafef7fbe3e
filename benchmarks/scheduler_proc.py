"""One scheduler process for the benchmarks: the real TimerLoop, on a shifted wall clock.

Run by the burst and steady scenarios as a subprocess:
    python -m benchmarks.scheduler_proc URL --until-ms MS [--deadline S]
It prints "ready" once connected, reads one line from stdin -- "<anchor wall s> <simulated
start s> <speed>" (see harness.RealOffsetClock) -- runs `TimerLoop.run` until no timer is due
at or before `--until-ms` (or until simulated `--stop-at-ms`), then prints one JSON line:
fired, missed, CPU and wall seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from benchmarks.harness import RealOffsetClock, quiet_logs, scheduler_settings
from couples_nudge.common.clock import epoch_ms
from couples_nudge.common.runtime import redis_client, settle_heap
from couples_nudge.runner import run
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop


async def main(url: str, until_ms: int, deadline_s: float, stop_at_ms: int | None) -> None:
    quiet_logs()
    settings = scheduler_settings(url)
    redis = redis_client(settings)  # the service's own client (hiredis packing)
    store = ScheduleStore(redis, settings.keys, due_maxlen=settings.due_maxlen)
    await redis.ping()
    print("ready", flush=True)
    anchor, start, speed = map(float, (await asyncio.to_thread(sys.stdin.readline)).split())
    clock = RealOffsetClock(anchor, start, speed)
    loop = TimerLoop(store, clock, settings)
    stop = asyncio.Event()
    settle_heap()  # as `nudge scheduler` does before it starts (services/runner.py)
    cpu0, wall0 = time.process_time(), time.perf_counter()

    async def watch() -> None:
        started = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.02)
            now_ms = epoch_ms(clock.now())
            if stop_at_ms is not None:
                done = now_ms >= stop_at_ms
            else:
                head = await store.next_due_ms(0)
                done = now_ms >= until_ms and (head is None or head > until_ms)
            if done or time.perf_counter() - started > deadline_s:
                stop.set()

    await asyncio.gather(loop.run(stop), watch())
    result = {
        "fired": loop.fired,
        "fired_ahead": loop.fired_ahead,
        "missed": loop.missed,
        "cpu_s": time.process_time() - cpu0,
        "wall_s": time.perf_counter() - wall0,
    }
    await redis.aclose()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--until-ms", type=int, required=True)
    parser.add_argument("--stop-at-ms", type=int, default=None)
    parser.add_argument("--deadline", type=float, default=120.0)
    args = parser.parse_args()
    run(main(args.url, args.until_ms, args.deadline, args.stop_at_ms))
