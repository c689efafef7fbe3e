"""Places: the NUDGE_MAX_IN_FLIGHT bound on entries handled at once, taken without a coroutine.

`asyncio.Semaphore.acquire` is a coroutine even when a place is free (its frame, and
`locked()`'s generator over the waiters), and the notifier takes a place per entry. Here a
free place is taken by a plain call (`take_now`); only a full house waits (`take`).

Invariant: places are handed out first come, first served. A place given back while someone
waits goes to the first waiter (`give`), never back to `free`, and `take_now` fails while
anyone waits: a batch that came later never overtakes one that waits. A waiter cancelled
after it was handed a place passes it on, so no place is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["Places"]


class Places:
    """A counting semaphore with a synchronous fast path (see the module docstring)."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, count: int) -> None:
        self._free = count
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def free(self) -> int:
        """Places nobody holds (for tests)."""
        return self._free

    def take_now(self) -> bool:
        """Take a place if one is free and nobody waits for one; False otherwise."""
        if self._free and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a place, waiting for one if need be (first come, first served)."""
        if self.take_now():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a place as it was cancelled: the next one gets it
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Give a place back: to the first waiter, or to the free ones."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1
