"""Keeps the Redis gauges of a service's metrics current: one status snapshot per interval.

Scrapes only read the registry; they never touch Redis. Every replica of every service
exports the same Redis gauges (they describe shared state): aggregate them with max().
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from couples_nudge.common.clock import Clock
from couples_nudge.common.metrics import Metrics
from couples_nudge.operator.status import Status, gather_status

__all__ = ["GaugeRefresher", "apply_status"]

log = structlog.get_logger()


def apply_status(metrics: Metrics, status: Status, *, refreshed_at: float) -> None:
    """Set every Redis gauge from one snapshot (series of vanished groups are dropped)."""
    for gauge in (
        metrics.group_consumers,
        metrics.group_pending,
        metrics.group_lag,
        metrics.oldest_pending_age,
    ):
        gauge.clear()
    for stream in status.streams:
        metrics.stream_length.labels(stream.label).set(stream.length)
        for group in stream.groups:
            labels = (stream.label, group.name)
            metrics.group_consumers.labels(*labels).set(group.consumers)
            metrics.group_pending.labels(*labels).set(group.pending)
            if group.lag is not None:
                metrics.group_lag.labels(*labels).set(group.lag)
            metrics.oldest_pending_age.labels(*labels).set(group.oldest_pending_age_s or 0.0)
    metrics.dead_letters.set(status.dead_letters)
    metrics.timers.set(status.timers_total)
    metrics.timers_due.set(status.timers_due)
    metrics.timers_overdue.set(status.timers_overdue)
    metrics.status_refreshed.set(refreshed_at)


class GaugeRefresher:
    def __init__(
        self, redis: aioredis.Redis, metrics: Metrics, clock: Clock, *, interval: float
    ) -> None:
        self.redis = redis
        self.metrics = metrics
        self.clock = clock
        self.interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> Status:
        status = await gather_status(self.redis, self.metrics.keys, self.clock.now())
        apply_status(self.metrics, status, refreshed_at=time.time())
        return status

    async def run(self) -> None:
        """Refresh now, then every `interval` real seconds until stopped; errors are counted."""
        while not self._stop.is_set():
            try:
                await self.refresh()
            except (RedisError, OSError) as exc:
                self.metrics.status_refresh_errors.inc()
                log.warning("status_refresh_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)

    def start(self) -> None:
        self._stop.clear()
        self._task = asyncio.create_task(self.run(), name=f"{self.metrics.service}-gauges")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None
