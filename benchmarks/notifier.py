"""Notifier: a backlog of NudgeDue drained end to end through NotifierService.

N couples (burst mix, two partners with email) are ingested and one TimerLoop fires their
date night, leaving N NudgeDue on the due stream. Then NotifierService (FastStream consumer
group, consent checks, idempotency, content choice, rendering, outcome publication) drains
it, twice: into a counting RecordingChannel (the pipeline without a network), and into a real
local SMTP server (MailCatcher, in its own process). Peak RSS growth of this process while
draining shows whether memory stays bounded. No notifier code is changed by benchmarks.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from pydantic import SecretStr

from benchmarks.burst import START
from benchmarks.harness import PREFIX, Options, Row, couple_event, instant_after, private_server
from benchmarks.harness import scheduler_settings as _scheduler_settings
from schemas import parse_preference
from services.common.clock import ManualClock
from services.notifier.channels.base import Outgoing, RecordingChannel
from services.notifier.service import NotifierService
from services.notifier.settings import NotifierSettings
from services.scheduler.ingest import PreferenceIngest
from services.scheduler.store import ScheduleStore
from services.scheduler.timer_loop import TimerLoop

DEFAULT_N = 2_000
SMTP_SHARE = 4  # the SMTP run drains N / 4 couples (2 emails each)
REPO = Path(__file__).resolve().parents[1]
SMTP_SINK = """
import sys, time
from services.embedded.mailcatcher import MailCatcher
with MailCatcher() as mail:
    print(mail.port, flush=True)
    sys.stdin.readline()
    print(len(mail.messages), flush=True)
"""


class CountingChannel(RecordingChannel):
    """A RecordingChannel that keeps a count, not the messages: memory stays the notifier's."""

    count: int = 0

    async def send(self, message: Outgoing) -> None:
        self.count += 1


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _backlog(url: str, n: int) -> datetime:
    """N NudgeDue on the due stream, written by the real scheduler path."""
    settings = _scheduler_settings(url)
    client = aioredis.Redis.from_url(url)
    store = ScheduleStore(client, settings.keys, due_maxlen=settings.due_maxlen)
    ingest = PreferenceIngest(store, ManualClock(START), settings)
    for i in range(0, n, 1000):
        await ingest.apply_many(
            [
                parse_preference(couple_event(j, mix="burst", occurred=START))
                for j in range(i, min(n, i + 1000))
            ]
        )
    instant = instant_after(START, 4, 19, "Europe/Berlin")
    loop = TimerLoop(store, ManualClock(instant), settings)
    while await loop.tick(0):
        pass
    assert loop.fired == n, loop.fired
    await client.aclose()
    return instant


async def _drain(url: str, n: int, instant: datetime, smtp_port: int | None) -> dict[str, Any]:
    settings = NotifierSettings(
        redis_url=SecretStr(url), key_prefix=PREFIX, smtp_port=smtp_port or 1025
    )
    recorder = CountingChannel()
    channels = None if smtp_port else {"email": recorder}
    service = NotifierService(settings, ManualClock(instant + timedelta(seconds=5)), channels)  # type: ignore[arg-type]
    client = aioredis.Redis.from_url(url)
    outcomes = settings.keys.outcomes
    base = int(await client.xlen(outcomes)) if await client.exists(outcomes) else 0
    rss0, peak = _rss_kib(), 0
    started, cpu = time.perf_counter(), time.process_time()
    await service.start()
    expected = 2 * n
    done = 0
    while time.perf_counter() - started < max(300.0, n / 20):
        await asyncio.sleep(0.1)
        peak = max(peak, _rss_kib() - rss0)
        done = int(await client.xlen(outcomes)) - base
        if done >= expected:
            break
    seconds = time.perf_counter() - started
    cpu_s = time.process_time() - cpu
    await service.stop()
    await client.aclose()
    return {
        "nudges": n,
        "outcomes": done,
        "seconds": seconds,
        "nudges_per_s": n * min(1.0, done / expected) / seconds,
        "messages_per_s": done / seconds,
        "peak_rss_growth_mib": peak / 1024,
        "cpu_s": cpu_s,
        "recorded": recorder.count,
    }


def run(options: Options) -> list[Row]:
    n = options.n or DEFAULT_N
    rows: list[Row] = []
    with private_server() as url:
        instant = asyncio.run(_backlog(url, n))
        pipeline = asyncio.run(_drain(url, n, instant, None))
    rows += [
        Row(
            "notifier",
            "ours, counting sink",
            "nudges end to end",
            pipeline["nudges_per_s"],
            "nudges/s",
            target=5_000,
            extra=pipeline,
            note=f"{n:,} NudgeDue, 2 partners each, drained in {pipeline['seconds']:.1f} s",
        ),
        Row(
            "notifier",
            "ours, counting sink",
            "100,000 backlog drained in (projected)",
            100_000 / max(1e-9, pipeline["nudges_per_s"]),
            "s",
            target=30,
            goal="min",
        ),
        Row(
            "notifier",
            "ours, counting sink",
            "peak RSS growth while draining",
            pipeline["peak_rss_growth_mib"],
            "MiB",
        ),
    ]
    m = max(1, n // SMTP_SHARE)
    sink = subprocess.Popen(
        [sys.executable, "-c", SMTP_SINK],
        cwd=REPO,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    assert sink.stdin is not None
    assert sink.stdout is not None
    try:
        port = int(sink.stdout.readline())
        with private_server() as url:
            instant = asyncio.run(_backlog(url, m))
            smtp = asyncio.run(_drain(url, m, instant, port))
        sink.stdin.write("\n")
        sink.stdin.flush()
        received = int(sink.stdout.readline())
    finally:
        sink.wait(timeout=60)
    rows += [
        Row(
            "notifier",
            "ours, local SMTP",
            "emails into a real SMTP server",
            received / smtp["seconds"],
            "emails/s",
            target=1_000,
            extra=smtp,
            note=f"{received:,} emails ({m:,} nudges) in {smtp['seconds']:.1f} s",
        ),
        Row(
            "notifier",
            "ours, local SMTP",
            "peak RSS growth while draining",
            smtp["peak_rss_growth_mib"],
            "MiB",
        ),
    ]
    _ = datetime.now(UTC)
    return rows
