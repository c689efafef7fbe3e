"""arq's side of benchmarks/peer_arq.py, run by arq's own interpreter (benchmarks/peer_arq/.venv,
from requirements.txt: arq 0.28 requires redis-py < 6, the project 8, so it cannot share the
project's venv without changing the client our own services are measured with).

    python burst_arq.py URL N STREAM [WORKER_JSON]
        -> one JSON line: instant_s, adds_per_s, bytes_per_job

N jobs enqueued one by one with `enqueue_job(..., _job_id=couple, _defer_until=instant)` (one
job per couple, as a team would when a couple's preferences arrive), then one Worker with
arq's defaults (max_jobs=10, poll_delay=0.5 s, queue_read_limit=100, results kept an hour) in
burst mode: it runs every job and returns when the queue is empty. The job does one XADD to
STREAM. WORKER_JSON (e.g. '{"poll_delay": 0.05, "max_jobs": 100}') overrides Worker options,
to see what tuning gives; the benchmark uses the defaults, as for every peer.
Only arq and the standard library here: this file is not run by the project's interpreter.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import Worker

ENQUEUE_RATE = 800  # jobs/s at the least, to place the instant far enough ahead


async def nudge(ctx: dict[str, Any], couple_id: str) -> None:
    """The job: announce the nudge (one XADD), like our NudgeDue."""
    await ctx["redis"].xadd(ctx["stream"], {"couple_id": couple_id})


async def main(url: str, n: int, stream: str, overrides: dict[str, Any]) -> None:
    settings = RedisSettings.from_dsn(url)
    pool = await create_pool(settings)
    memory0 = int((await pool.info("memory"))["used_memory"])
    instant = (datetime.now(UTC) + timedelta(seconds=n / ENQUEUE_RATE + 3)).replace(microsecond=0)
    started = time.perf_counter()
    for i in range(n):
        cid = f"c{i:07d}"
        await pool.enqueue_job("nudge", cid, _job_id=cid, _defer_until=instant)
    add_seconds = time.perf_counter() - started
    bytes_per_job = (int((await pool.info("memory"))["used_memory"]) - memory0) / n
    if datetime.now(UTC) >= instant:
        sys.exit("adding the jobs took longer than planned; the instant passed")
    worker = Worker(
        functions=[nudge],
        redis_pool=pool,
        burst=True,
        handle_signals=False,
        ctx={"stream": stream},
        **overrides,
    )
    try:
        await asyncio.wait_for(worker.main(), timeout=max(120.0, n / 50))
    finally:
        await worker.close()
    print(
        json.dumps(
            {
                "instant_s": instant.timestamp(),
                "adds_per_s": n / add_seconds,
                "bytes_per_job": bytes_per_job,
            }
        )
    )


if __name__ == "__main__":
    extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], extra))
