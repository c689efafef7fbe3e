"""`nudge demo`: both services, embedded parts, sample couples and a simulated month.

Starts a private Valkey (unless REDIS_URL is set) and an SMTP catcher writing ./outbox/*.eml
(a folder it marks as its own, and clears of its own emails only: services/demo_outbox.py),
runs the scheduler and the notifier in this process on one accelerated clock, publishes the
couples in examples/couples/ (then the date-jar events in examples/couples/jars/*.jsonl, one
event a line), prints what was sent, and writes outbox/index.html: the month as a calendar per
couple, linking each nudge to its email (services/demo_calendar.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from couples_nudge.common.clock import ScaledClock
from couples_nudge.common.keys import NOTIFIER_GROUP
from couples_nudge.common.shutdown import Deadline
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.demo_calendar import SentEmail, build_calendars, render_calendar
from couples_nudge.demo_outbox import CALENDAR, prepare_outbox
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.embedded.valkey import EmbeddedValkey
from couples_nudge.notifier.service import NotifierService
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.unsubscribe import InvalidToken, UnsubscribeTokens
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge_schemas import (
    EventRejected,
    OutcomeEvent,
    PreferencesSet,
    parse_outcome,
    parse_preference,
)

__all__ = ["DemoResult", "default_start", "run_demo"]

# How long services still running when the demo is interrupted get to stop (Ctrl-C).
_INTERRUPTED_STOP = timedelta(seconds=2)


def default_start(today: datetime | None = None) -> datetime:
    """Midnight UTC on the 1st of next month: every monthly cadence falls inside 31 days."""
    now = today or datetime.now(UTC)
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return (first + timedelta(days=32)).replace(day=1)


@dataclass
class DemoResult:
    sent: Counter[tuple[str, str, str, str]]  # (couple, partner, kind, channel)
    suppressed: Counter[str]
    emails: int
    outbox: Path
    seconds: float
    from_jar: Counter[tuple[str, str]] = field(default_factory=Counter)  # (couple, partner)
    calendar: Path | None = None  # outbox/index.html
    # (couple, partner, kind, reason) of every suppressed nudge: a kind a partner never got
    # was suppressed on purpose (the daily cap, quiet hours), and this says which
    suppressed_for: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)


async def run_demo(
    *,
    couples_dir: Path,
    outbox: Path,
    days: int = 31,
    seconds: float = 20.0,
    start: datetime | None = None,
    console: Console | None = None,
) -> DemoResult:
    console = console or Console()
    prepare_outbox(outbox)  # refuses a folder of the user's; start-up: nothing runs yet
    events = [p.read_bytes() for p in sorted(couples_dir.glob("*.json"))]  # noqa: ASYNC240
    events += [  # the couples' own date-jar ideas, after their preferences
        line.encode()
        for p in sorted(couples_dir.glob("jars/*.jsonl"))  # noqa: ASYNC240
        for line in p.read_text("utf-8").splitlines()
        if line.strip()
    ]
    start = start or default_start()
    speed = days * 86400 / seconds
    # Held at `start` while the servers, the services and the couples are set up: a second of
    # start-up is a day and a half of the month, and running meanwhile, the couples' first
    # nudges went out hours late in one burst (a Friday date night in the small hours).
    end = start + timedelta(days=days)
    clock = ScaledClock(start, speed, held=True, until=end)  # the month, and not a minute more
    real_second = timedelta(seconds=speed)
    valkey = None if os.environ.get("REDIS_URL") else EmbeddedValkey().start()
    url = os.environ["REDIS_URL"] if valkey is None else valkey.url
    prefix = f"demo{os.getpid()}"
    catcher = MailCatcher(outbox).start()
    unsubscribe_secret = SecretStr(f"demo:{secrets.token_urlsafe(24)}")
    scheduler = SchedulerService(
        SchedulerSettings(
            redis_url=SecretStr(url),
            key_prefix=prefix,
            max_poll_seconds=0.01,
            # On a clock this fast a 50 ms hiccup is hours: allow a real second of lateness.
            grace_date_night=real_second,
            grace_check_in=real_second,
            grace_appreciation=real_second,
        ),
        clock,
    )
    notifier = NotifierService(
        NotifierSettings(
            redis_url=SecretStr(url),
            key_prefix=prefix,
            smtp_port=catcher.port,
            sender="Nudges <nudges@demo.test>",
            # Emails carry one-click unsubscribe links (RFC 8058) signed with a throwaway key.
            public_url="http://localhost:8080",
            unsubscribe_secrets=[unsubscribe_secret],
        ),
        clock,
    )
    redis = aioredis.Redis.from_url(url)
    began = time.monotonic()
    running: list[SchedulerService | NotifierService] = []  # stopped in `finally` if left
    try:
        await scheduler.start()
        running.append(scheduler)
        await notifier.start()
        running.append(notifier)
        for event in events:
            await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: event})
        await _applied(redis, scheduler.keys.preferences)
        clock.release()
        with Progress(
            TextColumn("[bold]simulated month[/]"),
            BarColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress:
            task = progress.add_task("", total=days * 24)
            while (now := clock.now()) < end:
                hours = (now - start).total_seconds() / 3600
                progress.update(
                    task,
                    completed=min(hours, days * 24),
                    description=f"{now:%a %d %b %H:%M} UTC · {len(catcher.messages)} emails",
                )
                await asyncio.sleep(0.1)
            progress.update(
                task, completed=days * 24, description=f"{len(catcher.messages)} emails"
            )
        running.remove(scheduler)
        await scheduler.stop()
        await _drain(redis, notifier.keys.all_due())
        running.remove(notifier)
        await notifier.stop()
        sent, suppressed, from_jar, suppressed_for = await _tally(redis, notifier.keys.outcomes)
        outcomes = await read_events(redis, notifier.keys.outcomes, parse_outcome)
        calendar = write_calendar(
            outbox,
            events,
            outcomes,
            _emails(catcher, UnsubscribeTokens.from_secrets([unsubscribe_secret], "http://x")),
            start,
            days,
        )
        await redis.delete(*[k async for k in redis.scan_iter(match=f"{prefix}:*")])
    finally:
        # Interrupted (Ctrl-C) or failed: the services still running stop first, briefly
        # (their tasks were destroyed pending, and the exit took seconds), and a server the
        # demo did not start (REDIS_URL) keeps none of its keys.
        for service in running:
            with contextlib.suppress(Exception):
                await service.stop(Deadline.after(_INTERRUPTED_STOP))
        if running and valkey is None:
            with contextlib.suppress(Exception):
                keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
                if keys:
                    await redis.delete(*keys)
        await redis.aclose()
        catcher.stop()
        if valkey is not None:
            valkey.stop()
    return DemoResult(
        sent,
        suppressed,
        len(catcher.messages),
        outbox,
        time.monotonic() - began,
        from_jar,
        calendar,
        suppressed_for,
    )


def _emails(catcher: MailCatcher, tokens: UnsubscribeTokens) -> list[SentEmail]:
    """Whose nudge each email file is, from its signed unsubscribe link (couple, partner and
    kind), in the order the catcher numbered them."""
    found = []
    for n, message in enumerate(catcher.messages, start=1):
        link = str(message.get("List-Unsubscribe", "")).strip("<>")
        try:
            claim = tokens.verify(link.rsplit("/", 1)[-1])
        except InvalidToken:
            continue
        found.append(SentEmail(f"{n:05d}.eml", claim.couple_id, claim.partner_id, claim.scope))
    return found


def write_calendar(
    outbox: Path,
    events: list[bytes],
    outcomes: list[OutcomeEvent],
    emails: list[SentEmail],
    start: datetime,
    days: int,
) -> Path:
    """outbox/index.html: the simulated month per couple (services/demo_calendar.py)."""
    couples = []
    for raw in events:
        try:
            event = parse_preference(raw)
        except EventRejected:
            continue
        if isinstance(event, PreferencesSet):
            couples.append(event.data)
    page = render_calendar(build_calendars(couples, outcomes, emails, start, days), start, days)
    path = outbox / CALENDAR
    path.write_text(page, encoding="utf-8")
    return path


async def _applied(redis: aioredis.Redis, stream: str, within: float = 15.0) -> None:
    """Wait until the scheduler has applied every event (the preferences stream is a queue:
    an applied entry is deleted)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not await redis.xlen(stream):
            return
        await asyncio.sleep(0.01)


async def _drain(redis: aioredis.Redis, streams: list[str], within: float = 15.0) -> None:
    """Wait until the notifier group has read and acknowledged everything."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        busy = False
        for stream in streams:
            for group in await redis.xinfo_groups(stream):
                if group["name"].decode() == NOTIFIER_GROUP and (
                    group["pending"] or group.get("lag")
                ):
                    busy = True
        if not busy:
            return
        await asyncio.sleep(0.05)


async def _tally(
    redis: aioredis.Redis, stream: str
) -> tuple[
    Counter[tuple[str, str, str, str]],
    Counter[str],
    Counter[tuple[str, str]],
    Counter[tuple[str, str, str, str]],
]:
    sent: Counter[tuple[str, str, str, str]] = Counter()
    suppressed: Counter[str] = Counter()
    from_jar: Counter[tuple[str, str]] = Counter()
    suppressed_for: Counter[tuple[str, str, str, str]] = Counter()
    for event in await read_events(redis, stream, parse_outcome):
        if event.type == "nudge.sent.v1":
            d = event.data
            sent[(d.couple_id, d.partner_id, d.kind, d.channel)] += 1
            if d.content_id.startswith("jar:"):
                from_jar[(d.couple_id, d.partner_id)] += 1
        elif event.type == "nudge.suppressed.v1":
            held = event.data
            suppressed[held.reason] += 1
            suppressed_for[(held.couple_id, held.partner_id or "", held.kind, held.reason)] += 1
    return sent, suppressed, from_jar, suppressed_for


def print_summary(result: DemoResult, console: Console) -> None:
    table = Table(title="Nudges sent in the simulated month")
    columns = ("couple", "partner", "channel", "date night", "from jar", "check-in", "appreciation")
    for column in columns:
        table.add_column(
            column, justify="right" if " " in column or column == "appreciation" else "left"
        )
    people = sorted({(c, p, ch) for c, p, _, ch in result.sent})
    for couple, partner, channel in people:
        counts = [
            str(result.sent[(couple, partner, kind, channel)])
            for kind in ("date_night", "check_in", "appreciation")
        ]
        counts.insert(1, str(result.from_jar[(couple, partner)]))  # of the date nights
        table.add_row(couple, partner, channel, *counts)
    console.print(table)
    if result.suppressed:
        details = ", ".join(f"{reason}: {n}" for reason, n in sorted(result.suppressed.items()))
        console.print(f"Suppressed (with reasons, as outcome events): {details}")
    console.print(
        f"{result.emails} emails in [bold]{result.outbox}/[/] (open any .eml in a mail client) "
        f"· {result.seconds:.1f} s"
    )
    if result.calendar is not None:
        console.print(
            f"The month as a calendar per couple: [bold]{result.calendar}[/] "
            "(open it in a browser)",
            soft_wrap=True,
        )
