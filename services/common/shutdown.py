"""One shutdown budget (NUDGE_SHUTDOWN_TIMEOUT) from SIGTERM to exit, shared by every step.

A stop has several waits: FastStream's subscribers wait for their handlers, the notifier for
the sends in flight, both services for their background loops. Each used to have its own
timeout (15 s + 15 s), so a stop could take 30 s, all of Kubernetes' grace period. Now the
runner starts one `Deadline` at the signal and every wait takes only what is left of it.
Work that is unfinished at the deadline is cancelled, never acknowledged: its stream entries
stay pending, and another replica's reclaimer takes them over (docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from faststream.redis import RedisBroker

__all__ = ["Deadline", "settle", "stopped_reading"]


@dataclass(frozen=True, slots=True)
class Deadline:
    """An instant on the monotonic clock by which a stop must be done."""

    at: float

    @classmethod
    def after(cls, budget: timedelta | float) -> Deadline:
        seconds = budget.total_seconds() if isinstance(budget, timedelta) else budget
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.at - time.monotonic())


async def settle(tasks: Collection[asyncio.Task[Any]], deadline: Deadline) -> int:
    """Let `tasks` finish until the deadline, then cancel the ones still running and wait for
    them to unwind; returns how many were cancelled. Their results and errors are dropped: a
    task that must report something logs it itself. Cancelled work leaves nothing behind that
    a stop must undo (entries stay pending; Lua scripts are atomic).
    """
    running = {task for task in tasks if not task.done()}
    if running:
        _, running = await asyncio.wait(running, timeout=deadline.remaining())
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running)
    for task in tasks:  # retrieve outcomes so none is reported "never retrieved"
        if task.done() and not task.cancelled():
            task.exception()
    return len(running)


async def stopped_reading(broker: RedisBroker, within: float) -> None:
    """Return once FastStream's stop has marked every subscriber as no longer reading (it does
    so first, then waits for the handlers running), or after `within` seconds.

    A handler that ends early because its service is stopping calls this before returning.
    Returning at once would let its subscriber start one more XREADGROUP, which FastStream's
    stop (faststream 0.7.8) then breaks off by closing the connection under it instead of
    cancelling it: an error-level "Message fetch error" line on every such stop.
    """
    ends = time.monotonic() + within
    while any(sub.running for sub in broker.subscribers) and time.monotonic() < ends:  # noqa: ASYNC110 (FastStream offers no event to wait on)
        await asyncio.sleep(0.01)
