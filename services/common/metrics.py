"""Every Prometheus metric of the services, in one registry per service object.

Metric names are a public contract (alert rules in deploy/, the Grafana dashboard, people's
queries): stable, snake_case, prefixed `nudge_`. Stream labels are key names without the
prefix (`preferences`, `due:{s00}`), so one dashboard serves any NUDGE_KEY_PREFIX.

Three kinds of figures:
  counters and histograms  updated where things happen, through the observe_* methods;
  gauges about Redis       (streams, groups, timers, dead letters) set by a periodic refresher
                           (services/operator/refresher.py), never computed per scrape;
  the process itself       prometheus_client's process and platform collectors (`process_*`:
                           CPU, memory, open files, start time; `python_info`), read per scrape
                           from /proc, and `nudge_build_info` (= 1, the versions as labels).

A registry per object (not prometheus_client's global one) lets tests run several services in
one process, each with its own figures.

The per-event counters and histograms keep their labelled children (`_labelled`): a child of a
counter or histogram is never removed (only the refresher's gauges are cleared), and label
values come from small closed sets (kinds, channels, reasons, streams), so what is kept stays
small; prometheus_client's `labels()` validates and locks on every call (~1-2 us, several times
a nudge).

The notifier's two updates per nudge go further (issue 20, h/notify11; callgrind loops of one
call): `observe_consumed` keeps each stream's counter value's own `inc` (8.8k -> 4.1k
instructions a call) and `observe_outcomes` a `_SentSeries` per kind and channel: the sent
counter's value, the latency histogram's sum and bucket values (28.2k -> 22.8k a nudge's two
sends). Both skip `Counter.inc`'s and `Histogram.observe`'s checks, which a labelled child
with a non-negative amount always passes (a child is observable; a negative count still goes
through `Counter.inc`, which refuses it), and no exemplar is ever given. Invariant: what
/metrics exposes is what the public calls give (tests/unit/test_metrics.py compares both
registries' samples); prometheus_client's `_value`, `_sum`, `_buckets` and `_upper_bounds`
are used as `_observe_many` already did (requirements.lock pins prometheus_client; the tests
fail if those names go).

Those two are tallied, not written at once (issue 20, h/notify13: each value holder's `inc`
is a Python call that takes a lock, ~2.2k instructions, four a nudge): after a series' first
update (which goes through the public calls, so the series and its `_created` appear when
they did), a count is added to a plain int of its own (`_consumed_tally`, `_SentTally`), and
the latency sum to a float that mirrors the histogram's (`_SentTally.total`, the same float
additions in the same order as the holder's `+=`). The tallies are written into the value
holders before anything reads them: the three metrics' `collect`, which the registry (full
or restricted), `generate_latest` and `get_sample_value` call, writes them first
(`_flushed_first`), and `observe_delivery` writes before it observes. Invariants: the
notifier runs on one event loop, /metrics is served on that loop (common/http.py), so no
update is made while the tallies are written; the children of `nudge_events_consumed`,
`nudge_nudges_sent` and `nudge_delivery_latency_seconds` are updated through these methods
only. Counts are integers, exact in a float to 2**53, so adding them later adds the same; the
sum is set to the mirror, which saw the very same additions. What /metrics exposes is what
the code before gave, byte for byte but the `_created` times (tests/property/
test_metrics_tally.py against tests/support/metrics_reference.py).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
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


@dataclass(slots=True)
class _SentTally:
    """What runs of sent outcomes of a kind and channel add (module docstring): the
    children of `nudge_nudges_sent` and `nudge_delivery_latency_seconds` for those labels,
    their value holders, and what was added since they were last written."""

    sent_inc: Callable[[float], None]  # the counter child's value's `inc`
    sum_value: Any  # the histogram child's sum holder (`_sum`)
    buckets: list[Any]  # its bucket values, one per upper bound (not cumulative)
    bounds: list[float]  # its upper bounds, ascending, +Inf last
    total: float  # the sum as its holder will hold it: every addition made here, in order
    sent: int = 0  # sends not yet counted in the counter
    counts: list[int] = field(default_factory=list)  # per bucket, not yet in its value

    @classmethod
    def of(cls, sent: Counter, latency: Histogram) -> _SentTally:
        sum_value = latency._sum
        bounds = latency._upper_bounds
        return cls(sent._value.inc, sum_value, latency._buckets, bounds, sum_value.get(),
                   0, [0] * len(bounds))  # fmt: skip

    def write(self) -> None:
        """Into the value holders, then nothing pending."""
        if self.sent:
            self.sent_inc(self.sent)
            self.sent = 0
        self.sum_value.set(self.total)
        counts = self.counts
        for index, count in enumerate(counts):
            if count:
                self.buckets[index].inc(count)
                counts[index] = 0


class Metrics:
    def __init__(self, service: str, keys: Keys) -> None:
        self.service = service
        self.keys = keys
        self.registry = CollectorRegistry()
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}  # see the module docstring
        # The notifier's per-nudge updates, tallied (module docstring): per stream, its
        # consumed counter value's `inc` and the count not yet added; a kind and channel's
        # sent tally.
        self._consumed: dict[str, Callable[[float], None]] = {}
        self._consumed_tally: dict[str, int] = {}
        self._sent_series: dict[tuple[str, str], _SentTally] = {}
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
        self.redis_refusals = Counter(
            "nudge_redis_refusals",
            "Times Redis refused or could not take a write this process then waited out before "
            "trying again (OOM, READONLY, NOREPLICAS, a lost connection...: refusals.py), by "
            "error class. Nothing is sent, nor dead-lettered, meanwhile.",
            ["error"],
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
        # The tallies written before these are read (module docstring).
        _flushed_first(self.events_consumed, self._write_consumed)
        _flushed_first(self.sent, self._write_sent)
        _flushed_first(self.delivery_latency, self._write_sent)
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
        tally = self._consumed_tally.get(stream)
        if tally is None or count < 0:  # a stream's first count; what Counter.inc refuses
            child = self._labelled(self.events_consumed, self.stream_label(stream))
            child.inc(count)
            self._consumed[stream] = child._value.inc
            self._consumed_tally[stream] = 0
            return
        # Counter.inc's own step, its checks passed, tallied (module docstring)
        self._consumed_tally[stream] = tally + count

    def _write_consumed(self) -> None:
        tallies = self._consumed_tally
        for stream, count in tallies.items():
            if count:
                self._consumed[stream](count)
                tallies[stream] = 0

    def _write_sent(self) -> None:
        for tally in self._sent_series.values():
            tally.write()

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
        `inc(count)` of the sent counter and `_observe_many` of the latency give, tallied in
        the kind and channel's `_SentTally` (module docstring)."""
        tally = self._sent_series.get((kind, channel))
        if tally is None:
            tally = self._sent_series[(kind, channel)] = _SentTally.of(
                self._labelled(self.sent, kind, channel),
                self._labelled(self.delivery_latency, kind, channel),
            )
        seconds = max(0.0, (sent_at - scheduled_at).total_seconds())
        tally.sent += count
        tally.total += seconds * count  # what `_add_observations` adds to the sum
        index = bisect_left(tally.bounds, seconds)  # the first bucket with seconds <= bound
        if index < len(tally.counts):
            tally.counts[index] += count

    def observe_delivery(
        self, kind: NudgeKind, channel: Channel, scheduled_at: datetime, sent_at: datetime
    ) -> None:
        seconds = (sent_at - scheduled_at).total_seconds()
        tally = self._sent_series.get((kind, channel))
        if tally is not None:  # its additions first, in order (module docstring)
            tally.write()
        self._labelled(self.delivery_latency, kind, channel).observe(max(0.0, seconds))
        if tally is not None:
            tally.total = tally.sum_value.get()

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

    def observe_refusal(self, error: BaseException) -> None:
        """A wait after Redis said "not now" (`refusals.not_now`): counted by error class."""
        self.redis_refusals.labels(type(error).__name__).inc()

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


def _flushed_first(metric: Counter | Histogram, write: Callable[[], None]) -> None:
    """`metric.collect()` writes the tallies first (module docstring): the registry, full or
    restricted, collects each metric through its `collect`, read from the instance."""
    collect = metric.collect

    def collect_written() -> Iterable[Any]:
        write()
        return collect()

    metric.collect = collect_written  # type: ignore[method-assign]


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
