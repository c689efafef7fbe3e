"""`nudge dlq`: look at, replay and purge the dead-letter stream."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import redis.asyncio as aioredis
import typer
from rich.console import Console
from rich.table import Table

from couples_nudge.cli_errors import CliError, bounded
from couples_nudge.common import dead_letters
from couples_nudge.common.keys import Keys
from couples_nudge.common.runtime import redis_client
from couples_nudge.common.settings import CommonSettings
from couples_nudge.scheduler import requeue

app = typer.Typer(
    help="Dead letters: nudges and events that exhausted their retries; rejected preference "
    "events an older scheduler refused."
)
console = Console()
T = TypeVar("T")


def _run(action: Callable[[aioredis.Redis, Keys], Awaitable[T]]) -> T:
    settings = CommonSettings()

    async def go() -> T:
        redis = redis_client(settings)
        try:
            return await action(redis, settings.keys)
        finally:
            await redis.aclose()

    return asyncio.run(go())


@app.command("list")
def list_(
    count: Annotated[int, typer.Option(min=1, help="How many, oldest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List dead letters with the reason each one died (no personal data is shown)."""
    letters = _run(lambda r, k: dead_letters.list_dead(r, k.dead, count))
    if as_json:
        for d in letters:
            row = {
                "id": d.id,
                "at": d.at,
                "source": d.source,
                "entry_id": d.entry_id,
                "attempts": d.attempts,
                "type": d.event_type,
                "couple_id": d.couple_id,
                "reason": d.reason,
            }
            typer.echo(json.dumps(row))
        return
    table = Table(title=f"{len(letters)} dead letters")
    for column in ("id", "at", "source", "type", "attempts", "couple", "reason"):
        table.add_column(column, overflow="fold")
    for d in letters:
        table.add_row(d.id, d.at, d.source, d.event_type, str(d.attempts), d.couple_id, d.reason)
    console.print(table)


@app.command()
def replay(
    ids: Annotated[list[str] | None, typer.Argument(help="Dead-letter ids to replay.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Put dead letters back on the stream they came from, to be handled again."""
    if not ids and not all_:
        raise typer.BadParameter("name the ids to replay, or pass --all")
    if all_ and not yes:
        _confirm("Replay every dead letter?", "replay --all")
    wanted = None if all_ else list(dict.fromkeys(ids or []))
    replayed = _run(lambda r, k: dead_letters.replay_letters(r, k.dead, wanted))
    console.print(f"replayed {len(replayed)} dead letter(s)")
    missing = [i for i in wanted or [] if i not in replayed]
    if missing:  # a mistyped or already replayed id: say so, not "replayed 0" and exit 0
        named = ", ".join(bounded(i, 40) for i in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise CliError(
            f"not on the dead-letter stream: {named}{more} (`nudge dlq list` shows the ids)"
        )


@app.command()
def purge(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every dead letter for good."""
    if not yes:
        _confirm("Delete every dead letter for good?", "purge")
    purged = _run(lambda r, k: dead_letters.purge(r, k.dead))
    console.print(f"purged {purged} dead letter(s)")


@app.command("requeue-rejected")
def requeue_rejected(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Put rejected preference events this version reads back on the preferences stream
    (those an older scheduler refused during a rolling upgrade)."""
    if not yes:
        _confirm("Put the rejected preference events this version reads back?", "requeue-rejected")
    done = _run(requeue.requeue_rejected)
    console.print(f"requeued {done.requeued} rejected preference event(s); {done.kept} kept")


def _confirm(question: str, command: str) -> None:
    """Ask on a terminal; elsewhere (a script, CI) say that --yes is how to confirm."""
    if not sys.stdin.isatty():
        raise CliError(f"`nudge dlq {command}` cannot ask for confirmation here: add --yes")
    typer.confirm(question, abort=True)
