"""`clock.epoch_ms` is the exact floor of an instant's milliseconds since 1970 UTC.

Its body adds the normalised timedelta's days, seconds and microseconds instead of dividing by
a millisecond (a third of its cost); this holds it equal to the division it replaces for any
aware instant: UTC, fixed offsets (whole seconds, as pydantic-core's TzInfo that an event's
`occurred_at` carries, and with parts of a millisecond), zones whose offset moves, folds, before
1970 (negative days) and after. A naive instant raises as the subtraction does.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import TzInfo

from couples_nudge.common.clock import epoch_ms

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_OFFSETS = st.integers(-86_399, 86_399)
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


@settings(max_examples=1000)
@given(_NAIVE, _TZ, st.booleans())
def test_the_floor_of_the_division(naive: datetime, tz: object, fold: bool) -> None:
    instant = naive.replace(tzinfo=tz, fold=int(fold))  # type: ignore[arg-type]
    assert epoch_ms(instant) == (instant - _EPOCH) // timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (datetime(1970, 1, 1, 0, 0, 0, 999, tzinfo=UTC), 0),
        (datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), -1),  # floor, not truncation
        (datetime(1969, 12, 31, 23, 59, 59, 999_000, tzinfo=UTC), -1),
        (datetime(1969, 12, 31, 23, 59, 59, 998_999, tzinfo=UTC), -2),
    ],
)
def test_around_the_epoch(instant: datetime, expected: int) -> None:
    assert epoch_ms(instant) == expected


def test_naive_raises() -> None:
    with pytest.raises(TypeError):
        epoch_ms(datetime(2026, 1, 1))
