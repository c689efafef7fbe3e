"""The notifier process: consumes every shard's due stream, delivers, publishes outcomes."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import structlog
from faststream.redis import RedisBroker, RedisRouter, StreamSub
from faststream.redis.annotations import RedisStreamMessage
from starlette.routing import BaseRoute

from schemas import Channel as ChannelName
from schemas import EventRejected, parse_due
from services.common.clock import Clock
from services.common.health import health_routes
from services.common.http import HttpServer
from services.common.keys import NOTIFIER_GROUP
from services.common.runtime import clock_from, consumer_name, redis_client
from services.common.streams import ensure_group, entry_id, group_names, publish, reject
from services.notifier.catalog import load_catalog
from services.notifier.channels.base import Channel
from services.notifier.channels.email import SmtpChannel
from services.notifier.delivery import Delivery
from services.notifier.settings import NotifierSettings
from services.notifier.state import NotifierState

__all__ = ["NotifierService", "default_channels"]

log = structlog.get_logger()
SERVICE = "notifier"


def default_channels(settings: NotifierSettings) -> dict[ChannelName, Channel]:
    return {
        "email": SmtpChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_user,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout,
            concurrency=settings.smtp_concurrency,
        )
    }


class NotifierService:
    def __init__(
        self,
        settings: NotifierSettings,
        clock: Clock | None = None,
        channels: dict[ChannelName, Channel] | None = None,
    ) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.clock = clock or clock_from(settings)
        self.redis = redis_client(settings)
        self.channels = channels if channels is not None else default_channels(settings)
        self.state = NotifierState(self.redis, self.keys)
        self.delivery = Delivery(self.state, self.channels, load_catalog(), self.clock, settings)
        self.consumer = consumer_name(settings, SERVICE)
        self.broker = RedisBroker(
            settings.redis_url.get_secret_value(),
            log_level=logging.DEBUG,
            graceful_timeout=15.0,
        )
        self.broker.include_router(self._router())
        self.delivered = 0
        self.http: HttpServer | None = None

    def _router(self) -> RedisRouter:
        router = RedisRouter()
        for stream in self.keys.all_due():
            sub = StreamSub(
                stream,
                group=NOTIFIER_GROUP,
                consumer=self.consumer,
                max_records=self.settings.batch_size,
            )

            router.subscriber(stream=sub, max_workers=self.settings.max_in_flight)(
                self._handler_for(stream)
            )
        return router

    def _handler_for(self, stream: str) -> Callable[[RedisStreamMessage], Awaitable[None]]:
        async def on_due(msg: RedisStreamMessage) -> None:
            await self.handle(msg.body, entry_id(msg), stream)

        on_due.__name__ = f"on_due_{stream.rsplit(':', 1)[-1].strip('{}')}"
        return on_due

    async def handle(self, raw: bytes, entry_id: str, stream: str) -> None:
        """Deliver one NudgeDue and publish its outcomes; return only when both are done."""
        try:
            due = parse_due(raw)
        except EventRejected as exc:
            await reject(
                self.redis,
                self.keys.rejected,
                source=stream,
                entry_id=entry_id,
                raw=raw,
                reason=exc.reason,
                service=SERVICE,
                maxlen=self.settings.rejected_maxlen,
            )
            log.warning("nudge_due_rejected", entry_id=entry_id, reason=exc.reason)
            return
        result = await self.delivery.deliver(due)
        outcomes = result.outcomes
        if outcomes:
            await publish(
                self.redis, self.keys.outcomes, outcomes, maxlen=self.settings.outcomes_maxlen
            )
        if result.retry:  # until retries are scheduled, leave the message pending
            raise result.retry[0].error
        self.delivered += 1
        log.info(
            "nudge_delivered",
            event_id=str(due.event_id),
            occurrence_id=due.data.occurrence_id,
            kind=due.data.kind,
            outcomes=[o.type.split(".")[1] for o in outcomes],
        )

    def routes(self) -> list[BaseRoute]:
        """HTTP routes of this process (served when NUDGE_HTTP_PORT is set)."""
        return health_routes(self.ready)

    async def ready(self) -> dict[str, bool]:
        present = [NOTIFIER_GROUP in await group_names(self.redis, s) for s in self.keys.all_due()]
        return {"redis": True, "consumer_groups": all(present)}

    async def before_start(self) -> None:
        for stream in self.keys.all_due():
            await ensure_group(self.redis, stream, NOTIFIER_GROUP)

    async def after_stop(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        await self.redis.aclose()

    async def start(self) -> None:
        await self.before_start()
        await self.broker.start()
        if self.settings.http_port is not None:
            self.http = HttpServer(
                self.routes(), host=self.settings.http_host, port=self.settings.http_port
            )
            await self.http.start()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.stop()
        await self.broker.stop()
        await self.after_stop()
