"""The notifier's tallied metrics (services/common/metrics.py, h/notify13) expose what the code
before them did (tests/support/metrics_reference.py, main 89b05a0, each update written at
once): the same /metrics text for the nudge_* families, byte for byte but the `_created`
times, read at any point of any sequence of updates.

Updates: consumed counts (0, 1, many, negative: refused by both), runs of sent outcomes of a
few kinds and channels with latencies to the microsecond (so that a float sum added in
another order or grouping would differ in its last bits), suppressed and failed outcomes,
`observe_delivery` on the same series; reads through `render`, the registry's
`get_sample_value` and a restricted registry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import generate_latest

from couples_nudge.common.keys import Keys
from couples_nudge.common.metrics import Metrics
from couples_nudge_schemas import Channel, NudgeKind, OutcomeEvent
from tests.support.metrics_reference import Metrics as ReferenceMetrics
from tests.support.outcomes import SCHEDULED, failed, sent, suppressed

_KINDS: st.SearchStrategy[NudgeKind] = st.sampled_from(["date_night", "check_in"])
_CHANNELS: st.SearchStrategy[Channel] = st.sampled_from(["email", "push"])
_STREAMS = st.sampled_from(["nudges:due:{s00}", "nudges:due:{s01}", "nudges:preferences"])
# Up to two days late, to the microsecond; a few exact values and a clock read early.
_LATENESS = st.one_of(
    st.integers(min_value=-5_000_000, max_value=2 * 86_400_000_000),
    st.sampled_from([0, 500_000, 1_000_000, 90_000_000, 86_400_000_000]),
    # tenths: their float sums depend on the order of the additions (0.1 + 0.2 + 0.3)
    st.sampled_from([100_000, 200_000, 300_000, 700_000]),
).map(lambda us: timedelta(microseconds=us))


# A run: `count` sent outcomes of one kind, channel and lateness (a nudge's partners).
_RUN = st.tuples(_KINDS, _CHANNELS, _LATENESS, st.integers(1, 3)).map(
    lambda r: [sent(r[0], r[1], r[2])] * r[3]
)
_SUPPRESSED = _KINDS.map(lambda kind: suppressed(kind=kind))
_OTHER = st.one_of(_SUPPRESSED, st.booleans().map(failed)).map(lambda o: [o])
_OUTCOMES = st.lists(st.one_of(_RUN, _RUN, _OTHER), max_size=5).map(
    lambda parts: [o for part in parts for o in part]
)
_STEP = st.one_of(
    st.tuples(st.just("consumed"), _STREAMS, st.sampled_from([1, 1, 1, 0, 2, 200, -1])),
    st.tuples(st.just("outcomes"), _OUTCOMES),
    st.tuples(st.just("delivery"), _KINDS, _CHANNELS, _LATENESS),
    st.tuples(st.just("read"), st.sampled_from(["render", "sample", "restricted"])),
)


def _apply(metrics: Any, step: tuple[Any, ...]) -> str | None:
    """The step's update (None), or "refused" when the update raised ValueError."""
    what = step[0]
    try:
        if what == "consumed":
            metrics.observe_consumed(step[1], step[2])
        elif what == "outcomes":
            outcomes: list[OutcomeEvent] = step[1]
            metrics.observe_outcomes(outcomes)
        elif what == "delivery":
            metrics.observe_delivery(step[1], step[2], SCHEDULED, SCHEDULED + step[3])
    except ValueError:
        return "refused"
    return None


# Families added after the reference (not tallied, so nothing to compare): left out of both.
_ADDED_SINCE = ("nudge_redis_refusals",)


def _exposed(metrics: Any, how: str = "render") -> list[str]:
    """The nudge_* lines of the text format, each `_created` sample's value left out."""
    if how == "restricted":
        names = ["nudge_events_consumed_total", "nudge_nudges_sent_total"]
        names += [f"nudge_delivery_latency_seconds_{s}" for s in ("bucket", "sum", "count")]
        text = generate_latest(metrics.registry.restricted_registry(names)).decode()
    else:
        if how == "sample":  # the registry's own reader, then the text
            metrics.registry.get_sample_value("nudge_nudges_sent_total")
        text = metrics.render().decode()
    lines = []
    for line in text.splitlines():
        if "nudge_" not in line or any(family in line for family in _ADDED_SINCE):
            continue
        name = line.split("{")[0].split(" ")[0]
        lines.append(name if name.endswith("_created") else line)
    # A restricted registry collects from a set: its families come in no fixed order.
    return sorted(lines) if how == "restricted" else lines


class TestTalliedMetricsExposeWhatTheCodeBeforeDid:
    @settings(max_examples=300, deadline=None)
    @given(steps=st.lists(_STEP, max_size=30))
    def test_any_sequence_of_updates_and_reads(self, steps: list[tuple[Any, ...]]) -> None:
        """After every read and at the end: the same lines, the same refusals."""
        mine, reference = Metrics("notifier", Keys()), ReferenceMetrics("notifier", Keys())
        for step in steps:
            if step[0] == "read":
                assert _exposed(mine, step[1]) == _exposed(reference, step[1])
                continue
            assert _apply(mine, step) == _apply(reference, step)
        assert _exposed(mine) == _exposed(reference)

    def test_the_sum_keeps_the_order_of_its_additions(self) -> None:
        """0.1, a read, then 0.2 and 0.3: the holder's sum is (0.1 + 0.2) + 0.3, which differs
        from 0.1 + (0.2 + 0.3) in its last bit (checked to fail with the pending sum added
        to the holder at once)."""
        mine, reference = Metrics("notifier", Keys()), ReferenceMetrics("notifier", Keys())
        for metrics in (mine, reference):
            metrics.observe_outcomes([sent("date_night", "email", timedelta(seconds=0.1))])
            metrics.render()
            metrics.observe_outcomes([sent("date_night", "email", timedelta(seconds=0.2))])
            metrics.observe_outcomes([sent("date_night", "email", timedelta(seconds=0.3))])
        assert _exposed(mine) == _exposed(reference)
        labels = {"kind": "date_night", "channel": "email"}
        total = mine.registry.get_sample_value("nudge_delivery_latency_seconds_sum", labels)
        assert total == (0.1 + 0.2) + 0.3 != 0.1 + (0.2 + 0.3)

    def test_pending_updates_are_written_before_a_read(self) -> None:
        """A nudge's updates are tallied, not written, until something reads the metrics."""
        mine = Metrics("notifier", Keys())
        stream = "nudges:due:{s00}"
        mine.observe_consumed(stream)  # the first: written at once (the series appears)
        mine.observe_consumed(stream, 2)
        mine.observe_outcomes([sent("date_night", "email", timedelta(seconds=1.5))] * 2)
        mine.observe_outcomes([sent("date_night", "email", timedelta(seconds=0.25))])
        labels = {"kind": "date_night", "channel": "email"}
        registry = mine.registry
        assert (
            registry.get_sample_value("nudge_events_consumed_total", {"stream": "due:{s00}"}) == 3
        )
        assert registry.get_sample_value("nudge_nudges_sent_total", labels) == 3
        assert registry.get_sample_value("nudge_delivery_latency_seconds_sum", labels) == 3.25
        bucket = "nudge_delivery_latency_seconds_bucket"
        assert registry.get_sample_value(bucket, {**labels, "le": "0.5"}) == 1
        assert registry.get_sample_value(bucket, {**labels, "le": "2.0"}) == 3
