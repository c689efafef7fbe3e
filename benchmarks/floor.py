"""The physical floor of a fire, measured in the burst's own run (issue 20).

A fire cannot cost Redis less than publishing its NudgeDue and moving its timer: one `XADD`
of the same payload onto a due stream and one `ZADD` of the timer's next score. This module
measures what Redis's CPU spends on exactly that, as bare pipelined commands (no Lua, no
reads, no compare-and-set), and what it spent on a scheduler's burst, both as INFO cpu
deltas (used_cpu_sys + used_cpu_user) per fire: the server's own CPU time, which other load
on a shared machine does not inflate (commandstats' usec is wall time inside a call, and a
server that waits for a core is charged for the wait).

The floor runs on keys of its own in the burst's private server, with the payloads the burst
published (read back from its due stream), the timers already present (a re-arm moves an
existing member, as FIRE's does) and the stream trimmed as the scheduler trims its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import redis

from benchmarks.harness import Row, stream_page

__all__ = ["TARGET_RATIO", "floor_us_per_fire", "rows", "server_cpu_s"]

TARGET_RATIO: Final = 3.0  # issue 20: Redis time per NudgeDue <= 3x the floor
_PIPELINE: Final = 400  # pairs per pipeline: about what one FIRE call carries (200 x 2 commands)
_TIMERS: Final = "floor:timers"
_DUE: Final = "floor:due"


def server_cpu_s(client: redis.Redis) -> float:
    """The server's CPU seconds so far (INFO cpu: system + user, of the main thread and all)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


def floor_us_per_fire(client: redis.Redis, due_key: str, *, maxlen: int) -> tuple[float, int]:
    """Redis CPU us per pipelined XADD + ZADD pair, with the payloads on `due_key`; and how
    many pairs were measured (every payload on the stream)."""
    payloads: list[bytes] = []
    last = "-"
    while page := stream_page(client, due_key, last):
        if last != "-":
            page = page[1:]
            if not page:
                break
        payloads += [fields[b"__data__"] for _, fields in page]
        last = page[-1][0].decode()
    if not payloads:
        return 0.0, 0
    members = [f"floor/{i:07d}" for i in range(len(payloads))]
    client.delete(_TIMERS, _DUE)
    for start in range(0, len(members), 10_000):  # the timers, armed before (not measured)
        client.zadd(_TIMERS, dict.fromkeys(members[start : start + 10_000], 1))
    before = server_cpu_s(client)
    for start in range(0, len(payloads), _PIPELINE):
        with client.pipeline(transaction=False) as pipe:
            for i in range(start, min(start + _PIPELINE, len(payloads))):
                pipe.xadd(_DUE, {"__data__": payloads[i]}, maxlen=maxlen, approximate=True)
                pipe.zadd(_TIMERS, {members[i]: 2})
            pipe.execute()
    spent = server_cpu_s(client) - before
    client.delete(_TIMERS, _DUE)
    return spent / len(payloads) * 1e6, len(payloads)


def rows(runs: list[tuple[str, dict[str, Any]]], floor_us: float, pairs: int) -> list[Row]:
    """The floor, and each run's Redis CPU per NudgeDue against it (target: <= 3x)."""
    out = [
        Row(
            "burst",
            "bare XADD + ZADD",
            "Redis CPU per fire (the floor)",
            floor_us,
            "us",
            note=f"INFO cpu delta / {pairs} pipelined pairs, the burst's payloads, same server",
        )
    ]
    fired = float(runs[0][1]["fired"]) if runs else 0.0
    out.append(
        Row(
            "burst",
            "bare XADD + ZADD",
            "the burst at the floor, Redis alone",
            floor_us * fired / 1e6,
            "s",
            note=(
                f"{fired:,.0f} fires x the floor: Redis's least time to write them, whatever "
                "the scheduler does (p99 <= 0.8 s needs about that or less)"
            ),
        )
    )
    for label, run in runs:
        spent = float(run["redis_cpu_us_per_fire"])
        instant = float(run["redis_cpu_us_per_fire_at_instant"])
        out.append(
            Row(
                "burst",
                f"ours, {label}",
                "Redis CPU per NudgeDue, first to last fire / floor",
                instant / max(1e-9, floor_us),
                "x",
                goal="min",
                note="the instant's share only (the lookahead's reads ran before it)",
            )
        )
        out += [
            Row(
                "burst",
                f"ours, {label}",
                "Redis CPU per NudgeDue",
                spent,
                "us",
                note="INFO cpu delta / fired, the clock handed over to the last process done",
            ),
            Row(
                "burst",
                f"ours, {label}",
                "Redis CPU per NudgeDue / floor",
                spent / max(1e-9, floor_us),
                "x",
                target=TARGET_RATIO,
                goal="min",
            ),
        ]
    return out


def replicas_row(ones: Sequence[dict[str, Any]], twos: Sequence[dict[str, Any]]) -> list[Row]:
    """Redis's CPU per NudgeDue with 2 processes over 1: the same fires, so the same Redis
    time at best; means over the runs of each (burst.run: 1, 2, 2, 1 processes)."""

    def mean(runs: Sequence[dict[str, Any]]) -> float:
        return sum(float(r["redis_cpu_us_per_fire"]) for r in runs) / len(runs)

    return [
        Row(
            "burst",
            "ours",
            "2 processes / 1 process, Redis CPU per NudgeDue",
            mean(twos) / max(1e-9, mean(ones)),
            "x",
            target=1.05,
            goal="min",
            note=(
                "a second replica adds no work in Redis (load-robust; 1.05: run-to-run noise); "
                "us per fire, 1 / 2 processes: "
                + ", ".join(f"{float(r['redis_cpu_us_per_fire']):.1f}" for r in ones)
                + " / "
                + ", ".join(f"{float(r['redis_cpu_us_per_fire']):.1f}" for r in twos)
            ),
        )
    ]
