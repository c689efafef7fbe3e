"""The scheduler process: a preferences consumer and the timer loop, sharing one Redis client.

The preferences stream is consumed in batches (up to `_BATCH` entries per XREADGROUP): every
entry is validated on its own, bad ones go to the rejected stream with their reason, the good
ones are applied in stream order with `PreferenceIngest.apply_many` (the same results as one
at a time), and then the handled entries are deleted and acknowledged in one round trip. An entry
that fails unexpectedly stays pending for the Reclaimer, which handles it alone (`handle`).

A batch's entries are held from the moment they are read: the Reclaimer re-claims them on every
pass, so however long the batch takes, no replica (nor this one's own sweep) applies them a
second time. A stop is honoured between entries: what was applied is acknowledged, the rest is
left pending (neither deleted nor acknowledged) for another scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Final

import structlog
from faststream._internal._compat import dump_json
from faststream.middlewares import AckPolicy
from faststream.redis import RedisRouter, StreamSub
from faststream.redis.annotations import RedisBatchStreamMessage
from faststream.redis.parser import BinaryMessageFormatV1
from redis.exceptions import RedisError
from starlette.routing import BaseRoute

from schemas import CoupleErased, EventRejected, PreferenceEvent, parse_preference
from services.common.clock import Clock
from services.common.health import health_routes
from services.common.http import HttpServer
from services.common.keys import SCHEDULER_GROUP
from services.common.metrics import Metrics
from services.common.reclaim import Reclaimer
from services.common.runtime import broker_for, clock_from, consumer_name, redis_client
from services.common.shutdown import Deadline, settle, stopped_reading
from services.common.state_marker import StateMarker
from services.common.state_watch import StateWatcher
from services.common.streams import (
    DATA_FIELD,
    entries_as_read,
    group_names,
    reject,
)
from services.operator.refresher import GaugeRefresher
from services.scheduler.firing import PRODUCER
from services.scheduler.ingest import PreferenceIngest
from services.scheduler.planning import PlanningError
from services.scheduler.settings import SchedulerSettings
from services.scheduler.store import ScheduleStore
from services.scheduler.timer_loop import TimerLoop

__all__ = ["SchedulerService"]

log = structlog.get_logger()
SERVICE = "scheduler"
_BATCH: Final = 500  # preferences entries per read: one pipelined apply_many
_DATA: Final = DATA_FIELD.encode()


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
        self.broker = broker_for(settings)
        self.broker.include_router(self._router())
        # A Redis that came back empty: noticed, reported once, groups and subscriber back.
        marker = StateMarker(
            self.redis,
            self.keys,
            name=self.consumer,
            producer=PRODUCER,
            outcomes_maxlen=settings.outcomes_maxlen,
        )
        self.watch = StateWatcher(
            marker,
            groups=[(self.keys.preferences, SCHEDULER_GROUP)],
            metrics=self.metrics,
            interval=settings.state_check_seconds,
            broker=self.broker,
        )
        self._stop = asyncio.Event()
        self._held: set[str] = set()  # entries being applied here: the Reclaimer keeps them
        self._tasks: list[asyncio.Task[None]] = []
        self.reclaimer: Reclaimer | None = None
        self.http: HttpServer | None = None

    def _router(self) -> RedisRouter:
        router = RedisRouter()
        sub = StreamSub(
            self.keys.preferences,
            group=SCHEDULER_GROUP,
            consumer=self.consumer,
            batch=True,
            max_records=_BATCH,
        )

        # Acknowledged by handle_batch itself: only the entries it handled, after the work.
        @router.subscriber(stream=sub, ack_policy=AckPolicy.MANUAL, parser=entries_as_read)
        async def on_preferences(msg: RedisBatchStreamMessage) -> None:
            ids, data = msg.raw_message["message_ids"], msg.raw_message["data"]
            batch = [(eid.decode(), _stored(fields)) for eid, fields in zip(ids, data, strict=True)]
            read = [entry for entry, _ in batch]
            self._held.update(read)  # kept claimed by the Reclaimer while the batch runs
            try:
                await self.handle_batch(batch)
            finally:
                self._held.difference_update(read)
            if self._stop.is_set():
                await stopped_reading(self.broker, self.settings.shutdown_timeout.total_seconds())

        return router

    async def handle_batch(self, entries: Sequence[tuple[str, bytes]]) -> list[str]:
        """Validate and apply a batch of preferences entries (entry id, stored payload) in order.

        Each payload is read as FastStream's subscriber reads one (see `_read`).

        Bad entries are rejected one by one with their reason, exactly as `handle` does; the
        good ones are applied together. Then every handled entry is deleted and acknowledged
        (one round trip), and their ids are returned. If applying the batch fails unexpectedly
        (not a Redis error: that leaves the whole batch pending), its entries are applied one
        at a time, and one that fails again stays pending for the Reclaimer (neither deleted
        nor acknowledged). When the service stops meanwhile, the batch ends between entries:
        the entries from the first one not applied onwards stay pending, unhandled.
        """
        if not entries:
            return []
        self.metrics.observe_consumed(self.keys.preferences, len(entries))
        refused: dict[int, str] = {}
        events: list[tuple[int, PreferenceEvent]] = []
        read_entries: list[tuple[str, bytes]] = []
        for index, (entry, stored) in enumerate(entries):
            payload, read = _read(stored)
            read_entries.append((entry, payload))
            if isinstance(read, EventRejected):
                refused[index] = read.reason
            else:
                events.append((index, read))
        handled = set(range(len(entries)))
        try:
            results: list[str | PlanningError | None] = list(
                await self.ingest.apply_many([event for _, event in events], self._checkpoint)
            )
        except RedisError:
            raise  # nothing is acknowledged: the Reclaimer hands the entries over again
        except Exception:
            log.exception("preference_batch_failed", entries=len(entries))
            results = []
            for index, event in events:
                if not await self._checkpoint():
                    break
                try:
                    results.append(await self.ingest.apply(event))
                except PlanningError as exc:
                    results.append(exc)
                except RedisError:
                    raise
                except Exception:
                    log.exception("preference_failed", entry_id=entries[index][0])
                    handled.discard(index)
                    results.append(None)
        # Stopped before the end: from the first event not applied on, nothing is handled.
        cutoff = events[len(results)][0] if len(results) < len(events) else len(entries)
        outcomes: Counter[str] = Counter()
        for (index, event), result in zip(events, results, strict=False):
            if isinstance(result, PlanningError):
                refused[index] = str(result)
            elif result is not None:
                outcomes[result] += 1
                self._applied(entries[index][0], event, result)
        refused = {index: reason for index, reason in refused.items() if index < cutoff}
        if cutoff < len(entries):
            outcomes["left_pending"] = len(entries) - cutoff
        log.info("preferences_batch", entries=len(entries), rejected=len(refused), **outcomes)
        for index in sorted(refused):
            await self._reject(*read_entries[index], reason=refused[index])
        done = [entries[i][0] for i in sorted(handled) if i < cutoff]
        if done:
            async with self.redis.pipeline(transaction=False) as pipe:  # one round trip
                pipe.xdel(self.keys.preferences, *done)
                pipe.xack(self.keys.preferences, SCHEDULER_GROUP, *done)
                await pipe.execute()
        return done

    async def _checkpoint(self) -> bool:
        """Between entries of a batch: keep its entries claimed (however busy the event loop
        is: planning is CPU-bound); False once the service is stopping."""
        if self.reclaimer is not None:
            await self.reclaimer.keep_held()
        return not self._stop.is_set()

    async def handle(self, raw: bytes, entry_id: str) -> None:
        """Validate and apply one preferences entry; bad input goes to the rejected stream.

        Afterwards the entry is deleted from the preferences stream (the caller acknowledges):
        the stream is a queue into the scheduler and keeps no copy of personal data. The
        Reclaimer uses it for entries left pending; the subscriber uses `handle_batch`.
        """
        self.metrics.observe_consumed(self.keys.preferences)
        try:
            event = parse_preference(raw)
            result = await self.ingest.apply(event)
        except (EventRejected, PlanningError) as exc:
            reason = exc.reason if isinstance(exc, EventRejected) else str(exc)
            await self._reject(entry_id, raw, reason=reason)
            await self.redis.xdel(self.keys.preferences, entry_id)
            return
        await self.redis.xdel(self.keys.preferences, entry_id)
        self._applied(entry_id, event, result)

    async def _reject(self, entry_id: str, raw: bytes, *, reason: str) -> None:
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

    def _applied(self, entry_id: str, event: PreferenceEvent, result: str) -> None:
        """One line per event at debug, as per fire and per message: at 10,000 events a second
        an info line each cost more than planning them. Erasures stay at info (rare; audited).
        """
        level = logging.INFO if isinstance(event, CoupleErased) else logging.DEBUG
        if not log.is_enabled_for(level):
            return
        log.log(
            level,
            "preference_applied",
            entry_id=entry_id,
            event_type=event.type,
            event_id=str(event.event_id),
            couple_id=event.data.couple_id,
            result=result,
        )

    def routes(self) -> list[BaseRoute]:
        """HTTP routes of this process (served when NUDGE_HTTP_PORT is set)."""
        return health_routes(self.ready, self.watch.notes) + self.metrics.routes()

    async def ready(self) -> dict[str, bool]:
        groups = await group_names(self.redis, self.keys.preferences)
        return {"redis": True, "consumer_group": SCHEDULER_GROUP in groups}

    async def before_start(self) -> None:
        await self.watch.begin()  # joins the state epoch, creates the consumer group

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
            on_missing_group=self.watch.poke,
            held=self._held,
        )
        self._tasks = [
            asyncio.create_task(self.timers.run(self._stop), name="timer-loop"),
            asyncio.create_task(self.reclaimer.run(self._stop), name="reclaim-preferences"),
            asyncio.create_task(self.watch.run(self._stop), name="state-watch"),
        ]
        log.info("scheduler_started", consumer=self.consumer, shards=self.settings.shards)

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

    async def stop(self, deadline: Deadline | None = None) -> None:
        """Stop reading; the batch being applied ends at its next entry, the loops after their
        pass, all by the deadline (default: NUDGE_SHUTDOWN_TIMEOUT from now); then close."""
        deadline = deadline or Deadline.after(self.settings.shutdown_timeout)
        self._stop.set()
        await self.gauges.stop()
        if self.http is not None:
            await self.http.stop()
        await self.broker.stop()  # waits for the batch handler, which stops between entries
        await settle(self._tasks, deadline)
        self._tasks = []
        await self.after_stop()


def _stored(fields: dict[bytes, bytes]) -> bytes:
    """An entry's payload field, or (none given) its fields as JSON, as FastStream takes it."""
    return fields.get(_DATA) or dump_json(fields)


def _read(stored: bytes) -> tuple[bytes, PreferenceEvent | EventRejected]:
    """The payload FastStream's single-entry subscriber hands over, and the event it holds.

    FastStream unwraps its own framing and a legacy {"data": "<string>"} envelope, at the
    cost of two JSON parses per entry. A valid event is neither (its "data" is an object),
    so it is validated as stored first; only a refused one is unwrapped and tried again,
    which gives every entry the same payload and outcome as one at a time.
    """
    try:
        return stored, parse_preference(stored)
    except EventRejected as refused:
        payload, _headers = BinaryMessageFormatV1.parse(stored)
        if payload == stored:
            return stored, refused
    try:
        return payload, parse_preference(payload)
    except EventRejected as exc:
        return payload, exc
