"""`fixed_ms.instant_ms` equals `clock.epoch_ms` for every aware instant (issue 20).

Fixed-offset tzinfos (datetime.timezone, pydantic-core's TzInfo, as an event's `occurred_at`
carries) take the remembered-epoch path, whole-millisecond offsets or not; a ZoneInfo (its
offset moves) and a sub-millisecond offset go to `epoch_ms`. Instants alternate between
tzinfos, as the ingestion path's do, and a naive instant raises as `epoch_ms` does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import TzInfo

from benchmarks.burst import START
from benchmarks.harness import couple_event
from couples_nudge.common.clock import epoch_ms
from couples_nudge.scheduler.fixed_ms import instant_ms
from couples_nudge_schemas import parse_preference

_OFFSETS = st.integers(-86_399, 86_399)  # whole seconds, as TzInfo takes them
_TZ = st.one_of(
    st.just(UTC),
    _OFFSETS.map(TzInfo),
    _OFFSETS.map(lambda s: timezone(timedelta(seconds=s))),
    st.integers(-86_399_999_999, 86_399_999_999).map(
        lambda us: timezone(timedelta(microseconds=us))
    ),
    st.sampled_from(["Europe/Berlin", "America/St_Johns", "Asia/Kathmandu", "UTC"]).map(ZoneInfo),
)
_NAIVE = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1))


@settings(max_examples=500)
@given(st.lists(st.tuples(_NAIVE, _TZ, st.booleans()), min_size=1, max_size=6))
def test_as_epoch_ms(instants: list[tuple[datetime, object, bool]]) -> None:
    for naive, tz, fold in instants:
        instant = naive.replace(tzinfo=tz, fold=int(fold))  # type: ignore[arg-type]
        assert instant_ms(instant) == epoch_ms(instant)


def test_an_events_instant() -> None:
    """pydantic-core's shared TzInfo, alternating with datetime.UTC."""
    events = [parse_preference(couple_event(i, mix="realistic", occurred=START)) for i in range(3)]
    for event in events:
        assert instant_ms(event.occurred_at) == epoch_ms(event.occurred_at)
        now = datetime.now(UTC)
        assert instant_ms(now) == epoch_ms(now)
        later = event.occurred_at + timedelta(microseconds=999)
        assert instant_ms(later) == epoch_ms(later)


def test_naive_raises_as_epoch_ms() -> None:
    with pytest.raises(TypeError):
        epoch_ms(datetime(2026, 1, 1))
    with pytest.raises(TypeError):
        instant_ms(datetime(2026, 1, 1))
