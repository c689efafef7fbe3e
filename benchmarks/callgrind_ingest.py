"""The scheduler's instructions per realistic event on its batch path, for callgrind (issue 20).

    valgrind --tool=callgrind --instr-atstart=no \\
        python -m benchmarks.callgrind_ingest [--warm 1000] [--n 4000]

Instructions per event = callgrind's total / N. Under valgrind the drain of
`benchmarks/burst.py` counts its poll loop (`xlen` every 5 ms) and the service's idle loops by
wall time, which a loaded machine moves by more than a change; this has none. A private Valkey,
the real `SchedulerService` (`before_start`: no subscriber, no Reclaimer), and its consumer
reading batches of `batch_size` with XREADGROUP and handing each to `handle_fields` as the
subscriber does (validation, `apply_many`, APPLY_PLAN, XDEL + XACK); logging as `quiet_logs`.
`--warm` events are drained uncounted first (memo and caches warm), then `--n` with
instrumentation switched on around the loop alone (`callgrind_control -i on/off`): the events'
generation and the backlog's XADDs are not counted. Without valgrind it runs, and counts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
from pathlib import Path
from typing import cast

import redis.asyncio as aioredis

from benchmarks.burst import START, _enqueue, moving_clock
from benchmarks.harness import couple_event, private_server, scheduler_settings
from couples_nudge.common.keys import SCHEDULER_GROUP
from couples_nudge.common.logging import configure_logging
from couples_nudge.common.runtime import redis_client, settle_heap
from couples_nudge.scheduler.service import SchedulerService

_Batch = list[tuple[bytes, dict[bytes, bytes]]]


def _instrument(on: bool) -> None:
    """Switch callgrind's instrumentation of this process (nothing happens outside valgrind)."""
    subprocess.run(
        ["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
        check=False,
        capture_output=True,
    )


async def _consume(service: SchedulerService, client: aioredis.Redis, stream: str) -> None:
    """Hand the backlog to the service a batch at a time, as its subscriber would."""
    while True:
        reply = cast(
            "list[tuple[bytes, _Batch]]",
            await client.xreadgroup(
                SCHEDULER_GROUP, service.consumer, {stream: ">"}, count=service.settings.batch_size
            ),
        )
        if not reply:
            return
        await service.handle_fields(reply[0][1])


async def _run(url: str, warm: int, n: int) -> None:
    settings = scheduler_settings(url)
    client = redis_client(settings)
    stream = settings.keys.preferences
    service = SchedulerService(settings, moving_clock())
    await service.before_start()
    raws = [couple_event(i, mix="realistic", occurred=START) for i in range(warm + n)]
    await _enqueue(client, stream, raws[:warm], read=False)
    await _consume(service, client, stream)
    await _enqueue(client, stream, raws[warm:], read=False)
    settle_heap()
    _instrument(True)
    await _consume(service, client, stream)
    _instrument(False)
    assert await client.xlen(stream) == 0
    await service.redis.aclose()
    await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--warm", type=int, default=1000, help="events drained uncounted first")
    parser.add_argument("--n", type=int, default=4000, help="events counted")
    args = parser.parse_args()
    with Path(os.devnull).open("w") as sink:
        configure_logging("bench", fmt="json", level="info", stream=sink)  # as quiet_logs
        with private_server() as url:
            asyncio.run(_run(url, args.warm, args.n))


if __name__ == "__main__":
    main()
