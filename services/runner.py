"""Running a service process until SIGTERM/SIGINT, then shutting down gracefully."""

from __future__ import annotations

import asyncio
import signal
from typing import Protocol

import structlog

from services.common.runtime import settle_heap

__all__ = ["Runnable", "run_until_signalled"]

log = structlog.get_logger()


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
    log.info("service_running")
    await stop.wait()
    log.info("service_stopping")
    await service.stop()
    log.info("service_stopped")
