"""Batches applied one after another in the background, so the next one is read meanwhile.

FastStream's batch subscriber reads the next batch only once its handler returns. A handler
that applied its batch to the end waited, with nothing to compute, for the batch's last round
trips (the scheduler's last chunk of APPLY_PLAN calls, then XDEL + XACK), and then for the
XREADGROUP of the next batch: ~10-20 us per realistic preferences event, ~15 % of its wall time.
With a `BatchRelay` the handler checks its batch, waits until the batch before it has ended,
starts its own as a task and returns: the next XREADGROUP, and that batch's validation, run
while this batch's tail is in Redis.

The invariant it keeps: one batch runs at a time, in the order they were started (a batch
starts only after the one before it has ended: done, stopped or failed), so events still apply
in stream order; at most two batches are in hand (one running, the next one waiting for it).
A batch's work reports its own errors (the relay only drops them, as `shutdown.settle` does);
a stop waits for the batch running (`wait`), which ends between entries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["BatchRelay"]


class BatchRelay:
    def __init__(self, name: str) -> None:
        self.name = name  # the tasks' name (asyncio debugging)
        self._running: asyncio.Task[None] | None = None

    def running(self) -> list[asyncio.Task[None]]:
        """The batch running, if any (for a stop to wait for it, or cancel it)."""
        task = self._running
        return [] if task is None or task.done() else [task]

    async def wait(self) -> None:
        """Return once the batch started last has ended (at once when none is running)."""
        running = self._running
        if running is not None and not running.done():
            await asyncio.wait([running])

    def start(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` as the next batch; only after `wait` (one batch at a time)."""
        if self._running is not None and not self._running.done():
            work.close()
            raise RuntimeError("BatchRelay.start: the batch before is still running")
        task = asyncio.create_task(work, name=self.name)
        task.add_done_callback(_dropped)
        self._running = task
        return task


def _dropped(task: asyncio.Task[None]) -> None:
    """Retrieve the outcome (the work logged its own errors): never "never retrieved"."""
    if not task.cancelled():
        task.exception()
