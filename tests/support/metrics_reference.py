"""services/common/metrics.py as it was before h/notify13 (main 89b05a0), verbatim but this
docstring: the oracle of tests/property/test_metrics_tally.py, whose /metrics text the
tallied updates must give exactly (each update made at once, through the value holders)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from couples_nudge.common.build_info import build_info
from couples_nudge.common.keys import Keys
from couples_nudge_schemas import Channel, NudgeKind, OutcomeEvent

__all__ = ["LATENCY_BUCKETS", "Metrics"]

# From half a second to a day: lateness is normally sub-second, retries push delivery to hours.
LATENCY_BUCKETS: Final = (
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
    43200.0, 86400.0,
)  # fmt: skip

_Labelled = TypeVar("_Labelled", Counter, Histogram)

_SUFFIXES: Final = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


@dataclass(frozen=True, slots=True)
class _SentSeries:
    """What one run of sent outcomes of a kind and channel updates (module docstring): the
    children of `nudge_nudges_sent` and `nudge_delivery_latency_seconds` for those labels,
    by their value holders."""

    sent: Callable[[float], None]  # the counter child's value's `inc`
    latency_sum: Callable[[float], None]  # the histogram child's `_sum.inc`
    buckets: list[Any]  # its bucket values, one per upper bound (not cumulative)
    bounds: list[float]  # its upper bounds, ascending, +Inf last

    @classmethod
    def of(cls, sent: Counter, latency: Histogram) -> _SentSeries:
        return cls(sent._value.inc, latency._sum.inc, latency._buckets, latency._upper_bounds)


class Metrics:
    def __init__(self, service: str, keys: Keys) -> None:
        self.service = service
        self.keys = keys
        self.registry = CollectorRegistry()
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}  # see the module docstring
        # The notifier's per-nudge updates, kept (module docstring): a stream's consumed
        # counter value's `inc`; a kind and channel's sent series.
        self._consumed: dict[str, Callable[[float], None]] = {}
        self._sent_series: dict[tuple[str, str], _SentSeries] = {}
        self._prefix = f"{keys.prefix}:"
        r = self.registry
        # --- the process: process_* (Linux /proc; absent elsewhere), python_info, build -------
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        self.build_info = Gauge(
            "nudge_build_info",
            "Always 1; the labels say what this process runs: the service's version, Python, "
            "redis-py, FastStream and the tz database (tzdata).",
            ["version", "python", "redis_py", "faststream", "tzdata"],
            registry=r,
        )
        self.build_info.labels(**build_info()._asdict()).set(1)
        # --- what happens (counters, histograms) -------------------------------------------
        self.events_consumed = Counter(
            "nudge_events_consumed", "Stream entries read by a consumer.", ["stream"], registry=r
        )
        self.events_rejected = Counter(
            "nudge_events_rejected",
            "Entries refused as invalid and copied to the rejected stream.",
            ["stream"],
            registry=r,
        )
        self.due_emitted = Counter(
            "nudge_due_emitted",
            "NudgeDue events published by the timer loop.",
            ["kind"],
            registry=r,
        )
        self.sent = Counter(
            "nudge_nudges_sent",
            "Nudges sent, per kind and channel.",
            ["kind", "channel"],
            registry=r,
        )
        self.suppressed = Counter(
            "nudge_nudges_suppressed",
            "Nudges not sent on purpose (paused, unsubscribed, missed, quiet_hours, ...).",
            ["kind", "reason"],
            registry=r,
        )
        self.failed = Counter(
            "nudge_nudges_failed",
            "Nudges that failed for good, per channel; failure is permanent or transient "
            "(retries exhausted).",
            ["channel", "failure"],
            registry=r,
        )
        self.state_lost = Counter(
            "nudge_state_lost",
            "Times this process found that Redis had lost the services' state (every process "
            "that notices a loss counts it once).",
            registry=r,
        )
        self.retries_scheduled = Counter(
            "nudge_retries_scheduled",
            "Sends scheduled for another attempt after a transient failure.",
            ["channel"],
            registry=r,
        )
        self.webhook_requests = Counter(
            "nudge_webhook_requests",
            "Relay webhook requests (bounces, complaints) by source and HTTP status; reason is a "
            "fixed code: accepted, bad_signature, stale, replayed, no_credentials, ...",
            ["source", "status", "reason"],
            registry=r,
        )
        self.actions = Counter(
            "nudge_actions",
            "Answers partners gave through action links and the manage page, published once "
            "each (the same link followed again is not counted).",
            ["kind", "action"],
            registry=r,
        )
        self.cadence_adjustments = Counter(
            "nudge_cadence_adjustments",
            "Listening-cadence changes of a partner's rhythm of a kind.",
            ["kind", "direction"],
            registry=r,
        )
        self.delivery_reports = Counter(
            "nudge_delivery_reports",
            "Bounces and complaints relays reported, by source and what was done: hard, soft, "
            "complaint (published), unmatched (names no nudge of ours), duplicate.",
            ["source", "report"],
            registry=r,
        )
        self.schedule_failures = Counter(
            "nudge_schedule_failures",
            "Schedules the timer loop could not step (a record it cannot read or plan, such as "
            "a rule an upgrade refuses): logged as schedule_failed, tried again an hour later.",
            registry=r,
        )
        self.firing_lateness = Histogram(
            "nudge_firing_lateness_seconds",
            "From an occurrence's scheduled instant to its NudgeDue being published.",
            ["kind"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.delivery_latency = Histogram(
            "nudge_delivery_latency_seconds",
            "From an occurrence's scheduled instant to the nudge being sent.",
            ["kind", "channel"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # --- how things stand in Redis (gauges, set by the refresher) ------------------------
        self.stream_length = Gauge(
            "nudge_stream_length", "Entries in a stream.", ["stream"], registry=r
        )
        self.group_consumers = Gauge(
            "nudge_stream_group_consumers",
            "Consumers known to a consumer group.",
            ["stream", "group"],
            registry=r,
        )
        self.group_pending = Gauge(
            "nudge_stream_group_pending",
            "Entries delivered to a group and not yet acknowledged.",
            ["stream", "group"],
            registry=r,
        )
        self.group_lag = Gauge(
            "nudge_stream_group_lag",
            "Entries not yet delivered to a group (absent when the server cannot tell).",
            ["stream", "group"],
            registry=r,
        )
        self.oldest_pending_age = Gauge(
            "nudge_stream_group_oldest_pending_age_seconds",
            "Age of the oldest unacknowledged entry of a group (0 when none is pending).",
            ["stream", "group"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "nudge_dead_letters", "Entries in the dead-letter stream.", registry=r
        )
        self.timers = Gauge("nudge_timers", "Armed timers (schedules), all shards.", registry=r)
        self.timers_due = Gauge(
            "nudge_timers_due", "Timers whose fire time has passed, all shards.", registry=r
        )
        self.timers_overdue = Gauge(
            "nudge_timers_overdue",
            "Timers more than a minute past their fire time, all shards.",
            registry=r,
        )
        self.status_refreshed = Gauge(
            "nudge_status_refresh_timestamp_seconds",
            "When the Redis gauges were last refreshed (Unix time).",
            registry=r,
        )
        self.status_refresh_errors = Counter(
            "nudge_status_refresh_errors", "Failed refreshes of the Redis gauges.", registry=r
        )
        self.timer_loop_pass = Gauge(
            "nudge_timer_loop_last_pass_timestamp_seconds",
            "When the scheduler's timer loop last completed a pass (Unix time).",
            registry=r,
        )

    # --- naming -----------------------------------------------------------------------------
    def stream_label(self, stream: str) -> str:
        """`nudges:due:{s00}` -> `due:{s00}`: labels do not depend on the key prefix."""
        return stream.removeprefix(self._prefix)

    def _labelled(self, metric: _Labelled, *values: str) -> _Labelled:
        """`metric.labels(*values)`, kept (counters and histograms only: module docstring)."""
        key = (metric, values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # --- events -----------------------------------------------------------------------------
    def observe_consumed(self, stream: str, count: int = 1) -> None:
        inc = self._consumed.get(stream)
        if inc is None or count < 0:  # a stream's first count; what Counter.inc refuses
            child = self._labelled(self.events_consumed, self.stream_label(stream))
            child.inc(count)
            self._consumed[stream] = child._value.inc
            return
        inc(count)  # Counter.inc's own step, its checks passed (module docstring)

    def observe_rejected(self, stream: str) -> None:
        self.events_rejected.labels(self.stream_label(stream)).inc()

    def observe_due(self, kind: NudgeKind, lateness: timedelta) -> None:
        self.due_emitted.labels(kind).inc()
        self.firing_lateness.labels(kind).observe(max(0.0, lateness.total_seconds()))

    def observe_dues(self, fired: Mapping[tuple[NudgeKind, timedelta], int]) -> None:
        """Many NudgeDue at once: `fired[(kind, lateness)]` published with that lateness.

        The same counts as `observe_due` once per NudgeDue (every one is counted), at the cost
        of one update per distinct (kind, lateness): in a burst a whole batch shares one.
        """
        per_kind: dict[NudgeKind, int] = {}
        for (kind, lateness), count in fired.items():
            per_kind[kind] = per_kind.get(kind, 0) + count
            _observe_many(
                self.firing_lateness.labels(kind), max(0.0, lateness.total_seconds()), count
            )
        for kind, count in per_kind.items():
            self.due_emitted.labels(kind).inc(count)

    def observe_outcomes(self, outcomes: Iterable[OutcomeEvent]) -> None:
        """Count published outcomes; a sent one also measures scheduled -> sent latency.

        A run of sent outcomes of one kind and channel, scheduled and sent at the same instants
        (a nudge's partners: one `now` per delivery), is counted in one update of each metric
        with its count: what exposition shows is the same as one update per outcome
        (`_observe_many`; tests/unit/test_metrics.py)."""
        run: tuple[NudgeKind, Channel, datetime, datetime] | None = None
        count = 0
        for outcome in outcomes:
            # Fields from the models' __dict__ (exactly their fields): a pydantic attribute
            # read goes through the model's __getattr__ hook, ~3x a dict read.
            o = outcome.__dict__
            d = o["data"].__dict__
            if o["type"] == "nudge.sent.v1":
                about = (d["kind"], d["channel"], d["scheduled_at"], o["occurred_at"])
                if about == run:
                    count += 1
                    continue
                if run is not None:
                    self._observe_sent(*run, count)
                run, count = about, 1
            elif o["type"] == "nudge.suppressed.v1":
                self._labelled(self.suppressed, d["kind"], d["reason"]).inc()
            else:
                failure = "permanent" if d["permanent"] else "transient"
                self._labelled(self.failed, d["channel"], failure).inc()
        if run is not None:
            self._observe_sent(*run, count)

    def _observe_sent(
        self,
        kind: NudgeKind,
        channel: Channel,
        scheduled_at: datetime,
        sent_at: datetime,
        count: int,
    ) -> None:
        """`count` sends of one kind and channel scheduled and sent at these instants: what
        `inc(count)` of the sent counter and `_observe_many` of the latency give, through
        the kept `_SentSeries` (module docstring)."""
        series = self._sent_series.get((kind, channel))
        if series is None:
            series = self._sent_series[(kind, channel)] = _SentSeries.of(
                self._labelled(self.sent, kind, channel),
                self._labelled(self.delivery_latency, kind, channel),
            )
        series.sent(count)
        seconds = max(0.0, (sent_at - scheduled_at).total_seconds())
        _add_observations(series.bounds, series.buckets, series.latency_sum, seconds, count)

    def observe_delivery(
        self, kind: NudgeKind, channel: Channel, scheduled_at: datetime, sent_at: datetime
    ) -> None:
        seconds = (sent_at - scheduled_at).total_seconds()
        self._labelled(self.delivery_latency, kind, channel).observe(max(0.0, seconds))

    def observe_webhook(self, source: str, status: int, reason: str) -> None:
        self.webhook_requests.labels(source, str(status), reason).inc()

    def observe_report(self, source: str, report: str) -> None:
        self.delivery_reports.labels(source, report).inc()

    def observe_action(self, kind: NudgeKind, action: str) -> None:
        self.actions.labels(kind=kind, action=action).inc()

    def observe_cadence(self, kind: NudgeKind, direction: str) -> None:
        self.cadence_adjustments.labels(kind=kind, direction=direction).inc()

    def observe_state_lost(self) -> None:
        self.state_lost.inc()

    def observe_schedule_failure(self) -> None:
        self.schedule_failures.inc()

    def observe_retry(self, channel: Channel) -> None:
        self.retries_scheduled.labels(channel).inc()

    def observe_timer_pass(self) -> None:
        """The timer loop completed a pass (wall-clock time: alerts compare it with time())."""
        self.timer_loop_pass.set_to_current_time()

    # --- exposition -------------------------------------------------------------------------
    def render(self) -> bytes:
        return generate_latest(self.registry)

    def routes(self) -> list[BaseRoute]:
        async def metrics(_: Request) -> Response:
            return Response(self.render(), media_type=CONTENT_TYPE_LATEST)

        return [Route("/metrics", metrics)]

    def sample_names(self) -> set[str]:
        """Every series name this registry can expose (e.g. `nudge_nudges_sent_total`)."""
        names: set[str] = set()
        for family in self.registry.collect():
            kind: Literal["counter", "histogram", "gauge", "info"] | str = family.type
            names.update(family.name + suffix for suffix in _SUFFIXES.get(kind, ("",)))
        return names


def _observe_many(histogram: Histogram, amount: float, count: int) -> None:
    """`histogram.observe(amount)` `count` times, in one step (prometheus_client has no such
    call). Uses the histogram's value holders; tests/unit/test_metrics.py pins that it
    exposes exactly what repeated `observe` does."""
    if count == 1:
        histogram.observe(amount)
        return
    _add_observations(
        histogram._upper_bounds, histogram._buckets, histogram._sum.inc, amount, count
    )


def _add_observations(
    bounds: list[float],
    buckets: list[Any],
    add_sum: Callable[[float], None],
    amount: float,
    count: int,
) -> None:
    """`count` observations of `amount` into a histogram child's value holders: its upper
    bounds (ascending, +Inf last), its bucket values (not cumulative) and its sum's `inc`."""
    index = bisect_left(bounds, amount)  # the first bucket with amount <= bound
    add_sum(amount * count)
    if index < len(buckets):
        buckets[index].inc(count)
