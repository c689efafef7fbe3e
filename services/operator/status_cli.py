"""`nudge status`: streams, consumer groups, timers, retries, dead letters, recent rejections.

Reads REDIS_URL, NUDGE_KEY_PREFIX and NUDGE_SHARDS. Rich tables for people, `--json` for
scripts (one object per refresh), `--watch SECONDS` to refresh until Ctrl-C: in place on a
terminal, else (a pipe, a log file) each refresh printed in full and flushed. Errors (Redis
unreachable) reach the command line's error boundary (services/cli_errors.py).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from couples_nudge.operator.status import REJECTED_COUNT_CAP, Status

__all__ = ["render_status", "state_line", "status"]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


def _when(instant: datetime | None, now: datetime) -> str:
    if instant is None:
        return "-"
    delta = (instant - now).total_seconds()
    relative = f"in {_age(delta)}" if delta >= 0 else f"{_age(-delta)} ago"
    return f"{instant:%Y-%m-%d %H:%M:%S}Z ({relative})"


def render_status(status: Status) -> Group:
    """The tables `nudge status` prints, from one snapshot."""
    streams = Table(title="Streams", title_justify="left")
    for column in ("stream", "length", "group", "consumers", "pending", "lag", "oldest pending"):
        streams.add_column(column, justify="left" if column in ("stream", "group") else "right")
    for stream in status.streams:
        if not stream.groups:
            streams.add_row(stream.label, str(stream.length), "-", "-", "-", "-", "-")
        for group in stream.groups:
            streams.add_row(
                stream.label,
                str(stream.length),
                group.name,
                str(group.consumers),
                str(group.pending),
                "?" if group.lag is None else str(group.lag),
                _age(group.oldest_pending_age_s),
            )
    timers = Table(title="Timers", title_justify="left")
    for column in ("shard", "total", "due now", "overdue (>1 min)", "next fire"):
        timers.add_column(column, justify="left" if column == "next fire" else "right")
    for t in status.timers:
        next_fire = _when(t.next_fire, status.at)
        timers.add_row(f"{t.shard:02d}", str(t.total), str(t.due), str(t.overdue), next_fire)
    if len(status.timers) > 1:
        timers.add_row(
            "all",
            str(status.timers_total),
            str(status.timers_due),
            str(status.timers_overdue),
            _when(status.next_fire, status.at),
            style="bold",
        )
    retries = Table(title="Retries (sends waiting for another attempt)", title_justify="left")
    for column in ("shard", "waiting", "next attempt"):
        retries.add_column(column, justify="left" if column == "next attempt" else "right")
    for r in status.retries:
        retries.add_row(f"{r.shard:02d}", str(r.waiting), _when(r.next_due, status.at))
    if len(status.retries) > 1:
        retries.add_row(
            "all", str(status.retries_waiting), _when(status.next_retry, status.at), style="bold"
        )
    rejected = str(status.rejected_last_hour)
    if status.rejected_last_hour >= REJECTED_COUNT_CAP:
        rejected += "+"
    summary = Text.assemble(
        ("dead letters: ", "bold"),
        (str(status.dead_letters), "red" if status.dead_letters else "green"),
        ("   rejected in the last hour: ", "bold"),
        (rejected, "yellow" if status.rejected_last_hour else "green"),
        (f"   at {status.at:%Y-%m-%d %H:%M:%S}Z", "dim"),
    )
    return Group(streams, timers, retries, summary, state_line(status))


def state_line(status: Status) -> Text:
    """Which Redis state the services run on, and its last loss (red while recent)."""
    state = status.state
    if state is None:
        return Text("state: no marker (no service has started on this Redis)", "yellow")
    began = f"state since {state.began_at:%Y-%m-%d %H:%M:%S}Z"
    if state.lost_at is None:
        return Text(began + " (no loss noticed)", "dim")
    lost = (
        f"STATE LOST at {state.lost_at:%Y-%m-%d %H:%M:%S}Z, detected by {state.detected_by}"
        if status.state_lost_recently
        else f"state lost at {state.lost_at:%Y-%m-%d %H:%M:%S}Z, detected by {state.detected_by}"
    )
    if state.lost_epoch_began_at is not None:
        lost += f"; the lost state had begun {state.lost_epoch_began_at:%Y-%m-%d %H:%M:%S}Z"
    return Text(lost, "bold red" if status.state_lost_recently else "dim")


async def _snapshot() -> Status:
    from couples_nudge.common.clock import SystemClock
    from couples_nudge.common.runtime import redis_client
    from couples_nudge.common.settings import CommonSettings
    from couples_nudge.operator.status import gather_status

    settings = CommonSettings()
    redis = redis_client(settings)
    try:
        return await gather_status(redis, settings.keys, SystemClock().now())
    finally:
        await redis.aclose()


def _read() -> Status:
    return asyncio.run(_snapshot())


def status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per refresh.")] = False,
    watch: Annotated[
        float | None,
        typer.Option(min=0.5, metavar="SECONDS", help="Refresh every SECONDS until Ctrl-C."),
    ] = None,
) -> None:
    """Streams, consumer groups, timers, dead letters and rejections, read from Redis."""
    console = Console()
    if watch is None:
        _show(console, _read(), as_json)
        return
    try:
        if as_json or not console.is_terminal:  # no screen to redraw: one snapshot after another
            while True:
                _show(console, _read(), as_json)
                time.sleep(watch)
        with Live(render_status(_read()), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(watch)
                live.update(render_status(_read()), refresh=True)
    except KeyboardInterrupt:
        return


def _show(console: Console, snapshot: Status, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(snapshot.as_json(), separators=(",", ":")))
    else:
        console.print(render_status(snapshot))
    sys.stdout.flush()  # a pipe is block-buffered: each refresh must leave now, not at exit
