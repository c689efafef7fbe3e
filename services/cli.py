"""The `nudge` command line."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from schemas import EventRejected, PreferenceEvent, PreferencesSet, json_schemas, parse_preference
from services.dlq_cli import app as dlq_app
from services.notifier.render_cli import render
from services.operator.status_cli import status

app = typer.Typer(
    help="Reminders and nudges for couples: scheduler, notifier and operator tools.",
    no_args_is_help=True,
    add_completion=False,
)
schema_app = typer.Typer(help="Event contracts for publishers.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")
app.add_typer(dlq_app, name="dlq")
app.command("status")(status)
app.command("render")(render)
console = Console()


@app.command()
def scheduler() -> None:
    """Run the scheduler: consume preferences, fire timers, publish NudgeDue."""
    from services.common.logging import configure_logging
    from services.runner import run, run_until_signalled
    from services.scheduler.service import SchedulerService
    from services.scheduler.settings import SchedulerSettings

    settings = SchedulerSettings()
    configure_logging("scheduler", settings.log_format, settings.log_level)
    run(run_until_signalled(SchedulerService(settings)))


@app.command()
def notifier() -> None:
    """Run the notifier: consume NudgeDue, send email/push, publish outcomes."""
    from services.common.logging import configure_logging
    from services.notifier.service import NotifierService
    from services.notifier.settings import NotifierSettings
    from services.runner import run, run_until_signalled

    settings = NotifierSettings()
    configure_logging("notifier", settings.log_format, settings.log_level)
    run(run_until_signalled(NotifierService(settings)))


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1, max=366, help="Simulated days.")] = 31,
    seconds: Annotated[float, typer.Option(min=2, help="Real seconds the simulation takes.")] = 20,
    outbox: Annotated[Path, typer.Option(help="Where received emails are written.")] = Path(
        "outbox"
    ),
    couples: Annotated[Path, typer.Option(help="Folder of preference events.")] = Path(
        "examples/couples"
    ),
) -> None:
    """Live demo: embedded Valkey, SMTP catcher, both services, a simulated month of nudges."""
    from services.common.logging import configure_logging
    from services.demo import print_summary, run_demo

    configure_logging("demo", "console", "warning")
    result = asyncio.run(run_demo(couples_dir=couples, outbox=outbox, days=days, seconds=seconds))
    print_summary(result, console)
    if result.emails == 0:
        raise typer.Exit(1)


@app.command()
def preview(
    file: Annotated[Path, typer.Argument(help="A preferences.set.v1 event as JSON.")],
    start: Annotated[
        datetime | None, typer.Option(help="ISO instant to start from (default: now).")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=3660)] = 14,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Print the nudges these preferences would produce, computed by the scheduler's code."""
    from services.scheduler.preview import preview_lines

    event = _read_event(file)
    if not isinstance(event, PreferencesSet):
        raise typer.BadParameter(f"{file} holds {event.type}, not preferences.set.v1")
    begin = datetime.now(UTC) if start is None else start
    begin = begin.replace(tzinfo=UTC) if begin.tzinfo is None else begin.astimezone(UTC)
    for line in preview_lines(event.data, begin, begin + timedelta(days=days)):
        if as_json:
            typer.echo(json.dumps(line.as_json(), separators=(",", ":")))
        else:
            typer.echo(line.as_text())


@app.command()
def publish(
    file: Annotated[Path, typer.Argument(help="A preference event as JSON (set/pause/erase...).")],
) -> None:
    """Validate a preference event and publish it on the preferences stream."""
    from services.common.runtime import redis_client
    from services.common.settings import CommonSettings
    from services.common.streams import DATA_FIELD

    event = _read_event(file)
    settings = CommonSettings()

    async def send() -> bytes:
        redis = redis_client(settings)
        try:
            entry = await redis.xadd(
                settings.keys.preferences,
                {DATA_FIELD: event.model_dump_json()},
                maxlen=settings.preferences_maxlen,
                approximate=True,
            )
            return entry if isinstance(entry, bytes) else str(entry).encode()
        finally:
            await redis.aclose()

    entry = asyncio.run(send())
    console.print(f"published {event.type} {event.event_id} as {entry.decode()}")


@schema_app.command("export")
def schema_export(directory: Annotated[Path, typer.Argument()] = Path("schemas/json")) -> None:
    """Write the JSON Schema of every stream's events into DIRECTORY."""
    directory.mkdir(parents=True, exist_ok=True)
    for stem, schema in json_schemas().items():
        (directory / f"{stem}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    console.print(f"wrote {len(json_schemas())} schemas to {directory}/")


def _read_event(file: Path) -> PreferenceEvent:
    try:
        return parse_preference(file.read_bytes())
    except EventRejected as exc:
        console.print(f"[red]{file} is not a valid preference event:[/] {exc.reason}")
        raise typer.Exit(2) from None
