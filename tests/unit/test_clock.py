"""Specification of couples_nudge.common.clock: injected time and epoch milliseconds.

ScaledClock's source of real time (``time.monotonic``) and its sleeper (``asyncio.sleep``)
are replaced per test, so nothing here waits for real.
"""

from __future__ import annotations

import time as real_time
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import couples_nudge.common.clock as clock_module
from couples_nudge.common.clock import Clock, ScaledClock, SystemClock, epoch_ms, from_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
START = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)


class FakeMonotonic:
    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def monotonic(monkeypatch: pytest.MonkeyPatch) -> FakeMonotonic:
    fake = FakeMonotonic()
    monkeypatch.setattr(clock_module, "time", SimpleNamespace(monotonic=fake))
    return fake


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    calls: list[float] = []

    async def sleep(seconds: float) -> None:
        calls.append(seconds)

    monkeypatch.setattr(clock_module, "asyncio", SimpleNamespace(sleep=sleep))
    return calls


def as_clock(clock: Clock) -> Clock:
    """Both clocks satisfy the Clock protocol (checked by mypy)."""
    return clock


class TestScaledClock:
    def test_starts_at_start(self, monotonic: FakeMonotonic) -> None:
        """Before any real time passes, the clock reads its start."""
        assert ScaledClock(START, speed=60).now() == START

    @pytest.mark.parametrize(
        ("speed", "real_seconds", "expected"),
        [
            (1.0, 2.5, START + timedelta(seconds=2.5)),
            (60.0, 2.5, START + timedelta(minutes=2.5)),
            (3600.0, 24.0, START + timedelta(days=1)),
            (0.5, 10.0, START + timedelta(seconds=5)),
        ],
    )
    def test_runs_speed_times_faster(
        self, monotonic: FakeMonotonic, speed: float, real_seconds: float, expected: datetime
    ) -> None:
        """Each real second advances the clock by `speed` seconds."""
        clock = ScaledClock(START, speed=speed)
        monotonic.value += real_seconds
        assert clock.now() == expected

    def test_a_held_clock_stands_at_start_until_released(self, monotonic: FakeMonotonic) -> None:
        """Held, real time does not move it; released, it runs from `start` from that instant."""
        clock = ScaledClock(START, speed=60, held=True)
        monotonic.value += 10
        assert clock.now() == START
        clock.release()
        monotonic.value += 1
        assert clock.now() == START + timedelta(minutes=1)

    def test_it_stands_still_at_until(self, monotonic: FakeMonotonic) -> None:
        """With `until`, it runs up to that instant and stays there (the demo's month end:
        stopping the services took real milliseconds, hours of the next month)."""
        clock = ScaledClock(START, speed=3600, until=START + timedelta(hours=2))
        monotonic.value += 1.5
        assert clock.now() == START + timedelta(hours=1.5)
        monotonic.value += 10
        assert clock.now() == START + timedelta(hours=2)

    def test_now_is_utc(self, monotonic: FakeMonotonic) -> None:
        """A start in another zone is the same instant, read back in UTC."""
        clock = ScaledClock(datetime(2026, 6, 10, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")), 1.0)
        assert clock.start == START
        assert clock.now() == START
        assert clock.now().tzinfo is UTC

    def test_needs_aware_start(self) -> None:
        """A naive start is rejected."""
        with pytest.raises(ValueError, match="aware start"):
            ScaledClock(datetime(2026, 6, 10, 7, 0), speed=1.0)

    @pytest.mark.parametrize("speed", [0.0, -1.0])
    def test_needs_positive_speed(self, speed: float) -> None:
        """A clock that stands still or runs backwards is rejected."""
        with pytest.raises(ValueError, match="speed must be positive"):
            ScaledClock(START, speed=speed)

    @pytest.mark.parametrize(
        ("speed", "seconds", "real"),
        [(1.0, 30.0, 30.0), (60.0, 30.0, 0.5), (3600.0, 7200.0, 2.0), (2.0, -5.0, 0.0)],
    )
    async def test_sleep_is_scaled(
        self, slept: list[float], speed: float, seconds: float, real: float
    ) -> None:
        """Sleeping N clock seconds waits N/speed real seconds; negative waits are zero."""
        await ScaledClock(START, speed=speed).sleep(seconds)
        assert slept == [real]

    def test_is_a_clock(self, monotonic: FakeMonotonic) -> None:
        """A ScaledClock can be passed wherever a Clock is expected, with its speed."""
        assert as_clock(ScaledClock(START, speed=120.0)).speed == 120.0


class TestSystemClock:
    def test_now_is_aware_utc_and_current(self) -> None:
        """The system clock reads the real current time, in UTC."""
        now = as_clock(SystemClock()).now()
        assert now.tzinfo is UTC
        assert abs(now.timestamp() - real_time.time()) < 5

    def test_real_speed(self) -> None:
        """The system clock runs at real speed."""
        assert SystemClock().speed == 1.0

    async def test_negative_sleep_is_zero(self, slept: list[float]) -> None:
        """Sleeping a negative time does not fail; it waits zero seconds."""
        await SystemClock().sleep(-3.0)
        assert slept == [0.0]


class TestEpochMs:
    @pytest.mark.parametrize(
        ("instant", "expected"),
        [
            (EPOCH, 0),
            (datetime(1970, 1, 1, 0, 1, tzinfo=UTC), 60_000),
            # 2026-06-10 is 20614 days after 1970-01-01: 20614 * 86400 + 7 * 3600 seconds.
            (START, 1_781_074_800_000),
            (datetime(2026, 6, 10, 9, 0, tzinfo=ZoneInfo("Europe/Berlin")), 1_781_074_800_000),
            (datetime(2026, 6, 10, 3, 0, tzinfo=timezone(timedelta(hours=-4))), 1_781_074_800_000),
            (START + timedelta(milliseconds=1), 1_781_074_800_001),
            (START + timedelta(microseconds=999), 1_781_074_800_000),  # whole milliseconds
            # 2004-05-31 is 12569 days after 1970-01-01; 13:17:20.909 adds 47840.909 s.
            (datetime(2004, 5, 31, 13, 17, 20, 909_000, tzinfo=UTC), 1_086_009_440_909),
        ],
    )
    def test_epoch_ms(self, instant: datetime, expected: int) -> None:
        """Milliseconds since 1970-01-01T00:00Z, whatever the instant's zone."""
        assert epoch_ms(instant) == expected

    @given(st.integers(0, 2**42))
    @example(1_086_009_440_909)
    def test_round_trip(self, ms: int) -> None:
        """from_ms then epoch_ms gives back the same millisecond, exactly."""
        assert epoch_ms(from_ms(ms)) == ms

    @given(st.integers(0, 2**42 * 1000))
    @example(1_086_009_440_909_000)
    def test_floor_of_microseconds(self, us: int) -> None:
        """An instant with microseconds maps to the millisecond it falls in."""
        assert epoch_ms(EPOCH + timedelta(microseconds=us)) == us // 1000


class TestFromMs:
    @pytest.mark.parametrize(
        ("ms", "expected"),
        [
            (0, EPOCH),
            (60_000, datetime(1970, 1, 1, 0, 1, tzinfo=UTC)),
            (1_781_074_800_000, START),
            (1_781_074_800_001, START + timedelta(milliseconds=1)),
            (1.5, EPOCH + timedelta(microseconds=1500)),
        ],
    )
    def test_from_ms(self, ms: float, expected: datetime) -> None:
        """Epoch milliseconds (int or float) become an aware UTC instant."""
        instant = from_ms(ms)
        assert instant == expected
        assert instant.tzinfo is UTC
