"""Running a service process until SIGTERM/SIGINT, then shutting down gracefully."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import structlog

from couples_nudge.common.runtime import settle_heap
from couples_nudge.common.settings import CommonSettings
from couples_nudge.common.shutdown import Deadline

__all__ = ["Runnable", "run", "run_until_signalled"]

log = structlog.get_logger()
T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a service's main coroutine on uvloop where it is installed (not on Windows).

    A notifier message is a dozen tasks, futures and callbacks; uvloop's C event loop spent
    1-11 % less CPU per message than asyncio's in 5 alternating benchmark pairs (median ~4 %;
    docs/performance.md). Nothing depends on it: without uvloop, asyncio's loop runs the same
    code, as it does in the in-process tests (the fault tests run the services on uvloop).
    """
    try:
        import uvloop
    except ImportError:  # pragma: no cover - a platform without uvloop
        return asyncio.run(main)
    return uvloop.run(main)


# After the budget, closing connections may take this much more before the process gives up
# waiting for its own stop (a backstop: the services keep their stop inside the budget).
CLOSE_GRACE_S = 2.0


class Runnable(Protocol):
    @property
    def settings(self) -> CommonSettings: ...

    async def start(self) -> None: ...

    async def stop(self, deadline: Deadline | None = None) -> None: ...


async def run_until_signalled(service: Runnable) -> None:
    """Start; on SIGTERM or SIGINT stop reading, finish in-flight work, close, return.

    The stop has one budget, NUDGE_SHUTDOWN_TIMEOUT, counted from the signal (see
    services/common/shutdown.py): what is unfinished by then stays pending for another replica.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settle_heap()  # start-up's objects live as long as the process: no GC walks over them
    await service.start()
    log.info("service_running", event_loop=type(loop).__module__.partition(".")[0])
    await stop.wait()
    budget = service.settings.shutdown_timeout.total_seconds()
    deadline, began = Deadline.after(budget), time.monotonic()
    log.info("service_stopping", budget_s=budget)
    try:
        await asyncio.wait_for(service.stop(deadline), timeout=budget + CLOSE_GRACE_S)
    except TimeoutError:
        log.warning("service_stop_overran", budget_s=budget)
        return
    log.info("service_stopped", seconds=round(time.monotonic() - began, 2))
