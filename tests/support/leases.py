"""Replicas' shares of the shards' firing leases, as the lease tests on a server and on the
cluster both read them."""

from __future__ import annotations

import asyncio
from datetime import datetime

from couples_nudge.common.clock import ManualClock
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from tests.support.waiting import eventually

__all__ = ["settled_shares"]


async def settled_shares(
    store: ScheduleStore,
    settings: SchedulerSettings,
    start: datetime,
    expected: list[int],
    *,
    within: float,
) -> list[int]:
    """Start two timer loops together; once the numbers of leases they hold (sorted) read
    `expected`, wait a few refreshes more (a lease of 2 s refreshes every 0.67 s) and return
    those numbers then; the loops are stopped before returning, whatever happens."""
    loops = [TimerLoop(store, ManualClock(start), settings, replica=f"s-{i}") for i in (0, 1)]
    stop = asyncio.Event()
    runs = [asyncio.create_task(loop.run(stop)) for loop in loops]

    async def held() -> list[int]:
        return sorted(len(loop.leases.held) if loop.leases else 0 for loop in loops)

    try:
        await eventually(held, until=lambda h: h == expected, within=within)
        await asyncio.sleep(0.5)
        return await held()
    finally:
        stop.set()
        await asyncio.gather(*runs)
