"""Running a service process until SIGTERM/SIGINT, then shutting down gracefully."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import structlog

from services.common.runtime import settle_heap

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


class Runnable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def run_until_signalled(service: Runnable) -> None:
    """Start; on SIGTERM or SIGINT stop reading, finish in-flight work, close, return."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settle_heap()  # start-up's objects live as long as the process: no GC walks over them
    await service.start()
    log.info("service_running", event_loop=type(loop).__module__.partition(".")[0])
    await stop.wait()
    log.info("service_stopping")
    await service.stop()
    log.info("service_stopped")
