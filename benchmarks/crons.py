"""Crons: no cliffs in ingestion (issue #20). Every cadence and raw cron plans in under 1 ms at
the 99th percentile; raw-cron couples ingest at >= 50 % of the rate of weekly couples.

1. Planning: N (default 10,000) distinct raw crons of every field form and N/4 human cadences
   (benchmarks.cron_corpus), each in its own couple with both partners in one of a few zones,
   planned once through ShapePlanner.arms -- the call PreferenceIngest makes for every
   preferences.set -- at a clock moving 37 s per couple, with the default minimum interval.
   Refusals (too frequent) are timed too: ingestion pays for them. Schema validation
   (parse_preference) runs before the timer. Prints p50/p99/max and the ten slowest.
2. Ingestion: the scheduler service consuming a backlog (burst.drain): burst's weekly couples
   (Friday 19:00) and raw-cron couples (the same events with an everyday cron the minimum
   interval accepts -- '30 8 * * 1-5', '0 9,21 * * 0,6', '15 */6 1,15 * *' -- a different
   one per couple and per run, the rules' caches emptied before each run, so no cron is
   known beforehand), in alternating runs in the same process.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from benchmarks.burst import Drained, drain
from benchmarks.cron_corpus import ZONES, cadences, everyday_crons, raw_crons
from benchmarks.harness import Options, Row, couple_event, percentile, private_server
from benchmarks.harness import scheduler_settings as settings_for
from couples_nudge import runner
from couples_nudge.common.runtime import redis_client, settle_heap
from couples_nudge.scheduler import rules
from couples_nudge.scheduler.planning import PlanningError
from couples_nudge.scheduler.rules import CronRule, first_gap_below
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.shapes import ShapePlanner
from couples_nudge_schemas import PreferencesSet, parse_preference
from couples_nudge_schemas.preferences import cron_field_reading

DEFAULT_N = 10_000
INGEST_N = 10_000  # couples per ingestion run (at most n)
PAIRS = 3  # alternating weekly / raw-cron ingestion runs
NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
MIN_INTERVAL: timedelta = SchedulerSettings.model_fields["min_interval"].default


def couple(i: int, cadence: dict[str, Any], zone: str) -> bytes:
    """A preferences.set event: burst's couple (date night for both, together) with `cadence`,
    both partners in `zone`."""
    event = json.loads(couple_event(i, mix="burst", occurred=NOW))
    for partner in event["data"]["partners"]:
        partner["timezone"] = zone
    event["data"]["nudges"]["date_night"]["cadence"] = cadence
    return json.dumps(event, separators=(",", ":")).encode()


class Timed(NamedTuple):
    cpu_us: float  # CPU time of the call (this thread): what planning costs
    wall_us: float  # wall time: also whatever else the machine ran meanwhile
    label: str
    planned: bool  # False: refused (too frequent, or a cron the rules refuse)


def plan_times(items: list[tuple[str, dict[str, Any]]]) -> list[Timed]:
    """Each item planned once through ShapePlanner.arms, timed."""
    planner = ShapePlanner(MIN_INTERVAL)
    events = [couple(i, cadence, ZONES[i % len(ZONES)]) for i, (_, cadence) in enumerate(items)]
    settle_heap()  # as the scheduler service does before it consumes (gc.freeze)
    timed = []
    for i, ((label, _), raw) in enumerate(zip(items, events, strict=True)):
        event = parse_preference(raw)
        assert isinstance(event, PreferencesSet)
        now = NOW + timedelta(seconds=37 * i)
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        try:
            planner.arms(event.data, now)
            planned = True
        except PlanningError:
            planned = False
        wall, cpu = time.perf_counter_ns() - wall, time.thread_time_ns() - cpu
        timed.append(Timed(cpu / 1000, wall / 1000, label, planned))
    return timed


def ingest_crons(count: int) -> list[str]:
    """`count` distinct everyday crons the default minimum interval accepts."""
    accepted = []
    for expr in everyday_crons(2 * count):
        rule = CronRule(expr)
        if first_gap_below(rule, NOW, NOW + timedelta(days=366), MIN_INTERVAL) is None:
            accepted.append(expr)
    assert len(accepted) >= count, len(accepted)
    return accepted[:count]


def forget_crons() -> None:
    """Start a raw-cron run with nothing remembered of any cron or cron field, in the schema
    or the rules: every cron in the run is new, and its fields are new to the run."""
    for cache in (rules._fields, rules._next_cron_fire, cron_field_reading):
        cache.cache_clear()
    rules._KNOWN_FIELDS.clear()


async def ingest_rates(url: str, n: int) -> dict[str, list[Drained]]:
    """Events/s of the scheduler service draining n weekly, then n raw-cron couples, PAIRS times;
    each raw-cron run with crons of its own, and nothing remembered of earlier ones."""
    settings = settings_for(url)
    client = redis_client(settings)
    weekly = [couple_event(i, mix="burst", occurred=NOW) for i in range(n)]
    crons = ingest_crons(PAIRS * n)
    rates: dict[str, list[Drained]] = {"weekly": [], "cron": []}
    for run in range(PAIRS):
        mine = crons[run * n : (run + 1) * n]
        cron = [
            couple(i, {"repeat": "cron", "cron": expr}, ZONES[i % len(ZONES)])
            for i, expr in enumerate(mine)
        ]
        for name, raws in (("weekly", weekly), ("cron", cron)):
            if name == "cron":
                forget_crons()
            rates[name].append(await drain(settings, client, raws))
            await client.flushdb()
    await client.aclose()
    return rates


def _summary(name: str, timed: list[Timed]) -> str:
    cpu, wall = [t.cpu_us for t in timed], [t.wall_us for t in timed]
    return (
        f"{name}: {len(timed)} planned; CPU p50 {percentile(cpu, 50):.0f} us, "
        f"p99 {percentile(cpu, 99):.0f} us, max {max(cpu):.0f} us; "
        f"wall p50 {percentile(wall, 50):.0f} us, p99 {percentile(wall, 99):.0f} us, "
        f"max {max(wall):.0f} us"
    )


def run(options: Options) -> list[Row]:
    n = options.n or DEFAULT_N
    crons = raw_crons(n)
    timed_crons = plan_times([(expr, {"repeat": "cron", "cron": expr}) for expr in crons])
    timed_cadences = plan_times([(json.dumps(c), c) for c in cadences(max(1, n // 4))])
    accepted = [t.label for t in timed_crons if t.planned]
    print(_summary(f"raw crons ({len(accepted)} accepted, the rest refused)", timed_crons))
    print(_summary("cadences", timed_cadences))
    print("ten slowest (CPU):")
    for t in sorted(timed_crons + timed_cadences, reverse=True)[:10]:
        verdict = "planned" if t.planned else "refused"
        print(f"  {t.cpu_us:6.0f} us CPU {t.wall_us:7.0f} us wall  {verdict}  {t.label}")

    with private_server() as url:
        rates = runner.run(ingest_rates(url, min(INGEST_N, n)))
    weekly = statistics.median(d.rate for d in rates["weekly"])
    cron = statistics.median(d.rate for d in rates["cron"])
    for name in ("weekly", "cron"):
        runs = ", ".join(f"{d.rate:,.0f}/s ({d.cpu_us:.0f} us CPU/event)" for d in rates[name])
        print(f"ingestion, {name}: {runs}")
    cron_cpu = [t.cpu_us for t in timed_crons]
    cadence_cpu = [t.cpu_us for t in timed_cadences]
    slowest = max(timed_crons)
    wall_note = f"wall {percentile([t.wall_us for t in timed_crons], 99) / 1000:.2f}"
    return [
        Row("crons", "ours", "raw cron plan, CPU p50", percentile(cron_cpu, 50) / 1000, "ms"),
        Row(
            "crons",
            "ours",
            "raw cron plan, CPU p99",
            percentile(cron_cpu, 99) / 1000,
            "ms",
            target=1.0,
            goal="min",
            note=f"{len(crons)} distinct, {len(accepted)} planned (ShapePlanner.arms), {wall_note}",
        ),
        Row(
            "crons",
            "ours",
            "raw cron plan, CPU max",
            slowest.cpu_us / 1000,
            "ms",
            note=slowest.label,
        ),
        Row(
            "crons",
            "ours",
            "cadence plan, CPU p99",
            percentile(cadence_cpu, 99) / 1000,
            "ms",
            target=1.0,
            goal="min",
            note=f"{len(cadence_cpu)} weekly/monthly/times-per-week, max {max(cadence_cpu):.0f} us",
        ),
        Row("crons", "ours", "ingest, weekly couples", weekly, "events/s", note="median of runs"),
        Row("crons", "ours", "ingest, raw-cron couples", cron, "events/s", note="median of runs"),
        Row(
            "crons",
            "ours",
            "raw-cron / weekly ingest rate",
            cron / weekly,
            "ratio",
            target=0.5,
            note=f"medians of {PAIRS} alternating pairs of {min(INGEST_N, n)} couples",
        ),
    ]
