"""Notifier: a backlog of NudgeDue drained end to end through NotifierService.

N couples (burst mix, two partners with email) are ingested and one TimerLoop fires their
date night, leaving N NudgeDue (2N messages) on the due stream. Then 1 and 2 notifier
processes (benchmarks/notifier_proc.py: the real NotifierService, one consumer group: consent
checks, idempotency, content choice, rendering, outcome publication) drain it into a counting
channel (the pipeline without a network), and N/4 into a real local SMTP server in its own
process (benchmarks/smtp_sink.py: Postfix's smtp-sink when installed, else MailCatcher). Peak
RSS growth while draining shows whether memory stays bounded.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from pydantic import SecretStr

from benchmarks import smtp_sink
from benchmarks.burst import START
from benchmarks.harness import (
    PREFIX,
    Options,
    Row,
    couple_event,
    entry_ms,
    instant_after,
    private_server,
)
from benchmarks.harness import scheduler_settings as _scheduler_settings
from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.email import SmtpChannel
from couples_nudge.notifier.render import NudgeView, render_email_bytes
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import parse_preference

DEFAULT_N = 2_000
TARGET_PER_PROCESS = 10_000  # messages/s into the counting channel (issue 20; 5,000 before)
SMTP_SHARE = 4  # the SMTP run drains N / 4 couples (2 emails each)
LAG_BACKLOG = 100_000  # the lag-recovery backlog on the due streams
SMTP_CONCURRENCY = 16  # NUDGE_SMTP_CONCURRENCY of the notifier processes (notifier_proc.py)
REPO = Path(__file__).resolve().parents[1]


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


def _drain(
    url: str,
    n: int,
    instant: datetime,
    processes: int,
    smtp_port: int | None,
    links: bool = False,
) -> dict[str, Any]:
    """`processes` notifier processes (one consumer group) drain the backlog of N NudgeDue.

    Throughput is measured on the server's clock: the span between the first and the last
    outcome entry ids, so process start-up is not counted.
    """
    outcomes = NotifierSettings(redis_url=SecretStr(url), key_prefix=PREFIX).keys.outcomes
    sync = redis.Redis.from_url(url)
    now_ms = epoch_ms(instant + timedelta(seconds=5))
    extra = ["--smtp-port", str(smtp_port)] if smtp_port else []
    extra += ["--links"] if links else []
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.notifier_proc",
                url,
                "--now-ms",
                str(now_ms),
                *extra,
            ],
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    expected = 2 * n
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("notifier process did not start")
        redis_cpu0 = _redis_cpu_s(sync)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        started = time.perf_counter()
        while time.perf_counter() - started < max(300.0, n / 20):
            time.sleep(0.05)
            if int(sync.xlen(outcomes)) >= expected:
                break
        stats = []
        for proc in procs:
            assert proc.stdin is not None
            assert proc.stdout is not None
            proc.stdin.write("stop\n")
            proc.stdin.flush()
            stats.append(json.loads(proc.stdout.readline()))
        redis_cpu_s = _redis_cpu_s(sync) - redis_cpu0
    finally:
        for proc in procs:
            proc.wait(timeout=60)
    done = int(sync.xlen(outcomes))
    first = cast("list[tuple[bytes, Any]]", sync.xrange(outcomes, count=1))[0][0]
    last = cast("list[tuple[bytes, Any]]", sync.xrevrange(outcomes, count=1))[0][0]
    sync.close()
    span_s = max(1e-3, (entry_ms(last) - entry_ms(first)) / 1000)
    cpu_s = sum(s["cpu_s"] for s in stats)
    return {
        "processes": processes,
        "nudges": n,
        "messages": done,
        "expected": expected,
        "seconds": span_s,
        "nudges_per_s": n * min(1.0, done / expected) / span_s,
        "messages_per_s": done / span_s,
        "cpu_us_per_message": cpu_s / max(1, done) * 1e6,
        "sys_us_per_message": sum(s["sys_s"] for s in stats) / max(1, done) * 1e6,
        "redis_cpu_us_per_message": redis_cpu_s / max(1, done) * 1e6,
        "peak_rss_growth_mib": max(s["peak_rss_growth_mib"] for s in stats),
    }


def _redis_cpu_s(sync: redis.Redis) -> float:
    """The server's CPU seconds so far (INFO cpu: user + system), load-robust per message."""
    info = sync.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def _smtp_ceiling(port: int, m: int) -> float:
    """Emails/s of the SMTP leg alone: the same rendered email, sent m times by SmtpChannel
    (same concurrency as the notifier processes) to the same server: what no notifier beats."""
    view = NudgeView(
        kind="date_night",
        item=load_catalog().items("date_night")[0],
        recipient="Maya",
        partner="Sam",
        unsubscribe_url="https://nudge.example/u/abc",
    )
    mime = render_email_bytes(
        view,
        sender="Nudge <nudge@example.test>",
        to_name="Maya",
        to_address="maya@example.test",
        when=START,
        list_unsubscribe_post=True,
    )
    channel = SmtpChannel(host="127.0.0.1", port=port, concurrency=SMTP_CONCURRENCY)
    started = time.perf_counter()
    await asyncio.gather(
        *(
            channel.send(
                Outgoing(
                    "email",
                    f"k{i}",
                    mime=mime,
                    sender="nudge@example.test",
                    address="maya@example.test",
                    couple_id="c",
                    partner_id="maya",
                    occurrence_id=f"o{i}",
                )
            )
            for i in range(m)
        )
    )
    seconds = time.perf_counter() - started
    await channel.close()
    return m / seconds


def _run(n: int, processes: int, smtp_port: int | None, links: bool = False) -> dict[str, Any]:
    with private_server() as url:
        instant = asyncio.run(_backlog(url, n))
        return _drain(url, n, instant, processes, smtp_port, links)


def run(options: Options) -> list[Row]:
    n = options.n or DEFAULT_N
    rows: list[Row] = []
    runs = {k: _run(n, k, None) for k in (1, 2)}
    for k, r in runs.items():
        label = f"ours, counting sink, {k} process{'es' if k > 1 else ''}"
        note = (
            f"{n:,} NudgeDue (2 partners each) = {r['messages']:,} messages in {r['seconds']:.1f} s"
        )
        rows += [
            Row(
                "notifier",
                label,
                "messages end to end",
                r["messages_per_s"],
                "messages/s",
                target=TARGET_PER_PROCESS * k,  # issue 20: per process
                extra=r,
                note=note,
            ),
            Row("notifier", label, "NudgeDue end to end", r["nudges_per_s"], "nudges/s"),
            Row(
                "notifier",
                label,
                "CPU per message",
                r["cpu_us_per_message"],
                "us",
                note=f"of which system {r['sys_us_per_message']:.0f} us (socket writes)",
            ),
            Row("notifier", label, "Redis CPU per message", r["redis_cpu_us_per_message"], "us"),
            Row(
                "notifier", label, "peak RSS growth while draining", r["peak_rss_growth_mib"], "MiB"
            ),
        ]
    # As production sends them: each email with a signed Message-ID, unsubscribe link, four
    # one-tap answers and the manage link (notifier_proc.LINKS). Reported, no target: the
    # issue's target and its baseline were measured without links.
    signed = _run(n, 1, None, links=True)
    rows += [
        Row(
            "notifier",
            "ours, counting sink, 1 process, signed links",
            "messages end to end",
            signed["messages_per_s"],
            "messages/s",
            extra=signed,
            note=f"{signed['messages']:,} messages in {signed['seconds']:.1f} s, as production "
            "signs them (Message-ID, unsubscribe, 4 answers, manage)",
        ),
        Row(
            "notifier",
            "ours, counting sink, 1 process, signed links",
            "CPU per message",
            signed["cpu_us_per_message"],
            "us",
        ),
    ]
    best = max(r["nudges_per_s"] for r in runs.values())
    measured = n >= LAG_BACKLOG  # a backlog of the size was drained above
    how = "measured" if measured else "projected"
    rows.append(
        Row(
            "notifier",
            "ours, counting sink",
            f"{LAG_BACKLOG:,} NudgeDue backlog drained in ({how})",
            LAG_BACKLOG / max(1e-9, best),
            "s",
            target=30,
            goal="min",
            note=(
                f"the faster drain above, of {n:,} NudgeDue (2 emails each)"
                if measured
                else "at the best NudgeDue rate above (2 emails each); --n 100000 measures it"
            ),
        )
    )
    rows.append(
        Row(
            "notifier",
            "ours, counting sink",
            "2 processes / 1 process",
            runs[2]["messages_per_s"] / max(1e-9, runs[1]["messages_per_s"]),
            "x",
        )
    )
    m = max(1, n // SMTP_SHARE)
    kind = smtp_sink.available() if options.smtp == "auto" else cast("smtp_sink.Kind", options.smtp)
    with smtp_sink.SmtpSink(kind) as sink:
        ceiling = asyncio.run(_smtp_ceiling(sink.port, 2 * m))
        server = sink.label
    rows.append(
        Row(
            "notifier",
            f"SMTP leg alone (SmtpChannel -> {server})",
            "emails, pre-rendered",
            ceiling,
            "emails/s",
            note=f"{2 * m:,} emails, {SMTP_CONCURRENCY} connections: the ceiling below",
        )
    )
    for k in (1, 2):
        with smtp_sink.SmtpSink(kind) as sink:
            smtp = _run(m, k, sink.port)
            received = sink.received()
        label = f"ours, local SMTP, {k} process{'es' if k > 1 else ''}"
        rows.append(
            Row(
                "notifier",
                label,
                f"emails into a real SMTP server ({server})",
                received / smtp["seconds"],
                "emails/s",
                target=1_000,
                extra={**smtp, "smtp_server": kind},
                note=f"{received:,} emails ({m:,} nudges) in {smtp['seconds']:.1f} s",
            )
        )
    return rows
