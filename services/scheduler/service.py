"""The scheduler process: a preferences consumer and the timer loop, sharing one Redis client.

The preferences stream is consumed in batches (up to `_BATCH` entries per XREADGROUP): every
entry is read and validated on its own (services/scheduler/entries.py: any bytes in any field
are refused per entry, never failing the batch), the good ones are applied in stream order with
`PreferenceIngest.apply_many` (the same results as one at a time), and then the bad ones go to
the rejected stream with their reason (one round trip, when there are any) and then the handled
entries are deleted and acknowledged (one more). The rejections are written first, and awaited:
a pipeline runs every command even when one before it fails, and under `maxmemory` Redis
refuses the XADD but not XDEL or XACK (they free memory), so in one pipeline a refused event
would vanish, in neither stream. An entry that fails unexpectedly stays pending for the
Reclaimer, which handles it alone (`handle_entry`).

A batch's entries are held from the moment they are read: the Reclaimer re-claims them on every
pass, so however long the batch takes, no replica (nor this one's own sweep) applies them a
second time. A stop is honoured between entries: what was applied is acknowledged, the rest is
left pending (neither deleted nor acknowledged) for another scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple, TypeVar, cast

import structlog
from faststream.middlewares import AckPolicy
from faststream.redis import RedisRouter, StreamSub
from faststream.redis.annotations import RedisBatchStreamMessage
from redis.exceptions import RedisError
from starlette.routing import BaseRoute

from couples_nudge.common.clock import Clock
from couples_nudge.common.health import health_routes
from couples_nudge.common.http import HttpServer, serve
from couples_nudge.common.keys import SCHEDULER_GROUP
from couples_nudge.common.metrics import Metrics
from couples_nudge.common.reclaim import Interrupted, Reclaimer
from couples_nudge.common.refusals import not_now, pause
from couples_nudge.common.runtime import (
    broker_for,
    clock_from,
    collections_held,
    consumer_name,
    redis_client,
)
from couples_nudge.common.shutdown import Deadline, settle, stopped_reading
from couples_nudge.common.state_watch import StateWatcher
from couples_nudge.common.streams import (
    couple_id_in,
    entries_as_read,
    group_names,
    rejected_fields,
)
from couples_nudge.operator.refresher import GaugeRefresher
from couples_nudge.scheduler.entries import Read, read_entry, read_payload
from couples_nudge.scheduler.firing import PRODUCER
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.planning import PlanningError
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import CoupleErased, EventRejected, PreferenceEvent, parse_preference

__all__ = ["SchedulerService"]

log = structlog.get_logger()
SERVICE = "scheduler"
_BATCH: Final = 500  # preferences entries per read: one pipelined apply_many
# Longest stretch of a batch's validation without offering the Reclaimer a refresh (see
# `_read_held`); as `ingest._SLICE_S` is for its planning.
_READ_SLICE_S: Final = 0.05
_Stored = TypeVar("_Stored")  # an entry as its reader takes it: fields, or a stored payload
_T = TypeVar("_T")


class Rejection(NamedTuple):
    """An entry refused with its reason, for the rejected stream."""

    entry_id: str
    payload: bytes
    reason: str


class SchedulerService:
    def __init__(self, settings: SchedulerSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.keys = settings.keys
        self.clock = clock or clock_from(settings)
        self.redis = redis_client(settings)
        self.store = ScheduleStore(self.redis, self.keys, due_maxlen=settings.due_maxlen)
        self.metrics = Metrics(SERVICE, self.keys)
        self.ingest = PreferenceIngest(self.store, self.clock, settings, self.metrics)
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
        self.watch = StateWatcher.for_service(
            self.redis,
            self.keys,
            settings,
            name=self.consumer,
            producer=PRODUCER,
            groups=[(self.keys.preferences, SCHEDULER_GROUP)],
            metrics=self.metrics,
            broker=self.broker,
        )
        self._stop = asyncio.Event()
        self._held: set[str] = set()  # entries being applied here: the Reclaimer keeps them
        self._tasks: list[asyncio.Task[None]] = []
        self.reclaimer: Reclaimer | None = None
        self.http: HttpServer | None = None  # NUDGE_HTTP_PORT
        self.operator_http: HttpServer | None = None  # NUDGE_OPERATOR_PORT

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
            await self.handle_fields(list(zip(ids, data, strict=True)))
            if self._stop.is_set():
                await stopped_reading(self.broker, self.settings.shutdown_timeout.total_seconds())

        return router

    async def handle_fields(self, entries: Sequence[tuple[bytes, Mapping[bytes, bytes]]]) -> None:
        """A batch as the subscriber reads it: (entry id, fields), any bytes in either."""
        with collections_held():  # the batch's objects live until it is stored (runtime.py)
            ids = [eid.decode() for eid, _fields in entries]
            # The reads as a temporary, not a local: they die inside the block, so collection
            # resumes with the batch's objects gone (a local lived past it, and each batch's
            # events were then walked by a collection: +20k instructions an event).
            await self._handle_read(
                ids, await self._read_held(ids, [fields for _eid, fields in entries], read_entry)
            )

    async def handle_batch(self, entries: Sequence[tuple[str, bytes]]) -> list[str]:
        """Validate and apply a batch of preferences entries (entry id, stored payload) in order.

        Each payload is read as FastStream's subscriber reads one (see entries.read_payload).
        Returns the ids of the entries handled (see `_handle_read`).
        """
        with collections_held():
            ids = [entry for entry, _stored in entries]
            stored = [stored for _entry, stored in entries]
            return await self._handle_read(  # the reads as a temporary, as in handle_fields
                ids, await self._read_held(ids, stored, read_payload)
            )

    async def _read_held(
        self, ids: list[str], stored: Sequence[_Stored], read: Callable[[_Stored], Read]
    ) -> list[Read]:
        """Read (validate) a batch's entries in order, holding them from the start: each
        entry's Read, at its id's index.

        Validating a full batch on a starved CPU (a pod held to a small quota) can outlast the
        reclaim idle time, and the Reclaimer refreshes only held entries, only when the event
        loop lets it: so the entries are held before the first is read, and the refresh is
        offered between entries at least every `_READ_SLICE_S`. `_handle_read` releases them.
        """
        self._held.update(ids)
        reads: list[Read] = []
        try:
            since = time.monotonic()
            # Due when `_READ_SLICE_S` has passed with a Reclaimer to offer the refresh to:
            # checked inline per entry (a method call each was ~1k instructions).
            reclaimer = self.reclaimer
            for value in stored:
                if reclaimer is not None and time.monotonic() - since >= _READ_SLICE_S:
                    since = await self._keep_held()
                reads.append(read(value))
        except BaseException:
            self._held.difference_update(ids)
            raise
        return reads

    async def _keep_held(self) -> float:
        """Offer the Reclaimer a refresh of the held entries (it refreshes when its own
        interval is due); the new mark."""
        assert self.reclaimer is not None  # asked only when there is one
        await self.reclaimer.keep_held()
        return time.monotonic()

    async def _handle_read(self, ids: list[str], reads: list[Read]) -> list[str]:
        """Apply the events of a batch of read entries (their ids, and what each holds) in order.

        Bad entries are rejected with their reason, exactly as `handle` does; the good ones are
        applied together. Then the rejections are written (awaited: see the module docstring)
        and every handled entry is deleted and acknowledged (one round trip), and their ids are
        returned. If applying the batch fails unexpectedly (not a Redis error), its entries
        are applied one at a time, and one that fails again stays pending for the Reclaimer
        (neither deleted nor acknowledged). While Redis refuses writes or cannot be reached
        (`refusals.not_now`), the whole batch is tried again here with backoff (see
        `_patiently`); another Redis error leaves the whole batch pending. The entries are
        held (kept claimed by the Reclaimer) while the batch runs; when the service stops
        meanwhile, the batch ends between entries: the entries from the first one not
        applied onwards stay pending.
        """
        if not ids:
            return []
        self._held.update(ids)  # kept claimed by the Reclaimer while the batch runs
        self.metrics.observe_consumed(self.keys.preferences, len(ids))
        try:
            return await self._patiently(lambda: self._apply_read(ids, reads), entries=len(ids))
        except Interrupted:
            return []  # stopping while Redis refused the batch: it stays pending
        finally:
            self._held.difference_update(ids)

    async def _patiently(self, attempt: Callable[[], Awaitable[_T]], **context: object) -> _T:
        """`attempt()`, tried again here with backoff while Redis says "not now" (refusals.py);
        Interrupted once the service stops meanwhile; any other error at once.

        Applying again is safe: every event applies idempotently, as redelivery already
        requires (a revision already stored is ignored; answers and soft bounces not newer
        than the last one applied are stale: feedback.py, consent.py). And the Reclaimer,
        which counts a delivery per try and dead-letters after a few, is not involved: an
        outage of Redis is not the events' fault (issue 15: the notifier waits likewise).
        """
        failures = 0
        while True:
            try:
                return await attempt()
            except RedisError as exc:
                if not not_now(exc):
                    raise
                if self._stop.is_set():
                    raise Interrupted from exc  # stays pending, for another scheduler
                failures += 1
                log.warning(
                    "redis_refused_backing_off",
                    error=type(exc).__name__,
                    failures=failures,
                    **context,
                )
                self.metrics.observe_refusal(exc)
                if self.reclaimer is not None:  # the entries stay claimed here
                    await self.reclaimer.keep_held()
                if await pause(self._stop, failures):
                    raise Interrupted from exc

    async def _apply_read(self, ids: list[str], reads: list[Read]) -> list[str]:
        refused: dict[int, str] = {}
        events: list[tuple[int, PreferenceEvent]] = []
        for index, (_payload, outcome) in enumerate(reads):
            if isinstance(outcome, EventRejected):
                refused[index] = outcome.reason
            else:
                events.append((index, outcome))
        handled = set(range(len(ids)))
        try:
            results: list[str | PlanningError | None] = list(
                await self.ingest.apply_many([event for _, event in events], self._checkpoint)
            )
        except RedisError:
            raise  # nothing is acknowledged: the Reclaimer hands the entries over again
        except Exception:
            log.exception("preference_batch_failed", entries=len(ids))
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
                    log.exception("preference_failed", entry_id=ids[index])
                    handled.discard(index)
                    results.append(None)
        # Stopped before the end: from the first event not applied on, nothing is handled.
        cutoff = events[len(results)][0] if len(results) < len(events) else len(ids)
        outcomes: Counter[str] = Counter()
        erased: dict[bytes, int] = {}  # couple id -> the batch index of its (last) erasure
        each = log.is_enabled_for(logging.DEBUG)  # asked once a batch, not once an event
        since = time.monotonic()  # held until acknowledged: logging 500 events takes a while too
        reclaimer = self.reclaimer  # the refresh checked inline, as in `_read_held`
        for (index, event), result in zip(events, results, strict=False):
            if reclaimer is not None and time.monotonic() - since >= _READ_SLICE_S:
                since = await self._keep_held()
            if isinstance(result, PlanningError):
                refused[index] = str(result)
            elif result is not None:
                outcomes[result] += 1
                # The exact class (a parsed event is one of the union's, never a subclass):
                # isinstance of a pydantic class goes through ABCMeta, ~1.1k instructions.
                if each or type(event) is CoupleErased:
                    self._applied(ids[index], event, result)
                    if result == "erased" and type(event) is CoupleErased:
                        erased[event.data.couple_id.encode()] = index
        refused = {index: reason for index, reason in refused.items() if index < cutoff}
        if erased:  # rare: a batch with an erasure
            refused = _unless_erased(refused, reads, erased)
        if cutoff < len(ids):
            outcomes["left_pending"] = len(ids) - cutoff
        log.info("preferences_batch", entries=len(ids), rejected=len(refused), **outcomes)
        done = [ids[i] for i in sorted(handled) if i < cutoff]
        if self.reclaimer is not None:
            await self.reclaimer.keep_held()  # refreshed if due: the acknowledgement is next
        if refused:  # kept before anything is deleted or acknowledged (the module docstring)
            await self._reject(
                [Rejection(ids[i], reads[i].payload, refused[i]) for i in sorted(refused)]
            )
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
        """Validate and apply one preferences payload; bad input goes to the rejected stream.

        Afterwards the entry is deleted from the preferences stream (the caller acknowledges):
        the stream is a queue into the scheduler and keeps no copy of personal data. The
        subscriber uses `handle_fields`, the Reclaimer `handle_entry`.
        """
        try:
            read: PreferenceEvent | EventRejected = parse_preference(raw)
        except EventRejected as exc:
            read = exc
        await self._handle_one(entry_id, raw, read)

    async def handle_entry(self, entry_id: str, fields: Mapping[bytes, bytes]) -> None:
        """`handle` for an entry as read from the stream (fields of any bytes), as a batch
        reads it; raises (leaving it pending) if applying fails unexpectedly, Interrupted if
        the service stops while Redis refuses it (see `_handle_one`)."""
        await self._handle_one(entry_id, *read_entry(fields))

    async def _handle_one(
        self, entry_id: str, payload: bytes, read: PreferenceEvent | EventRejected
    ) -> None:
        """Apply (or reject) one entry and delete it; tried again while Redis says "not now",
        as a batch is (`_patiently`); Interrupted once the service stops meanwhile."""
        self.metrics.observe_consumed(self.keys.preferences)
        await self._patiently(
            lambda: self._handle_one_try(entry_id, payload, read), entry_id=entry_id
        )

    async def _handle_one_try(
        self, entry_id: str, payload: bytes, read: PreferenceEvent | EventRejected
    ) -> None:
        try:
            if isinstance(read, EventRejected):
                raise read
            result = await self.ingest.apply(read)
        except (EventRejected, PlanningError) as exc:
            reason = exc.reason if isinstance(exc, EventRejected) else str(exc)
            await self._reject([Rejection(entry_id, payload, reason)])  # then deleted
            await self.redis.xdel(self.keys.preferences, entry_id)
            return
        await self.redis.xdel(self.keys.preferences, entry_id)
        self._applied(entry_id, read, result)

    async def _reject(self, rejections: Sequence[Rejection]) -> None:
        """Write the rejected-stream entries of refused payloads in one round trip; raises (a
        RedisError) unless Redis took every one. Counted and logged once written. Awaited
        before the entries are deleted or acknowledged (see the module docstring)."""
        written = [
            rejected_fields(
                source=self.keys.preferences,
                entry_id=rejection.entry_id,
                raw=rejection.payload,
                reason=rejection.reason,
                service=SERVICE,
            )
            for rejection in rejections
        ]
        async with self.redis.pipeline(transaction=False) as pipe:
            for fields in written:
                pipe.xadd(
                    self.keys.rejected,
                    cast("Any", fields),
                    maxlen=self.settings.rejected_maxlen,
                    approximate=True,
                )
            await pipe.execute()
        for rejection, fields in zip(rejections, written, strict=True):
            self.metrics.observe_rejected(self.keys.preferences)
            log.warning("preference_rejected", entry_id=rejection.entry_id, reason=fields["reason"])

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

    def operator_routes(self) -> list[BaseRoute]:
        """Health and metrics: on NUDGE_OPERATOR_PORT when set, else NUDGE_HTTP_PORT."""
        return health_routes(self.ready, self.watch.notes) + self.metrics.routes()

    def public_routes(self) -> list[BaseRoute]:
        """None: the scheduler serves only operators (give it NUDGE_OPERATOR_PORT alone)."""
        return []

    async def ready(self) -> dict[str, bool]:
        groups = await group_names(self.redis, self.keys.preferences)
        return {"redis": True, "consumer_group": SCHEDULER_GROUP in groups}

    async def before_start(self) -> None:
        await self.watch.begin()  # joins the state epoch, creates the consumer group

    async def after_start(self) -> None:
        self._stop.clear()

        async def again(_raw: bytes, entry: str, fields: dict[bytes, bytes]) -> None:
            await self.handle_entry(entry, fields)

        self.reclaimer = Reclaimer.from_settings(
            self.redis,
            self.settings,
            stream=self.keys.preferences,
            group=SCHEDULER_GROUP,
            consumer=self.consumer,
            handle=again,
            on_missing_group=self.watch.poke,
            held=self._held,
            delete_buried=True,  # as every handled entry is: raw input, named people
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
        self.http, self.operator_http = await serve(
            self.public_routes(),
            self.operator_routes(),
            host=self.settings.http_host,
            http_port=self.settings.http_port,
            operator_port=self.settings.operator_port,
            deadline_s=self.settings.http_deadline_seconds,
        )
        if self.operator_http is not None or self.http is not None:
            self.gauges.start()  # the Redis gauges matter only where /metrics is served

    async def stop(self, deadline: Deadline | None = None) -> None:
        """Stop reading; the batch being applied ends at its next entry, the loops after their
        pass, all by the deadline (default: NUDGE_SHUTDOWN_TIMEOUT from now); then close."""
        deadline = deadline or Deadline.after(self.settings.shutdown_timeout)
        self._stop.set()
        await self.gauges.stop()
        for server in (self.http, self.operator_http):
            if server is not None:
                await server.stop()
        await self.broker.stop()  # waits for the batch handler, which stops between entries
        await settle(self._tasks, deadline)
        self._tasks = []
        await self.after_stop()


def _unless_erased(
    refused: dict[int, str], reads: Sequence[Read], erased: Mapping[bytes, int]
) -> dict[int, str]:
    """The refusals to write, but those of a couple erased later in the same batch: its
    erasure scrubbed the rejected stream before they were written (the scrub would have taken
    them, had they been written first). A refused event after the erasure is kept."""
    return {
        index: reason
        for index, reason in refused.items()
        if erased.get(couple_id_in(reads[index].payload), -1) < index
    }
