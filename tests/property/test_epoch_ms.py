"""`clock.epoch_ms` (a fixed-offset instant subtracted from the epoch in its own tzinfo, issue
20) equals the plain `(instant - epoch) // 1 ms` for every kind of aware instant, and
pydantic-core's TzInfo, which that relies on, is a fixed offset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import AwareDatetime, TypeAdapter
from pydantic_core import TzInfo

from couples_nudge.common import clock
from couples_nudge.common.clock import epoch_ms

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_OFFSETS = st.integers(-86_399, 86_399)  # seconds: what both fixed-offset types take
_ZONES = st.sampled_from(
    [ZoneInfo(z) for z in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC")]
)
_TZS = st.one_of(
    st.just(UTC),
    _OFFSETS.map(lambda s: timezone(timedelta(seconds=s))),
    _OFFSETS.map(TzInfo),
    _ZONES,
)
_WALL = st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 12, 30))


def _plain(instant: datetime) -> int:
    return (instant - _EPOCH) // _MS


class TestEpochMs:
    @given(_WALL, _TZS)
    def test_equals_the_plain_subtraction(self, wall: datetime, tz: timezone) -> None:
        """Any aware instant (UTC, timezone, TzInfo or a zone, DST folds included): the same
        milliseconds, on a first call and on a repeat (its tzinfo's epoch then kept)."""
        for fold in (0, 1):
            instant = wall.replace(tzinfo=tz, fold=fold)
            assert epoch_ms(instant) == _plain(instant)
            assert epoch_ms(instant) == _plain(instant)

    @given(st.lists(_OFFSETS, min_size=70, max_size=140), _WALL)
    def test_many_tzinfos_and_the_bound(self, offsets: list[int], wall: datetime) -> None:
        """More tzinfo objects than are kept: still exact, and the table stays bounded."""
        for seconds in offsets:
            instant = wall.replace(tzinfo=TzInfo(seconds))
            assert epoch_ms(instant) == _plain(instant)
        assert len(clock._epochs) <= clock._EPOCHS_KEPT

    @given(st.integers(0, 3650), _OFFSETS, _WALL)
    def test_pydantic_tzinfo_is_a_fixed_offset(
        self, days: int, seconds: int, wall: datetime
    ) -> None:
        """TzInfo's offset is the same for every datetime (what the kept epoch relies on), and
        a parsed instant's tzinfo is a TzInfo (the case the fast path is for)."""
        tz = TzInfo(seconds)
        other = wall + timedelta(days=days)
        assert tz.utcoffset(wall) == tz.utcoffset(other) == timedelta(seconds=seconds)
        assert tz.dst(wall) is None
        parsed = TypeAdapter(AwareDatetime).validate_json('"2026-03-29T01:30:00+02:00"')
        assert type(parsed.tzinfo) is TzInfo

    def test_a_naive_instant_is_refused_as_before(self) -> None:
        """A naive datetime raises the TypeError the plain subtraction raises."""
        with pytest.raises(TypeError):
            epoch_ms(datetime(2026, 1, 1))
