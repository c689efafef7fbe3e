"""python -m benchmarks [scenario ...] [--n N] [--peer-n N] [--no-peers] [--no-fires] [--json PATH]

Scenarios: burst, memory, steady, notifier, cluster, crons, reference (default: all, in that
order). Prints one table per scenario, then issue 20's targets as measured in this run
(benchmarks/targets.py; "not measured" for a scenario not run), and writes JSON:
benchmarks/results/<scenario>.json per scenario and latest.json for the run (with the
targets' summary).
"""

from __future__ import annotations

import argparse
import importlib
import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks import targets
from benchmarks.harness import RESULTS, Options, Row, machine, quiet_logs, report_json

SCENARIOS = ("burst", "memory", "steady", "notifier", "cluster", "crons", "reference")


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3f}"


def table(rows: list[Row]) -> Table:
    out = Table(title="couples-nudge benchmarks", show_lines=False)
    for name in ("scenario", "system", "metric", "value", "unit", "target", "met", "note"):
        out.add_column(name, justify="right" if name in ("value", "target") else "left")
    for row in rows:
        target = "" if row.target is None else ("<= " if row.goal == "min" else ">= ")
        target += "" if row.target is None else _fmt(row.target)
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: ""}[row.met]
        out.add_row(
            row.scenario, row.system, row.metric, _fmt(row.value), row.unit, target, met, row.note
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("scenario", nargs="*", choices=[*SCENARIOS, []], default=[])
    parser.add_argument("--n", type=int, default=None, help="main size (couples / nudges)")
    parser.add_argument("--peer-n", type=int, default=10_000, help="jobs for each peer (burst)")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers (burst)")
    parser.add_argument(
        "--no-fires",
        action="store_true",
        help="burst: the ingestion rows only (no fire runs, floor or peers)",
    )
    parser.add_argument("--speed", type=float, default=10.0, help="steady: clock speed")
    parser.add_argument("--seconds", type=float, default=60.0, help="steady: real seconds")
    parser.add_argument(
        "--smtp",
        choices=["auto", "smtp-sink", "mailcatcher"],
        default="auto",
        help="notifier: the local SMTP server (auto: Postfix smtp-sink when installed)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the run here")
    args = parser.parse_args()
    quiet_logs()
    options = Options(
        n=args.n,
        peer_n=args.peer_n,
        peers=not args.no_peers,
        fires=not args.no_fires,
        speed=args.speed,
        seconds=args.seconds,
        smtp=args.smtp,
    )
    console = Console(width=None if Console().is_terminal else 170)
    meta = {"started": datetime.now(UTC).isoformat(), "machine": machine()}
    rows: list[Row] = []
    for name in args.scenario or SCENARIOS:
        console.print(f"[bold]{name}[/] ...")
        started = time.perf_counter()
        module = importlib.import_module(f"benchmarks.{name}")
        scenario_rows: list[Row] = module.run(options)
        seconds = time.perf_counter() - started
        report_json(
            scenario_rows,
            RESULTS / f"{name}.json",
            {**meta, "scenario": name, "options": vars(args) | {"json": None}, "seconds": seconds},
        )
        rows += scenario_rows
        console.print(table(scenario_rows))
        console.print(f"{name}: {seconds:.0f} s")
    if len(args.scenario or SCENARIOS) > 1:
        console.print(table(rows))
    checks = targets.check(rows)  # issue 20's figures, from this run's rows only
    console.print(targets.summary_table(checks))
    for path in (RESULTS / "latest.json", args.json):
        if path is not None:
            given = vars(args) | {"json": str(args.json)}
            report_json(rows, path, {**meta, "options": given, "targets": targets.as_json(checks)})


if __name__ == "__main__":
    main()
