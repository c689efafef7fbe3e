"""What the peers of the burst share: their result, lateness read from a stream, and the
run of a peer that lives outside this interpreter (arq in its own venv, BullMQ under node).

The workload is the same for every peer (benchmarks/burst.py): N jobs due at one instant,
each doing one XADD to a stream of the peer's own, as our scheduler's NudgeDue is one entry
on the due stream. Lateness is therefore read the same way for everyone: stream entry id
(server wall-clock ms) - the instant; fires/s = fired / the last entry's lateness.

An external peer is a command that enqueues the N jobs, runs its own worker until the stream
holds N entries (or its deadline passes), and prints one JSON line last (`ExternalRun`'s
fields); everything it measures besides lateness (adds/s, Redis bytes per job) it measures
itself, on the same private server.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import redis

from benchmarks.harness import entry_ms, percentile, stream_page

__all__ = ["ExternalRun", "PeerResult", "PeerUnavailable", "run_external", "stream_lateness"]


class PeerUnavailable(Exception):
    """The peer cannot run on this machine (a tool or its packages missing): the message
    says what is missing and how to install it."""


@dataclass(slots=True, frozen=True)
class PeerResult:
    """One peer's figures on the burst (burst.py reads them as a dict: `as_dict`)."""

    n: int
    fired: int
    adds_per_s: float
    bytes_per_job: float
    fires_per_s: float
    p50_s: float
    p99_s: float
    max_s: float

    @classmethod
    def from_lateness(
        cls, n: int, lateness: list[float], *, adds_per_s: float, bytes_per_job: float
    ) -> PeerResult:
        span = max(lateness) if lateness else 0.0
        return cls(
            n=n,
            fired=len(lateness),
            adds_per_s=adds_per_s,
            bytes_per_job=bytes_per_job,
            fires_per_s=len(lateness) / span if span > 0 else 0.0,
            p50_s=percentile(lateness, 50),
            p99_s=percentile(lateness, 99),
            max_s=span,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True, frozen=True)
class ExternalRun:
    """The JSON line an external peer prints when its run is over."""

    instant_s: float  # the instant every job was due at (epoch seconds)
    adds_per_s: float
    bytes_per_job: float


def stream_lateness(client: redis.Redis, stream: str, instant_s: float) -> list[float]:
    """Seconds from the instant to each entry of `stream` (its id: the server's clock)."""
    lateness: list[float] = []
    last = "-"
    while page := stream_page(client, stream, last):
        if last != "-":
            page = page[1:]
            if not page:
                break
        lateness += [entry_ms(entry.id) / 1000 - instant_s for entry in page]
        last = page[-1].id.decode()
    return lateness


def run_external(
    command: list[str], url: str, n: int, stream: str, *, cwd: Path, timeout_s: float
) -> dict[str, Any]:
    """Run an external peer's command (its last arguments: URL N STREAM) and read its fires."""
    done = subprocess.run(
        [*command, url, str(n), stream],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-300:]}")
    run = ExternalRun(**json.loads(done.stdout.strip().splitlines()[-1]))
    client = redis.Redis.from_url(url)
    try:
        lateness = stream_lateness(client, stream, run.instant_s)
    finally:
        client.close()
    return PeerResult.from_lateness(
        n, lateness, adds_per_s=run.adds_per_s, bytes_per_job=run.bytes_per_job
    ).as_dict()
