"""Injected time. Services never call datetime.now() or asyncio.sleep() for schedule time.

`ScaledClock` runs faster than real time (the demo's simulated month); tests pass their own.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

__all__ = ["Clock", "ManualClock", "ScaledClock", "SystemClock", "epoch_ms", "from_ms"]


class Clock(Protocol):
    speed: float  # clock seconds per real second

    def now(self) -> datetime:
        """The current instant, aware UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Sleep for `seconds` of this clock's time."""
        ...


class SystemClock:
    speed = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ScaledClock:
    """Starts at `start` and runs `speed` times faster than the wall clock.

    With `anchor` (a Unix time), `start` is the simulated time at that real instant, so that
    several processes share one simulated time; without it, at this clock's creation, or
    with `held`, at `release()`: until then it stands at `start` (the demo sets its services
    up on a held clock, so that the simulated hours its start-up takes are not skipped). With
    `until`, it stands still at that instant once it gets there.
    """

    def __init__(
        self,
        start: datetime,
        speed: float,
        anchor: float | None = None,
        *,
        held: bool = False,
        until: datetime | None = None,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("ScaledClock needs an aware start")
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start.astimezone(UTC)
        self.speed = speed
        self._anchor = anchor
        self._t0: float | None = None if held else time.monotonic()
        # Where it stands still once there (the demo's month ends there: stopping the
        # services takes real milliseconds, hours at the demo's speed, which fired the next
        # month's first nudges).
        self._until = None if until is None else until.astimezone(UTC)

    def release(self) -> None:
        """Start a held clock: it is at `start` now and runs from here."""
        if self._t0 is None:
            self._t0 = time.monotonic()

    def now(self) -> datetime:
        if self._t0 is None:
            return self.start
        if self._anchor is not None:
            elapsed = time.time() - self._anchor
        else:
            elapsed = time.monotonic() - self._t0
        now = self.start + timedelta(seconds=elapsed * self.speed)
        return now if self._until is None or now < self._until else self._until

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock:
    """Time stands still until `advance`/`set`; sleeping yields briefly in real time."""

    speed = 1.0

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(max(0.0, seconds), 0.01))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_ms(instant: datetime) -> int:
    """Exact integer milliseconds (float timestamp() * 1000 is off by one now and then).

    `(instant - _EPOCH) // timedelta(milliseconds=1)` without the division (~2k instructions
    a call, on the ingestion and firing paths): a timedelta is normalised to days, seconds in
    [0, 86400) and microseconds in [0, 10**6), so only the microseconds are not whole
    milliseconds, and their floor is the whole difference's (tests/property/test_epoch_ms.py).
    """
    since = instant - _EPOCH
    return since.days * 86_400_000 + since.seconds * 1000 + since.microseconds // 1000


def from_ms(ms: int | float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
