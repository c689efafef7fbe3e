"""Every service process watches for a lost Redis state, says so, and gets consuming again.

Without it, a Redis that came back empty left both services alive and idle for good: the
consumer groups were gone, FastStream stopped each subscriber on the first NOGROUP ("restart
the application to recreate the group") and the reclaimers logged errors every few seconds.

A StateWatcher runs beside the subscribers. Every `interval` seconds, and at once when poked
(a reclaimer met NOGROUP), it:
  1. observes the state marker (services/common/state_marker.py): on a loss it counts
     `nudge_state_lost_total`, and logs `state_lost` at critical if this process reported it
     (the notice for publishers went out in the same script) or `state_lost_seen` at error;
  2. recreates its consumer groups (at the start of their streams, so whatever was published
     meanwhile is read) when the state was lost, it was poked, or a subscriber had stopped;
  3. starts again every FastStream subscriber that stopped (`running` false), FastStream's
     documented way to run a subscriber.
A Redis error in a pass (Redis still down) is logged and the next pass tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
import structlog
from faststream.redis import RedisBroker
from redis.exceptions import RedisError

from couples_nudge.common.keys import Keys
from couples_nudge.common.metrics import Metrics
from couples_nudge.common.settings import CommonSettings
from couples_nudge.common.state_marker import Observation, StateEpoch, StateMarker
from couples_nudge.common.streams import ensure_group

__all__ = ["StateWatcher"]

log = structlog.get_logger()


class StateWatcher:
    def __init__(
        self,
        marker: StateMarker,
        *,
        groups: Sequence[tuple[str, str]],
        metrics: Metrics,
        interval: float,
        broker: RedisBroker | None = None,
    ) -> None:
        self.marker = marker
        self.groups = list(groups)  # (stream, group) this process consumes
        self.metrics = metrics
        self.interval = interval
        self.broker = broker  # a FastStream broker, whose subscribers are kept running
        self.known: StateEpoch | None = None
        self.losses = 0  # losses this process noticed
        self.restarts = 0  # subscribers started again
        self._poked = asyncio.Event()
        self._stopping: asyncio.Event | None = None  # set by run(): the service is stopping

    @classmethod
    def for_service(
        cls,
        redis: aioredis.Redis,
        keys: Keys,
        settings: CommonSettings,
        *,
        name: str,
        producer: str,
        groups: Sequence[tuple[str, str]],
        metrics: Metrics,
        broker: RedisBroker,
    ) -> StateWatcher:
        """A service's watcher, its marker made from the service's settings."""
        marker = StateMarker(
            redis,
            keys,
            name=name,
            producer=producer,
            outcomes_maxlen=settings.outcomes_maxlen,
            per_shard=settings.redis_cluster,  # a primary may lose its shards alone
        )
        return cls(
            marker,
            groups=groups,
            metrics=metrics,
            interval=settings.state_check_seconds,
            broker=broker,
        )

    async def begin(self) -> StateEpoch:
        """At start-up, before consuming: join (or start) the state epoch, create the groups."""
        seen = await self.marker.observe(None)
        self.known = seen.epoch
        log.info("state_epoch", verdict=seen.verdict, began_at=seen.epoch.began_at.isoformat())
        await self._ensure_groups()
        return seen.epoch

    async def notes(self) -> dict[str, object]:
        """For /readyz: the last loss of the state while it is recent (else None)."""
        epoch = await self.marker.read()
        recent = epoch is not None and epoch.recently_lost(self.marker.clock.now())
        return {"state_lost": epoch.as_json() if recent and epoch is not None else None}

    def poke(self) -> None:
        """Check now: something met a missing consumer group (NOGROUP)."""
        self._poked.set()

    async def check(self) -> Observation:
        """One pass: observe the marker, react to a loss, keep the groups and subscribers."""
        poked = self._poked.is_set()
        self._poked.clear()
        seen = await self.marker.observe(self.known)
        if seen.lost:
            self._lost(seen)
        self.known = seen.epoch
        # A stopping service stops its subscribers itself: starting them again would race it.
        stopping = self._stopping is not None and self._stopping.is_set()
        stopped = [] if stopping else self._stopped()
        if seen.lost or poked or stopped:
            await self._ensure_groups()
        for subscriber in stopped:
            await subscriber.start()
            self.restarts += 1
            log.warning("subscriber_restarted", stream=_stream_of(subscriber))
        return seen

    async def run(self, stop: asyncio.Event) -> None:
        self._stopping = stop

        async def wake_on_stop() -> None:
            await stop.wait()
            self._poked.set()

        waker = asyncio.create_task(wake_on_stop())
        try:
            while not stop.is_set():
                try:
                    await self.check()
                except (RedisError, OSError, TimeoutError) as exc:  # Redis away: next pass
                    log.warning("state_check_failed", error=type(exc).__name__)
                except Exception:  # never stop watching: a silent watcher is the bug it fixes
                    log.exception("state_check_crashed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poked.wait(), self.interval)
        finally:
            waker.cancel()

    def _lost(self, seen: Observation) -> None:
        self.losses += 1
        self.metrics.observe_state_lost()
        epoch = seen.epoch
        fields = {
            "lost_at": None if epoch.lost_at is None else epoch.lost_at.isoformat(),
            "detected_by": epoch.detected_by,
            "lost_epoch_began_at": (
                None if epoch.lost_epoch_began_at is None else epoch.lost_epoch_began_at.isoformat()
            ),
        }
        if seen.verdict == "reported":
            log.critical("state_lost", notice="service.state_lost.v1", **fields)
        else:
            log.error("state_lost_seen", **fields)

    def _stopped(self) -> list[Any]:
        if self.broker is None:
            return []
        return [s for s in self.broker.subscribers if not s.running]

    async def _ensure_groups(self) -> None:
        for stream, group in self.groups:
            await ensure_group(self.marker.redis, stream, group)


def _stream_of(subscriber: Any) -> str:
    sub = getattr(subscriber, "stream_sub", None)
    return str(getattr(sub, "name", "?"))
