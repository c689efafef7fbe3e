"""The most used Redis queue: BullMQ (Node), delayed jobs (`Queue.add(name, data, {delay})`)
processed by a BullMQ Worker with concurrency 10 (APScheduler runs 10 threads, arq 10 jobs).

BullMQ's part is benchmarks/peer_bullmq/burst_bullmq.mjs under node, with the npm packages
of benchmarks/peer_bullmq (package.json and package-lock.json; `make bench` runs `npm ci`).
Each job XADDs one entry, read here as for every peer (benchmarks/peers.py). Without node or
without the packages the peer is skipped with the reason in its row.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from benchmarks.peers import PeerUnavailable, run_external

FOLDER = Path(__file__).resolve().parent / "peer_bullmq"
STREAM = "bullmq:due"


def run(url: str, n: int) -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        raise PeerUnavailable("node is not installed: install Node.js 18+ and npm to measure it")
    if not (FOLDER / "node_modules" / "bullmq").is_dir():
        raise PeerUnavailable(
            "BullMQ's npm packages are not installed: `make bench` runs "
            "`npm ci --ignore-scripts --prefix benchmarks/peer_bullmq`"
        )
    return run_external(
        [node, "burst_bullmq.mjs"], url, n, STREAM, cwd=FOLDER, timeout_s=max(300.0, n / 20)
    )
