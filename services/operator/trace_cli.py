"""`nudge trace COUPLE_ID`: one couple's schedules, next fires, consent and recent outcomes.

Reads REDIS_URL, NUDGE_KEY_PREFIX and NUDGE_SHARDS, read-only. Rich tables for people,
`--json` for scripts (one object: services/operator/trace.CoupleTrace). Ids, kinds and
reasons only (no names, addresses or jar texts). An invalid couple id is a usage error;
Redis errors reach the command line's error boundary (services/cli_errors.py).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from couples_nudge.cli_errors import CliError
from couples_nudge.operator.trace import CoupleTrace
from couples_nudge.operator.trace_reader import (
    DEFAULT_SCAN,
    MAX_SCAN,
    InvalidCoupleId,
    valid_couple_id,
)

__all__ = ["render_trace", "trace"]


def _utc(instant: datetime | None) -> str:
    return "-" if instant is None else f"{instant:%Y-%m-%d %H:%M}Z"


def _table(title: str, *columns: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column)
    return table


def render_trace(trace: CoupleTrace) -> Group:
    """The tables `nudge trace` prints."""
    parts: list[Table | Text] = [_headline(trace)]
    if trace.partners:
        partners = _table("Partners", "partner", "zone", "locale", "channels", "quiet hours")
        for p in trace.partners:
            channels = ", ".join(p.channels) or "-"
            partners.add_row(p.partner_id, p.timezone, p.locale, channels, p.quiet_hours or "-")
        parts.append(partners)
    consent = _table("Pauses, unsubscribes, dead channels", "what", "who", "since", "detail")
    for pause in trace.pauses:
        until = "until resumed" if pause.until is None else f"until {_utc(pause.until)}"
        state = "active" if pause.active else "over"
        consent.add_row("pause", pause.scope, _utc(pause.since), f"{until} ({state})")
    for u in trace.unsubscribes:
        consent.add_row("unsubscribed", u.partner_id, _utc(u.since), f"{u.kind} / {u.channel}")
    for gone in trace.dead_channels:
        consent.add_row("channel dead", gone.partner_id, _utc(gone.since), gone.channel)
    if consent.row_count:
        parts.append(consent)
    schedules = _table("Schedules", "schedule", "rule", "zone", "to", "sent", "armed for")
    for s in trace.schedules:
        to = ("turns: " if s.takes_turns else "") + ", ".join(s.recipients)
        schedules.add_row(s.schedule_id, s.rule, s.timezone, to, str(s.sequence), _utc(s.armed_at))
    parts.append(schedules)
    fires = _table("Next fires", "at (UTC)", "kind", "partner", "local time", "would", "note")
    for f in trace.next_fires:
        for r in f.recipients:
            would = r.blocked or "send: " + ", ".join(r.channels)
            fires.add_row(
                _utc(f.at), f.kind, r.partner_id, f"{r.at_local} {r.timezone}", would, f.note or ""
            )
    parts.append(fires)
    outcomes = _table(
        f"Last outcomes (newest first; of the newest {trace.outcomes_scanned} scanned)",
        "at (UTC)", "outcome", "kind", "partner", "channel", "reason / content", "occurrence",
    )  # fmt: skip
    for o in trace.outcomes:
        outcomes.add_row(
            _utc(o.at),
            o.outcome,
            o.kind,
            o.partner_id or "-",
            o.channel or "-",
            o.reason or o.content_id or "-",
            o.occurrence_id,
        )
    parts.append(outcomes)
    if trace.retries:
        retries = _table("Waiting for another attempt", "at (UTC)", "kind", "attempt", "occurrence")
        for retry in trace.retries:
            retries.add_row(_utc(retry.at), retry.kind, str(retry.attempt), retry.occurrence_id)
        parts.append(retries)
    if trace.dead_letters:
        dead = _table("Dead letters", "entry", "at", "attempts", "reason")
        for letter in trace.dead_letters:
            dead.add_row(letter.entry_id, letter.at, str(letter.attempts), letter.reason)
        parts.append(dead)
    return Group(*parts)


def _headline(trace: CoupleTrace) -> Text:
    if not trace.found:
        text = Text(f"couple {trace.couple_id}: not in Redis", "bold yellow")
        if trace.erased_at is not None:
            text.append(f" (erased at {_utc(trace.erased_at)})", "yellow")
        return text
    source = trace.date_nights_from + (", daily question" if trace.daily_question else "")
    return Text.assemble(
        (f"couple {trace.couple_id}", "bold"),
        f"  revision {trace.revision}  date nights from {source}  jar: {trace.jar_size} ideas",
        (f"  at {_utc(trace.at)}", "dim"),
    )


async def _read(couple_id: str, scan: int, fires: int, outcomes: int) -> CoupleTrace:
    from couples_nudge.common.clock import SystemClock
    from couples_nudge.common.runtime import redis_client
    from couples_nudge.common.settings import CommonSettings
    from couples_nudge.operator.trace import build_trace
    from couples_nudge.operator.trace_reader import read_trace

    settings = CommonSettings()
    redis = redis_client(settings)
    try:
        read = await read_trace(redis, settings.keys, couple_id, scan=scan)
    finally:
        await redis.aclose()
    return build_trace(read, SystemClock().now(), fires=fires, outcomes=outcomes)


def trace(
    couple_id: Annotated[str, typer.Argument(metavar="COUPLE_ID", help="The couple's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False,
    fires: Annotated[int, typer.Option(min=1, max=200, help="Next fires to show.")] = 10,
    outcomes: Annotated[int, typer.Option(min=1, max=500, help="Last outcomes to show.")] = 20,
    scan: Annotated[
        int,
        typer.Option(min=1, max=MAX_SCAN, help="Newest entries of the outcomes stream to search."),
    ] = DEFAULT_SCAN,
) -> None:
    """One couple: schedules, next fires with notes, pauses and unsubscribes, jar size, the last
    outcomes, retries and dead letters (ids and kinds only)."""
    try:
        couple_id = valid_couple_id(couple_id)
    except InvalidCoupleId as exc:
        raise CliError(str(exc)) from None
    snapshot = asyncio.run(_read(couple_id, scan, fires, outcomes))
    if as_json:
        typer.echo(json.dumps(snapshot.as_json(), separators=(",", ":")))
    else:
        Console().print(render_trace(snapshot))
