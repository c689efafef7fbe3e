"""Specification of couples_nudge.common.metrics and the gauge refresher's mapping of a snapshot."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from couples_nudge.common.keys import Keys
from couples_nudge.common.metrics import LATENCY_BUCKETS, Metrics
from couples_nudge.operator.refresher import apply_status
from couples_nudge.operator.status import GroupStatus, Status, StreamStatus, TimerStatus
from couples_nudge_schemas import NudgeKind, NudgeSent, OutcomeEvent
from tests.support.outcomes import SCHEDULED, failed, sent, suppressed


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    """The value of one exposed sample, read back from the text format (None if absent)."""
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


class TestMetrics:
    def test_every_name_is_snake_case_and_prefixed(self) -> None:
        """Names are a contract for dashboards: `nudge_` + snake_case, besides the standard
        collectors' `process_*` and `python_info` (named as every Python exporter names them)."""
        names = Metrics("scheduler", Keys()).sample_names()
        assert names
        ours = {name for name in names if not re.fullmatch(r"process_[a-z_]+|python_info", name)}
        assert all(re.fullmatch(r"nudge_[a-z0-9_]+", name) for name in ours), names
        assert "process_cpu_seconds_total" in names
        assert "python_info" in names

    def test_each_service_object_has_its_own_registry(self) -> None:
        """Two services in one process (tests, the demo) never mix their figures."""
        one, other = Metrics("scheduler", Keys()), Metrics("notifier", Keys())
        one.observe_consumed("nudges:preferences")
        assert value(one, "nudge_events_consumed_total", stream="preferences") == 1
        assert value(other, "nudge_events_consumed_total", stream="preferences") is None

    def test_consumed_counts_expose_what_the_counter_does(self) -> None:
        """`observe_consumed` keeps each stream's counter value (module docstring): the same
        samples as the public `labels().inc()`, a negative count refused as it refuses it,
        and nothing counted by the refused call (checked to fail with the kept `inc` called
        on the first count as well)."""
        mine, reference = Metrics("notifier", Keys()), Metrics("notifier", Keys())
        calls = [("nudges:due:{s00}", 1), ("nudges:due:{s01}", 3), ("nudges:due:{s00}", 1)]
        calls += [("nudges:preferences", 0), ("nudges:due:{s00}", 200), ("nudges:due:{s01}", 1)]
        for stream, count in calls:
            mine.observe_consumed(stream, count)
            reference.events_consumed.labels(reference.stream_label(stream)).inc(count)
        with pytest.raises(ValueError, match="non-negative"):
            mine.observe_consumed("nudges:due:{s00}", -1)
        mine.observe_consumed("nudges:due:{s01}")
        reference.events_consumed.labels("due:{s01}").inc()
        total = "nudge_events_consumed_total"
        for label in ("due:{s00}", "due:{s01}", "preferences"):
            assert value(mine, total, stream=label) == value(reference, total, stream=label)
        assert value(mine, total, stream="due:{s00}") == 202

    def test_stream_labels_do_not_carry_the_key_prefix(self) -> None:
        """`acme:due:{s03}` is labelled `due:{s03}`, so one dashboard fits every prefix."""
        metrics = Metrics("notifier", Keys(prefix="acme", shards=4))
        metrics.observe_rejected(metrics.keys.due(3))
        assert value(metrics, "nudge_events_rejected_total", stream="due:{s03}") == 1

    def test_outcomes_are_counted_by_kind_channel_reason_and_failure(self) -> None:
        """Sent by (kind, channel), suppressed by (kind, reason), failed by (channel, failure)."""
        metrics = Metrics("notifier", Keys())
        outcomes: list[OutcomeEvent] = [
            sent(),
            sent(),
            suppressed("paused"),
            suppressed("missed"),
            failed(permanent=True),
            failed(permanent=False),
        ]
        metrics.observe_outcomes(outcomes)
        total = "nudge_nudges_sent_total"
        assert value(metrics, total, kind="date_night", channel="email") == 2
        suppressed_total = "nudge_nudges_suppressed_total"
        assert value(metrics, suppressed_total, kind="check_in", reason="paused") == 1
        assert value(metrics, suppressed_total, kind="check_in", reason="missed") == 1
        failed_total = "nudge_nudges_failed_total"
        assert value(metrics, failed_total, channel="push", failure="permanent") == 1
        assert value(metrics, failed_total, channel="push", failure="transient") == 1

    def test_runs_of_sent_outcomes_expose_what_one_at_a_time_does(self) -> None:
        """Sent outcomes counted a run at a time (same kind, channel and instants: a nudge's
        partners) give the series one update per outcome gives, runs broken by any change."""
        minutes = [90, 90, 90, 2, 2, 90, 0, 0]
        outcomes: list[OutcomeEvent] = [sent(late=timedelta(minutes=m)) for m in minutes]
        outcomes[4:4] = [suppressed("paused")]
        two_minutes = timedelta(minutes=2)
        outcomes += [sent(channel="push", late=two_minutes), sent(late=two_minutes)]
        outcomes += [failed(permanent=True), sent(late=timedelta(seconds=1)), sent()]
        mine, reference = Metrics("notifier", Keys()), Metrics("notifier", Keys())
        mine.observe_outcomes(outcomes[:6])
        mine.observe_outcomes(outcomes[6:])
        for outcome in outcomes:  # the plain form: one update of each series per outcome
            if isinstance(outcome, NudgeSent):
                d = outcome.data
                reference.sent.labels(d.kind, d.channel).inc()
                reference.observe_delivery(d.kind, d.channel, d.scheduled_at, outcome.occurred_at)
            else:
                reference.observe_outcomes([outcome])

        def series(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            return {
                (sample.name, tuple(sorted(sample.labels.items()))): sample.value
                for family in text_string_to_metric_families(metrics.render().decode())
                for sample in family.samples
                if family.name.startswith("nudge_") and not sample.name.endswith("_created")
            }

        assert series(mine) == series(reference)
        assert value(mine, "nudge_nudges_sent_total", kind="date_night", channel="email") == 11

    def test_a_sent_outcome_measures_latency_from_the_scheduled_instant(self) -> None:
        """Delivery latency is the outcome's occurred_at minus the occurrence's scheduled_at."""
        metrics = Metrics("notifier", Keys())
        metrics.observe_outcomes([sent(late=timedelta(minutes=90))])
        labels = {"kind": "date_night", "channel": "email"}
        assert value(metrics, "nudge_delivery_latency_seconds_sum", **labels) == 5400
        assert value(metrics, "nudge_delivery_latency_seconds_bucket", le="3600.0", **labels) == 0
        assert value(metrics, "nudge_delivery_latency_seconds_bucket", le="7200.0", **labels) == 1

    def test_due_counts_the_kind_and_observes_lateness_never_below_zero(self) -> None:
        """NudgeDue per kind; a clock that reads slightly early records lateness 0, not < 0."""
        metrics = Metrics("scheduler", Keys())
        metrics.observe_due("check_in", timedelta(seconds=2))
        metrics.observe_due("check_in", timedelta(seconds=-1))
        assert value(metrics, "nudge_due_emitted_total", kind="check_in") == 2
        assert value(metrics, "nudge_firing_lateness_seconds_sum", kind="check_in") == 2

    def test_dues_in_bulk_expose_what_one_at_a_time_does(self) -> None:
        """observe_dues counts every NudgeDue: the same series as observe_due once per fire."""
        fired: dict[tuple[NudgeKind, timedelta], int] = {
            ("check_in", timedelta(seconds=-1)): 3,
            ("check_in", timedelta(0)): 2,
            ("check_in", timedelta(milliseconds=500)): 4,  # exactly a bucket bound
            ("check_in", timedelta(milliseconds=1370)): 1,
            ("date_night", timedelta(seconds=2, milliseconds=1)): 250,
            ("date_night", timedelta(days=3)): 2,  # beyond the last bound: +Inf only
        }
        bulk, single = Metrics("scheduler", Keys()), Metrics("scheduler", Keys())
        bulk.observe_dues(fired)
        for (kind, lateness), count in fired.items():
            for _ in range(count):
                single.observe_due(kind, lateness)

        def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
            return {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(metrics.render().decode())
                for s in family.samples
                if family.name in ("nudge_due_emitted", "nudge_firing_lateness_seconds")
                and not s.name.endswith("_created")
            }

        expected = samples(single)
        got = samples(bulk)
        assert got.keys() == expected.keys()
        for key, wanted in expected.items():
            assert got[key] == pytest.approx(wanted, rel=1e-12), key
        assert value(bulk, "nudge_due_emitted_total", kind="date_night") == 252
        assert value(bulk, "nudge_firing_lateness_seconds_count", kind="check_in") == 10

    def test_retries_are_counted_per_channel(self) -> None:
        """The retry counter the notifier increments when it schedules another attempt."""
        metrics = Metrics("notifier", Keys())
        metrics.observe_retry("email")
        assert value(metrics, "nudge_retries_scheduled_total", channel="email") == 1

    def test_latency_buckets_span_seconds_to_a_day(self) -> None:
        """Sub-second firing and retries that take hours both land in a bucket of their own."""
        assert LATENCY_BUCKETS[0] <= 1
        assert LATENCY_BUCKETS[-1] >= 86400
        assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)

    def test_the_metrics_route_serves_the_text_format(self) -> None:
        """/metrics is one Starlette route rendering this registry."""
        [route] = Metrics("scheduler", Keys()).routes()
        assert getattr(route, "path", None) == "/metrics"


def snapshot(lag: int | None, groups: bool = True) -> Status:
    group = GroupStatus("notifier", consumers=2, pending=3, lag=lag, oldest_pending_age_s=12.5)
    return Status(
        at=SCHEDULED,
        streams=(
            StreamStatus("nudges:due:{s00}", "due:{s00}", 7, (group,) if groups else ()),
            StreamStatus("nudges:dead", "dead", 4, ()),
        ),
        timers=(
            TimerStatus(0, total=10, due=2, overdue=1, next_fire=SCHEDULED),
            TimerStatus(1, total=5, due=1, overdue=0, next_fire=None),
        ),
        dead_letters=4,
        rejected_last_hour=0,
    )


class TestApplyStatus:
    def test_a_snapshot_sets_every_redis_gauge(self) -> None:
        """Stream length, group figures, dead letters and timer totals over all shards."""
        metrics = Metrics("notifier", Keys())
        apply_status(metrics, snapshot(lag=5), refreshed_at=1000.0)
        group = {"stream": "due:{s00}", "group": "notifier"}
        assert value(metrics, "nudge_stream_length", stream="due:{s00}") == 7
        assert value(metrics, "nudge_stream_group_consumers", **group) == 2
        assert value(metrics, "nudge_stream_group_pending", **group) == 3
        assert value(metrics, "nudge_stream_group_lag", **group) == 5
        assert value(metrics, "nudge_stream_group_oldest_pending_age_seconds", **group) == 12.5
        assert value(metrics, "nudge_dead_letters") == 4
        assert value(metrics, "nudge_timers") == 15
        assert value(metrics, "nudge_timers_due") == 3
        assert value(metrics, "nudge_timers_overdue") == 1
        assert value(metrics, "nudge_status_refresh_timestamp_seconds") == 1000

    def test_an_unknown_lag_exports_no_series_rather_than_zero(self) -> None:
        """Valkey/Redis may not know a group's lag: absent is honest, 0 would hide a backlog."""
        metrics = Metrics("notifier", Keys())
        apply_status(metrics, snapshot(lag=5), refreshed_at=1.0)
        apply_status(metrics, snapshot(lag=None), refreshed_at=2.0)
        lag = value(metrics, "nudge_stream_group_lag", stream="due:{s00}", group="notifier")
        assert lag is None
        assert value(metrics, "nudge_stream_group_pending", stream="due:{s00}", group="notifier")

    def test_series_of_a_vanished_group_are_dropped(self) -> None:
        """A destroyed consumer group stops being reported instead of freezing its last value."""
        metrics = Metrics("notifier", Keys())
        apply_status(metrics, snapshot(lag=5), refreshed_at=1.0)
        apply_status(metrics, snapshot(lag=5, groups=False), refreshed_at=2.0)
        pending = "nudge_stream_group_pending"
        assert value(metrics, pending, stream="due:{s00}", group="notifier") is None
