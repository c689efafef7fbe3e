"""The scheduler process: a preferences consumer and the timer loop, sharing one Redis client."""

from __future__ import annotations

import asyncio

import structlog
from faststream.redis import RedisRouter, StreamSub
from faststream.redis.annotations import RedisStreamMessage
from starlette.routing import BaseRoute

from schemas import EventRejected, parse_preference
from services.common.clock import Clock
from services.common.health import health_routes
from services.common.http import HttpServer
from services.common.keys import SCHEDULER_GROUP
from services.common.metrics import Metrics
from services.common.reclaim import Reclaimer
from services.common.runtime import broker_for, clock_from, consumer_name, redis_client
from services.common.streams import ensure_group, entry_id, group_names, reject
from services.operator.refresher import GaugeRefresher
from services.scheduler.ingest import PreferenceIngest
from services.scheduler.planning import PlanningError
from services.scheduler.settings import SchedulerSettings
from services.scheduler.store import ScheduleStore
from services.scheduler.timer_loop import TimerLoop

__all__ = ["SchedulerService"]

log = structlog.get_logger()
SERVICE = "scheduler"


class SchedulerService:
    def __init__(self, settings: SchedulerSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.clock = clock or clock_from(settings)
        self.redis = redis_client(settings)
        self.store = ScheduleStore(self.redis, self.keys, due_maxlen=settings.due_maxlen)
        self.ingest = PreferenceIngest(self.store, self.clock, settings)
        self.metrics = Metrics(SERVICE, self.keys)
        self.consumer = consumer_name(settings, SERVICE)
        self.timers = TimerLoop(
            self.store, self.clock, settings, metrics=self.metrics, replica=self.consumer
        )
        self.gauges = GaugeRefresher(
            self.redis, self.metrics, self.clock, interval=settings.metrics_refresh_seconds
        )
        self.broker = broker_for(settings, graceful_timeout=10.0)
        self.broker.include_router(self._router())
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.reclaimer: Reclaimer | None = None
        self.http: HttpServer | None = None

    def _router(self) -> RedisRouter:
        router = RedisRouter()
        sub = StreamSub(
            self.keys.preferences, group=SCHEDULER_GROUP, consumer=self.consumer, max_records=100
        )

        @router.subscriber(stream=sub)
        async def on_preference(msg: RedisStreamMessage) -> None:
            await self.handle(msg.body, entry_id(msg))

        return router

    async def handle(self, raw: bytes, entry_id: str) -> None:
        """Validate and apply one preferences entry; bad input goes to the rejected stream.

        Afterwards the entry is deleted from the preferences stream (the caller acknowledges):
        the stream is a queue into the scheduler and keeps no copy of personal data.
        """
        self.metrics.observe_consumed(self.keys.preferences)
        try:
            event = parse_preference(raw)
            result = await self.ingest.apply(event)
        except (EventRejected, PlanningError) as exc:
            reason = exc.reason if isinstance(exc, EventRejected) else str(exc)
            await reject(
                self.redis,
                self.keys.rejected,
                source=self.keys.preferences,
                entry_id=entry_id,
                raw=raw,
                reason=reason,
                service=SERVICE,
                maxlen=self.settings.rejected_maxlen,
            )
            self.metrics.observe_rejected(self.keys.preferences)
            log.warning("preference_rejected", entry_id=entry_id, reason=reason)
            await self.redis.xdel(self.keys.preferences, entry_id)
            return
        await self.redis.xdel(self.keys.preferences, entry_id)
        log.info(
            "preference_applied",
            entry_id=entry_id,
            event_type=event.type,
            event_id=str(event.event_id),
            couple_id=event.data.couple_id,
            result=result,
        )

    def routes(self) -> list[BaseRoute]:
        """HTTP routes of this process (served when NUDGE_HTTP_PORT is set)."""
        return health_routes(self.ready) + self.metrics.routes()

    async def ready(self) -> dict[str, bool]:
        groups = await group_names(self.redis, self.keys.preferences)
        return {"redis": True, "consumer_group": SCHEDULER_GROUP in groups}

    async def before_start(self) -> None:
        await ensure_group(self.redis, self.keys.preferences, SCHEDULER_GROUP)

    async def after_start(self) -> None:
        self._stop.clear()

        async def again(raw: bytes, entry: str, _fields: dict[bytes, bytes]) -> None:
            await self.handle(raw, entry)

        self.reclaimer = Reclaimer.from_settings(
            self.redis,
            self.settings,
            stream=self.keys.preferences,
            group=SCHEDULER_GROUP,
            consumer=self.consumer,
            handle=again,
        )
        self._tasks = [
            asyncio.create_task(self.timers.run(self._stop), name="timer-loop"),
            asyncio.create_task(self.reclaimer.run(self._stop), name="reclaim-preferences"),
        ]
        log.info("scheduler_started", consumer=self.consumer, shards=self.settings.shards)

    async def before_stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def after_stop(self) -> None:
        await self.redis.aclose()

    async def start(self) -> None:
        await self.before_start()
        await self.broker.start()
        await self.after_start()
        if self.settings.http_port is not None:
            self.http = HttpServer(
                self.routes(), host=self.settings.http_host, port=self.settings.http_port
            )
            await self.http.start()
            self.gauges.start()  # the Redis gauges matter only where /metrics is served

    async def stop(self) -> None:
        await self.gauges.stop()
        if self.http is not None:
            await self.http.stop()
        await self.before_stop()
        await self.broker.stop()
        await self.after_stop()
