"""The asyncio Python peer: arq 0.28, deferred jobs (`enqueue_job(..., _defer_until=instant)`)
run by an arq Worker with its defaults (max_jobs=10, poll_delay=0.5 s).

arq runs in a venv of its own, benchmarks/peer_arq/.venv (`make bench` creates it from
benchmarks/peer_arq/requirements.txt, pinned with hashes): arq requires redis-py < 6 and the
project pins 8, so installing arq beside the services would downgrade the client our own
figures are measured with. benchmarks/peer_arq/burst_arq.py does arq's part (enqueue, then
the worker in burst mode); each job XADDs one entry, read here as for every peer
(benchmarks/peers.py). arq's per-job INFO log lines are not configured (its CLI would print
them): that only helps arq.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.peers import PeerUnavailable, run_external

FOLDER = Path(__file__).resolve().parent / "peer_arq"
PYTHON = FOLDER / ".venv" / "bin" / "python"
STREAM = "arq:due"


def run(url: str, n: int) -> dict[str, Any]:
    if not PYTHON.exists():
        raise PeerUnavailable(
            "arq's venv is missing: `make bench` creates it (python -m venv "
            "benchmarks/peer_arq/.venv && benchmarks/peer_arq/.venv/bin/pip install "
            "--require-hashes -r benchmarks/peer_arq/requirements.txt)"
        )
    return run_external(
        [str(PYTHON), "burst_arq.py"], url, n, STREAM, cwd=FOLDER, timeout_s=max(300.0, n / 20)
    )
