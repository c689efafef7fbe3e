"""benchmarks/targets.py: issue 20's summary read from a run's rows; a peer's result."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.harness import Row, report_json
from benchmarks.peers import PeerResult
from benchmarks.reference import LABEL as REFERENCE
from benchmarks.targets import Check, check, load_rows


def _by_figure(rows: list[Row]) -> dict[str, Check]:
    return {c.figure: c for c in check(rows)}


def _ours(fires_per_s: float, **extra: float) -> Row:
    return Row("burst", "ours, 1 process", "NudgeDue emitted", fires_per_s, "fires/s", 25_000,
               extra=dict(extra))  # fmt: skip


class TestNotMeasured:
    def test_a_run_without_the_scenarios_measures_nothing_and_meets_nothing(self) -> None:
        """No rows: every figure is there, without a value and without a verdict."""
        checks = check([])
        assert checks
        assert all(c.value is None and c.met is None for c in checks)

    def test_a_peer_that_did_not_run_has_no_ratio(self) -> None:
        """Our rate alone gives no ratio to a peer whose `fires` row is missing."""
        checks = _by_figure([_ours(50_000.0)])
        assert checks["burst: ours / BullMQ 6, fires/s"].value is None


class TestFigures:
    def test_the_ratio_to_a_peer_is_ours_over_theirs_held_to_issue_20s_target(self) -> None:
        """APScheduler at 500 fires/s against our 60,000: 120x, which meets >= 100x."""
        peer = Row("burst", "APScheduler 3.11", "fires", 500.0, "fires/s", note="n")
        ratio = _by_figure([_ours(60_000.0), peer])["burst: ours / APScheduler 3.11, fires/s"]
        assert ratio.value == pytest.approx(120.0)
        assert ratio.target == 100.0
        assert ratio.met is True

    def test_the_floor_and_realistic_mix_are_read_from_the_keys_other_branches_write(
        self,
    ) -> None:
        """`redis_us_per_fire(_floor)` and `realistic_mix_events_per_s` in a burst row's extra."""
        rows = [
            _ours(60_000.0, redis_us_per_fire=15.0, redis_us_per_fire_floor=6.0),
            Row("burst", "ours", "ingest, service, realistic mix", 7_000.0, "events/s",
                extra={"realistic_mix_events_per_s": 13_000.0}),
        ]  # fmt: skip
        checks = _by_figure(rows)
        floor = checks["burst: Redis us per fire / floor"]
        assert floor.value == pytest.approx(2.5)
        assert floor.met is True
        mix = checks["ingestion: realistic mix, service"]
        assert (mix.value, mix.target, mix.met) == (13_000.0, 12_000, True)

    def test_issue_20s_target_wins_over_the_scenario_rows_own(self) -> None:
        """The notifier's row holds 5,000 messages/s; issue 20 asks 10,000 of one process."""
        row = Row("notifier", "ours, counting sink, 1 process", "messages end to end", 6_000.0,
                  "messages/s", target=5_000)  # fmt: skip
        notifier = _by_figure([row])["notifier: messages/s, 1 process"]
        assert (notifier.target, notifier.met) == (10_000, False)

    def test_a_figure_without_an_issue_target_takes_the_rows(self) -> None:
        """The burst's fires/s is held to its row's 25,000."""
        assert _by_figure([_ours(30_000.0)])["burst: NudgeDue/s, 1 scheduler"].met is True

    def test_cluster_figures_take_the_worst_of_one_two_and_three_processes(self) -> None:
        """Efficiency is the lowest ratio of Redis CPU per fire, one server over the cluster's
        (issue 20's definition, not the rates); notifier CPU the highest ratio."""
        cpu_metric = "  CPU per nudge: notifiers / Redis"
        # Redis CPU seconds over 10,000 fires: one server, cluster (95 %, 85 %, 90 %)
        measured = {1: (0.190, 0.200, 1.0), 2: (0.170, 0.200, 1.3), 3: (0.180, 0.200, 1.1)}
        rows: list[Row] = []
        for p, (single, cluster, cpu) in measured.items():
            rows += [
                Row("cluster", f"single, {p} scheduler(s)", "NudgeDue emitted", 50_000.0, "/s",
                    extra={"redis_cpu_s": single, "fired": 10_000}),
                Row("cluster", f"cluster, {p} scheduler(s)", "NudgeDue emitted", 90_000.0, "/s",
                    extra={"redis_cpu_s": cluster, "fired": 10_000}),
                Row("cluster", f"single, {p} notifier(s)", cpu_metric, 1.0, "ms"),
                Row("cluster", f"cluster, {p} notifier(s)", cpu_metric, cpu, "ms"),
            ]  # fmt: skip
        checks = _by_figure(rows)
        efficiency = checks["cluster efficiency, 1/2/3 schedulers (lowest)"]
        assert efficiency.value == pytest.approx(85.0)
        assert efficiency.met is False
        ratio = checks["notifier CPU per nudge, cluster / single (highest)"]
        assert ratio.value == pytest.approx(1.3)
        assert ratio.met is False

    def test_the_floor_rows_of_the_burst_are_read(self) -> None:
        """benchmarks/floor.py's rows: the floor, ours per fire, their ratio (<= 3x)."""
        rows = [
            Row("burst", "bare XADD + ZADD", "Redis CPU per fire (the floor)", 4.5, "us"),
            Row("burst", "ours, 1 process", "Redis CPU per NudgeDue", 15.75, "us"),
            Row("burst", "ours, 1 process", "Redis CPU per NudgeDue / floor", 3.5, "x",
                target=3.0, goal="min"),
        ]  # fmt: skip
        checks = _by_figure(rows)
        assert checks["burst: Redis us per fire, floor"].value == pytest.approx(4.5)
        assert checks["burst: Redis us per fire"].value == pytest.approx(15.75)
        ratio = checks["burst: Redis us per fire / floor"]
        assert ratio.value == pytest.approx(3.5)
        assert ratio.met is False

    def test_a_strict_target_is_not_met_at_the_line(self) -> None:
        """Cron plan p99 < 1 ms: exactly 1 ms is not below it."""
        row = Row("crons", "ours", "raw cron plan, CPU p99", 1.0, "ms", target=1.0, goal="min")
        assert _by_figure([row])["cron plan p99, raw crons (CPU)"].met is False

    def test_the_same_run_ratios_to_issue_20s_start_carry_their_rows_target(self) -> None:
        """The reference scenario's ratio rows: their own target (the issue's target over its
        figure), met or not by the value."""
        system = f"ours / {REFERENCE}"
        ingest = Row("reference", system, "ingest, service, realistic mix", 2.5, "x", 2.43)
        notifier = Row(
            "reference", system, "notifier messages end to end, 1 process", 1.5, "x", 1.89
        )
        checks = _by_figure([ingest, notifier])
        found = checks[f"ingestion: realistic mix, ours / {REFERENCE}"]
        assert (found.value, found.target, found.met) == (2.5, 2.43, True)
        found = checks[f"notifier: messages/s, ours / {REFERENCE}"]
        assert (found.value, found.target, found.met) == (1.5, 1.89, False)

    def test_the_bursts_same_run_ratios_are_read_from_their_rows(self) -> None:
        """fires/s ours over theirs; p99 lateness theirs over ours (lower is better)."""
        fires = Row(
            "reference", f"ours / {REFERENCE}",
            "burst of 100,000: fires/s (n / all emitted within)", 1.5, "x", 1.69,
        )  # fmt: skip
        p99 = Row(
            "reference", f"{REFERENCE} / ours", "burst of 100,000: p99 lateness", 2.2, "x", 2.1
        )
        checks = _by_figure([fires, p99])
        found = checks[f"burst: fires/s, ours / {REFERENCE}"]
        assert (found.value, found.target, found.met) == (1.5, 1.69, False)
        found = checks[f"burst: p99 lateness, {REFERENCE} / ours"]
        assert (found.value, found.target, found.met) == (2.2, 2.1, True)

    def test_the_instruction_ratios_are_reported_not_held_to_a_target(self) -> None:
        """Theirs over ours in instructions (callgrind): read from their rows, with no target
        (the issue's targets are rates), so neither met nor missed."""
        system = f"{REFERENCE} / ours"
        event = Row("reference", system, "instructions a realistic event", 2.14, "x")
        message = Row("reference", system, "instructions a notifier message", 2.53, "x")
        checks = _by_figure([event, message])
        found = checks[f"ingestion: instructions an event, {REFERENCE} / ours"]
        assert (found.value, found.target, found.met) == (2.14, None, None)
        found = checks[f"notifier: instructions a message, {REFERENCE} / ours"]
        assert (found.value, found.target, found.met) == (2.53, None, None)
        assert checks[f"ingestion: realistic mix, ours / {REFERENCE}"].value is None


class TestResultsFiles:
    def test_rows_written_by_a_run_are_read_back_the_same(self, tmp_path: Path) -> None:
        """report_json's file (with its `met` column) loads into equal rows; missing files skip."""
        rows = [_ours(60_000.0, redis_us_per_fire=15.0)]
        report_json(rows, tmp_path / "burst.json", {"started": "then"})
        loaded, read = load_rows([tmp_path / "burst.json", tmp_path / "crons.json"])
        assert loaded == rows
        assert read == ["burst.json: started then"]


class TestPeerResult:
    def test_rate_and_percentiles_from_lateness(self) -> None:
        """Four fires, the last 2 s late: 2 fires/s; nearest-rank p50 and p99."""
        result = PeerResult.from_lateness(5, [0.5, 1.0, 1.5, 2.0], adds_per_s=10.0, bytes_per_job=1)
        assert (result.fired, result.fires_per_s, result.max_s) == (4, 2.0, 2.0)
        assert (result.p50_s, result.p99_s) == (1.0, 2.0)
        assert result.as_dict()["n"] == 5

    def test_nothing_fired_is_zero_not_an_error(self) -> None:
        """A peer that fired nothing reports 0 fires/s."""
        result = PeerResult.from_lateness(5, [], adds_per_s=10.0, bytes_per_job=1)
        assert (result.fired, result.fires_per_s) == (0, 0.0)
