"""Issue 20's targets: one summary table of every figure, its target and whether it is met.

`python -m benchmarks` prints it at the end of the run from the rows the scenarios returned in
that run (so the ratios to the peers are of one run); `python -m benchmarks.targets` prints
it from the results files of the last runs (benchmarks/results/<scenario>.json), with the
time each scenario was measured. A figure whose scenario did not run, or whose key no
scenario writes yet, prints "not measured".

Where each figure is read (scenario / system / metric of a Row; "key": a key of a Row's
`extra`, looked up in every row of the scenario, the first found wins):

- burst NudgeDue/s, p99 lateness, all emitted within: burst / "ours, 1 process" /
  "NudgeDue emitted", "p99 lateness", "all emitted within".
- Redis us per fire: burst / "ours, 1 process" / "Redis CPU per NudgeDue" (INFO cpu; else
  the key `redis_us_per_fire`, commandstats).
- its floor and the ratio: burst / "bare XADD + ZADD" / "Redis CPU per fire (the floor)" and
  burst / "ours, 1 process" / "Redis CPU per NudgeDue / floor" (benchmarks/floor.py; else the
  keys `redis_us_per_fire` / `redis_us_per_fire_floor`).
- ratios to the peers: burst / "ours, 1 process" / "NudgeDue emitted" over burst / <peer> /
  "fires" (peers named as in PEERS).
- two schedulers vs one: burst / "ours" / "2 processes / 1 process" (fires/s), and
  "2 processes / 1 process, Redis CPU per NudgeDue" (the load-robust form, <= 1.05).
- realistic-mix ingestion: burst key `realistic_mix_events_per_s`, else burst / "ours" /
  "ingest, service, realistic mix".
- raw-cron / weekly ingestion: crons / "ours" / "raw-cron / weekly ingest rate".
- cron plan p99: crons / "ours" / "raw cron plan, CPU p99" and "cadence plan, CPU p99".
- notifier messages/s per process: notifier / "ours, counting sink, 1 process" /
  "messages end to end".
- ours over the code issue 20 started from, in the same run (benchmarks/reference.py):
  reference / "ours / issue 20's start (<commit>)" / "ingest, service, realistic mix" and
  "notifier messages end to end, 1 process", "burst of 100,000: fires/s (n / all emitted
  within)", and "<commit> / ours" / "burst of 100,000: p99 lateness" (lower is better); the
  target is the row's own (the issue's absolute target over the issue's own measured figure).
  The same comparison in instructions (benchmarks/callgrind_reference.py): "<commit> / ours" /
  "instructions a realistic event" and "instructions a notifier message"; reported only.
- cluster efficiency (1/2/3 schedulers): Redis CPU per fire on one server over the cluster's
  (summed over the primaries), with as many schedulers and, by default, a replica per primary
  on both (the scenario's `--replicas`): `redis_cpu_s` / `fired` of the cluster /
  "single|cluster, P scheduler(s)" / "NudgeDue emitted" rows; the lowest of three.
- notifier CPU, cluster / single: cluster / "cluster, P notifier(s)" over "single, P
  notifier(s)", "  CPU per nudge: notifiers / Redis"; the highest of the three.

The targets are issue 20's (FIGURES); where a figure has none there, the scenario row's own
`target` is shown (the burst's 25,000 fires/s, 2 s p99, 4 s for all).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from rich.table import Table

from benchmarks.harness import RESULTS, Row
from benchmarks.reference import LABEL as REFERENCE

__all__ = ["PEER_RATIO_TARGETS", "Check", "check", "summary_table"]

Goal = Literal["min", "max"]

# ours (1 process) fires/s over the peer's, same run: issue 20's floors (None: reported only)
PEER_RATIO_TARGETS: dict[str, float] = {
    "APScheduler 3.11": 100.0,
    "Celery beat + RedBeat": 120.0,
}
PEERS = ("APScheduler 3.11", "Celery beat + RedBeat", "arq 0.28", "BullMQ 6")
PROCESSES = (1, 2, 3)


@dataclass(slots=True, frozen=True)
class Measured:
    value: float
    target: float | None = None  # the scenario row's own target, if it has one
    note: str = ""


@dataclass(slots=True, frozen=True)
class Figure:
    """One line of the summary: how to find the figure in a run's rows, and its target."""

    name: str
    unit: str
    target: float | None  # issue 20's; None: the scenario row's own, if any
    goal: Goal
    find: Callable[[Rows], Measured | None]
    strict: bool = False  # "<" rather than "<=" (">" rather than ">=")


@dataclass(slots=True, frozen=True)
class Check:
    """A figure as measured in one run: its value (None: not measured) and whether it met."""

    figure: str
    unit: str
    target: float | None
    goal: Goal
    strict: bool
    value: float | None
    note: str

    @property
    def met(self) -> bool | None:
        if self.value is None or self.target is None:
            return None
        if self.goal == "max":
            return self.value > self.target if self.strict else self.value >= self.target
        return self.value < self.target if self.strict else self.value <= self.target


class Rows:
    """A run's rows, looked up by (scenario, system, metric) and by `extra` key."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self.rows = list(rows)
        self._by_name = {(r.scenario, r.system, r.metric): r for r in self.rows}

    def row(self, scenario: str, system: str, metric: str) -> Row | None:
        return self._by_name.get((scenario, system, metric))

    def measured(self, scenario: str, system: str, metric: str, note: str = "") -> Measured | None:
        row = self.row(scenario, system, metric)
        return None if row is None else Measured(row.value, row.target, note or row.note)

    def key(self, scenario: str, key: str) -> float | None:
        for row in self.rows:
            if row.scenario == scenario and isinstance(row.extra.get(key), int | float):
                return float(row.extra[key])
        return None


def _ratio(numerator: float | None, denominator: float | None, note: str = "") -> Measured | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return Measured(numerator / denominator, note=note)


def _value(measured: Measured | None) -> float | None:
    return None if measured is None else measured.value


OURS = ("burst", "ours, 1 process")


def _ours(rows: Rows, metric: str) -> Measured | None:
    return rows.measured(*OURS, metric)


def _vs_peer(peer: str) -> Callable[[Rows], Measured | None]:
    def find(rows: Rows) -> Measured | None:
        theirs = rows.row("burst", peer, "fires")
        if theirs is None:
            return None
        return _ratio(
            _value(_ours(rows, "NudgeDue emitted")),
            theirs.value,
            f"{peer}: {theirs.value:,.0f} fires/s ({theirs.note})",
        )

    return find


FLOOR = ("burst", "bare XADD + ZADD", "Redis CPU per fire (the floor)")


def _floor_ratio(rows: Rows) -> Measured | None:
    found = _ours(rows, "Redis CPU per NudgeDue / floor")
    if found is not None:
        return found
    us, floor = rows.key("burst", "redis_us_per_fire"), rows.key("burst", "redis_us_per_fire_floor")
    return _ratio(us, floor, "" if us is None or floor is None else f"{us:.1f} / {floor:.1f} us")


def _floor(rows: Rows) -> Measured | None:
    found = rows.measured(*FLOOR)
    if found is not None:
        return found
    floor = rows.key("burst", "redis_us_per_fire_floor")
    return None if floor is None else Measured(floor)


def _us_per_fire(rows: Rows) -> Measured | None:
    found = _ours(rows, "Redis CPU per NudgeDue")
    if found is not None:
        return found
    us = rows.key("burst", "redis_us_per_fire")
    return None if us is None else Measured(us, note="commandstats evalsha usec / fired")


def _realistic(rows: Rows) -> Measured | None:
    rate = rows.key("burst", "realistic_mix_events_per_s")
    if rate is not None:
        return Measured(rate)
    return rows.measured("burst", "ours", "ingest, service, realistic mix")


def _cluster_efficiency(rows: Rows) -> Measured | None:
    """Redis CPU per fire on one server over the cluster's (summed over its primaries), with
    as many schedulers: issue 20's definition; the lowest of 1/2/3 schedulers."""
    ratios: list[float] = []
    for p in PROCESSES:
        single = rows.row("cluster", f"single, {p} scheduler(s)", "NudgeDue emitted")
        cluster = rows.row("cluster", f"cluster, {p} scheduler(s)", "NudgeDue emitted")
        if single is None or cluster is None:
            return None
        try:
            one = float(single.extra["redis_cpu_s"]) / float(single.extra["fired"])
            many = float(cluster.extra["redis_cpu_s"]) / float(cluster.extra["fired"])
        except (KeyError, TypeError, ZeroDivisionError):
            return None
        if many <= 0:
            return None
        ratios.append(100.0 * one / many)
    note = "Redis CPU per fire, one server / cluster, 1/2/3 schedulers: " + " / ".join(
        f"{r:.0f} %" for r in ratios
    )
    return Measured(min(ratios), note=note)


def _cluster_over_single(
    role: str, metric: str, pick: Callable[[Sequence[float]], float], scale: float = 1.0
) -> Callable[[Rows], Measured | None]:
    def find(rows: Rows) -> Measured | None:
        ratios: list[float] = []
        for p in PROCESSES:
            single = rows.row("cluster", f"single, {p} {role}(s)", metric)
            cluster = rows.row("cluster", f"cluster, {p} {role}(s)", metric)
            if single is None or cluster is None or single.value <= 0:
                return None
            ratios.append(scale * cluster.value / single.value)
        note = f"1/2/3 {role}s: " + " / ".join(f"{r:.2f}" for r in ratios)
        return Measured(pick(ratios), note=note)

    return find


FIGURES: tuple[Figure, ...] = (
    Figure("burst: NudgeDue/s, 1 scheduler", "fires/s", None, "max",
           lambda rows: _ours(rows, "NudgeDue emitted")),
    # Issue 20's own bounds, tighter than the rows' (issue 7's 2 s and 4 s).
    Figure("burst: p99 lateness", "s", 0.8, "min", lambda rows: _ours(rows, "p99 lateness")),
    Figure("burst: all emitted within", "s", 1.0, "min",
           lambda rows: _ours(rows, "all emitted within")),
    Figure(f"burst: fires/s, ours / {REFERENCE}", "x", None, "max",
           lambda rows: rows.measured(
               "reference", f"ours / {REFERENCE}",
               "burst of 100,000: fires/s (n / all emitted within)")),
    Figure(f"burst: p99 lateness, {REFERENCE} / ours", "x", None, "max",
           lambda rows: rows.measured(
               "reference", f"{REFERENCE} / ours", "burst of 100,000: p99 lateness")),
    Figure("burst: Redis us per fire", "us", None, "min", _us_per_fire),
    Figure("burst: Redis us per fire, floor", "us", None, "min", _floor),
    Figure("burst: Redis us per fire / floor", "x", 3.0, "min", _floor_ratio),
    Figure("burst: at the instant, Redis us per fire / floor", "x", None, "min",
           lambda rows: _ours(rows, "Redis CPU per NudgeDue, first to last fire / floor")),
    Figure("burst: all fires at the floor, Redis alone", "s", None, "min",
           lambda rows: rows.measured("burst", "bare XADD + ZADD",
                                      "the burst at the floor, Redis alone")),
    *(
        Figure(f"burst: ours / {peer}, fires/s", "x", PEER_RATIO_TARGETS.get(peer), "max",
               _vs_peer(peer))
        for peer in PEERS
    ),
    Figure("burst: 2 schedulers / 1", "x", 1.0, "max",
           lambda rows: rows.measured("burst", "ours", "2 processes / 1 process")),
    Figure("burst: 2 schedulers / 1, Redis CPU per fire", "x", 1.05, "min",
           lambda rows: rows.measured(
               "burst", "ours", "2 processes / 1 process, Redis CPU per NudgeDue")),
    Figure("ingestion: realistic mix, service", "events/s", 12_000, "max", _realistic),
    Figure(f"ingestion: realistic mix, ours / {REFERENCE}", "x", None, "max",
           lambda rows: rows.measured(
               "reference", f"ours / {REFERENCE}", "ingest, service, realistic mix")),
    Figure(f"ingestion: instructions an event, {REFERENCE} / ours", "x", None, "max",
           lambda rows: rows.measured(
               "reference", f"{REFERENCE} / ours", "instructions a realistic event")),
    Figure("ingestion: raw-cron / weekly", "ratio", 0.5, "max",
           lambda rows: rows.measured("crons", "ours", "raw-cron / weekly ingest rate")),
    Figure("cron plan p99, raw crons (CPU)", "ms", 1.0, "min",
           lambda rows: rows.measured("crons", "ours", "raw cron plan, CPU p99"), strict=True),
    Figure("cron plan p99, cadences (CPU)", "ms", 1.0, "min",
           lambda rows: rows.measured("crons", "ours", "cadence plan, CPU p99"), strict=True),
    Figure("notifier: messages/s, 1 process", "messages/s", 10_000, "max",
           lambda rows: rows.measured(
               "notifier", "ours, counting sink, 1 process", "messages end to end")),
    Figure(f"notifier: messages/s, ours / {REFERENCE}", "x", None, "max",
           lambda rows: rows.measured(
               "reference", f"ours / {REFERENCE}", "notifier messages end to end, 1 process")),
    Figure(f"notifier: instructions a message, {REFERENCE} / ours", "x", None, "max",
           lambda rows: rows.measured(
               "reference", f"{REFERENCE} / ours", "instructions a notifier message")),
    Figure("notifier: messages/s, 1 process, signed links", "messages/s", None, "max",
           lambda rows: rows.measured(
               "notifier", "ours, counting sink, 1 process, signed links",
               "messages end to end")),
    # The "bounded memory while draining 100,000": `notifier --n 100000` drains that
    # backlog (docs/performance.md); make bench's default backlog reports the same growth.
    Figure("notifier: peak RSS growth while draining, 1 process", "MiB", None, "min",
           lambda rows: rows.measured(
               "notifier", "ours, counting sink, 1 process", "peak RSS growth while draining")),
    Figure("cluster efficiency, 1/2/3 schedulers (lowest)", "%", 90.0, "max",
           _cluster_efficiency),
    Figure("notifier CPU per nudge, cluster / single (highest)", "x", 1.2, "min",
           _cluster_over_single("notifier", "  CPU per nudge: notifiers / Redis", max)),
)  # fmt: skip


def check(rows: Iterable[Row]) -> list[Check]:
    """Every figure of FIGURES as found in `rows` (one run's)."""
    found = Rows(rows)
    out: list[Check] = []
    for figure in FIGURES:
        measured = figure.find(found)
        target = figure.target
        if target is None and measured is not None:
            target = measured.target
        out.append(
            Check(
                figure=figure.name,
                unit=figure.unit,
                target=target,
                goal=figure.goal,
                strict=figure.strict,
                value=None if measured is None else measured.value,
                note="" if measured is None else measured.note,
            )
        )
    return out


def _fmt(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:,.2f}"
    return f"{value:.3f}"


def summary_table(checks: Sequence[Check], title: str = "issue 20 targets") -> Table:
    out = Table(title=title)
    for name in ("figure", "target", "measured", "unit", "met", "note"):
        out.add_column(name, justify="right" if name in ("target", "measured") else "left")
    for c in checks:
        sign = ("<" if c.goal == "min" else ">") + ("" if c.strict else "=")
        target = "" if c.target is None else f"{sign} {_fmt(c.target)}"
        value = "[dim]not measured[/]" if c.value is None else _fmt(c.value)
        met = {True: "[green]yes[/]", False: "[red]no[/]", None: ""}[c.met]
        out.add_row(c.figure, target, value, c.unit, met, c.note[:90])
    return out


def as_json(checks: Sequence[Check]) -> list[dict[str, Any]]:
    return [{f.name: getattr(c, f.name) for f in fields(c)} | {"met": c.met} for c in checks]


def load_rows(paths: Iterable[Path]) -> tuple[list[Row], list[str]]:
    """Rows from results files (benchmarks/results/*.json), and one line per file read."""
    names = {f.name for f in fields(Row)}
    rows: list[Row] = []
    read: list[str] = []
    for path in paths:
        if not path.exists():
            continue
        payload = json.loads(path.read_text())
        rows += [Row(**{k: v for k, v in r.items() if k in names}) for r in payload["rows"]]
        read.append(f"{path.name}: started {payload.get('started', '?')}")
    return rows, read


def main() -> None:
    from rich.console import Console

    parser = argparse.ArgumentParser(prog="python -m benchmarks.targets", description=__doc__)
    parser.add_argument(
        "results",
        nargs="*",
        type=Path,
        help="results files (default: the burst, crons, notifier, cluster and reference ones)",
    )
    args = parser.parse_args()
    paths = args.results or [
        RESULTS / f"{s}.json" for s in ("burst", "crons", "notifier", "cluster", "reference")
    ]
    rows, read = load_rows(paths)
    console = Console(width=None if Console().is_terminal else 170)
    console.print(summary_table(check(rows)))
    for line in read:
        console.print(line)


if __name__ == "__main__":
    main()
