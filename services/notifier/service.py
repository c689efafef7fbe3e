"""The notifier process: consumes every shard's due stream, delivers, publishes outcomes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Coroutine
from datetime import timedelta
from typing import Any, Final

import structlog
from faststream import AckPolicy
from faststream.redis import RedisRouter, StreamSub
from faststream.redis.annotations import RedisBatchStreamMessage
from redis.exceptions import RedisError
from starlette.routing import BaseRoute

from couples_nudge.common import dead_letters
from couples_nudge.common.autopipeline import AutoPipeline
from couples_nudge.common.clock import Clock, epoch_ms
from couples_nudge.common.dead_letters import bury
from couples_nudge.common.health import health_routes
from couples_nudge.common.http import HttpServer, serve
from couples_nudge.common.keys import NOTIFIER_GROUP, couple_digest
from couples_nudge.common.metrics import Metrics
from couples_nudge.common.reclaim import Interrupted, Reclaimer
from couples_nudge.common.refusals import not_now, pause
from couples_nudge.common.runtime import broker_for, clock_from, consumer_name, redis_client
from couples_nudge.common.shutdown import Deadline, settle, stopped_reading
from couples_nudge.common.state_watch import StateWatcher
from couples_nudge.common.streams import (
    DATA_FIELD,
    entries_as_read,
    group_names,
    publish,
    reject,
    xadd_command,
)
from couples_nudge.notifier.admission import Places
from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.channels.base import Channel
from couples_nudge.notifier.channels.dkim import DkimSigner
from couples_nudge.notifier.channels.email import SmtpChannel
from couples_nudge.notifier.delivery import PRODUCER, Boxed, Delivery
from couples_nudge.notifier.record_expiry import RecordExpiry
from couples_nudge.notifier.retries import RetryPolicy, RetryQueue, failure_reason, jitter
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.state import NotifierState
from couples_nudge.operator.dashboard import StatusPage
from couples_nudge.operator.refresher import GaugeRefresher
from couples_nudge_schemas import Channel as ChannelName
from couples_nudge_schemas import EventRejected, NudgeDue, OutcomeEvent, parse_due

__all__ = ["NotifierService", "default_channels"]

log = structlog.get_logger()
SERVICE = "notifier"
DATA_KEY = DATA_FIELD.encode()


def default_channels(settings: NotifierSettings) -> dict[ChannelName, Channel]:
    """Email always; Web Push and the webhook only when configured (see settings.py)."""
    from couples_nudge.notifier.channels.webhook import WebhookChannel
    from couples_nudge.notifier.channels.webpush import WebPushChannel

    channels: dict[ChannelName, Channel] = {
        "email": SmtpChannel(
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_user,
            password=settings.smtp_password,
            timeout=settings.smtp_timeout,
            concurrency=settings.smtp_concurrency,
            dkim=DkimSigner.from_settings(settings),
        )
    }
    if settings.vapid_private_key is not None and settings.vapid_subject is not None:
        channels["push"] = WebPushChannel(
            vapid_private_key=settings.vapid_private_key,
            subject=settings.vapid_subject,
            ttl=settings.push_ttl,
            timeout=settings.push_timeout,
            concurrency=settings.push_concurrency,
        )
    if settings.webhook_url is not None and settings.webhook_secret is not None:
        channels["webhook"] = WebhookChannel(
            url=settings.webhook_url,
            secret=settings.webhook_secret,
            timeout=settings.push_timeout,
            concurrency=settings.push_concurrency,
        )
    if settings.fcm_enabled or settings.apns_enabled:
        from couples_nudge.notifier.channels.mobile_setup import mobile_channel

        channels["mobile"] = mobile_channel(settings)
    return channels


class NotifierService:
    def __init__(
        self,
        settings: NotifierSettings,
        clock: Clock | None = None,
        channels: dict[ChannelName, Channel] | None = None,
    ) -> None:
        self.settings = settings
        self.keys = settings.keys
        self._outcomes_maxlen = settings.outcomes_maxlen  # read per nudge: once here
        self.clock = clock or clock_from(settings)
        self.redis = redis_client(settings)
        self.channels = channels if channels is not None else default_channels(settings)
        self.pipe = AutoPipeline(self.redis)  # concurrent nudges share round trips
        self.state = NotifierState(self.redis, self.keys, self.pipe)
        self._stop = asyncio.Event()
        self.delivery = Delivery(
            self.state, self.channels, load_catalog(), self.clock, settings, stopping=self._stop
        )
        self.consumer = consumer_name(settings, SERVICE)
        self.delivered = 0
        self.metrics = Metrics(SERVICE, self.keys)  # operators' view: see routes(), start()
        self.gauges = GaugeRefresher(
            self.redis, self.metrics, self.clock, interval=settings.metrics_refresh_seconds
        )
        self.http: HttpServer | None = None  # NUDGE_HTTP_PORT
        self.operator_http: HttpServer | None = None  # NUDGE_OPERATOR_PORT
        self.retry_policy = RetryPolicy(
            base=settings.retry_base, cap=settings.retry_cap, max_attempts=settings.max_attempts
        )
        self.retries = RetryQueue(self.redis, self.keys, self.clock, due_maxlen=settings.due_maxlen)
        self.reclaimers: list[Reclaimer] = []
        self._held: dict[str, set[str]] = {}  # due stream -> entry ids being handled here
        # NUDGE_MAX_IN_FLIGHT bounds the whole process, not each shard's subscriber: with
        # NUDGE_SHARDS=8 the subscribers alone would start 8x as many.
        self._in_flight = Places(settings.max_in_flight)
        # Occurrence ids being delivered here (`handle`), each with the event its twins wait
        # on (made only when one comes).
        self._delivering: dict[str, asyncio.Event | None] = {}
        self._running: set[asyncio.Task[None]] = set()  # entries being handled (_run_one)
        self._tasks: list[asyncio.Task[None]] = []
        self.broker = broker_for(settings)
        self.broker.include_router(self._router())
        # A Redis that came back empty: noticed, reported once, groups and subscribers back.
        self.watch = StateWatcher.for_service(
            self.redis,
            self.keys,
            settings,
            name=self.consumer,
            producer=PRODUCER,
            groups=[(stream, NOTIFIER_GROUP) for stream in self.keys.all_due()],
            metrics=self.metrics,
            broker=self.broker,
        )

    def _router(self) -> RedisRouter:
        router = RedisRouter()
        for stream in self.keys.all_due():
            sub = StreamSub(
                stream,
                group=NOTIFIER_GROUP,
                consumer=self.consumer,
                batch=True,
                max_records=self.settings.batch_size,
            )
            # Acknowledged by us, one entry at a time, when its work is durable (_run_one).
            router.subscriber(stream=sub, ack_policy=AckPolicy.MANUAL, parser=entries_as_read)(
                self._admit_for(stream)
            )
        return router

    def _admit_for(self, stream: str) -> Callable[[RedisBatchStreamMessage], Awaitable[None]]:
        held = self._held.setdefault(stream, set())

        async def on_due_batch(msg: RedisBatchStreamMessage) -> None:
            """Start every entry of a batch as its own task and return: the subscriber reads
            the next batch while these run. Back-pressure: at most NUDGE_MAX_IN_FLIGHT
            entries run in this process, so this waits for a free place per entry (a free
            one is taken without waiting: admission.py)."""
            raw_message = msg.raw_message
            entries = [raw_id.decode() for raw_id in raw_message["message_ids"]]
            debug = log.is_enabled_for(logging.DEBUG)  # asked once a batch, not once a nudge
            held.update(entries)  # ours from now on: this stream's Reclaimer keeps them claimed
            places, stop, running = self._in_flight, self._stop, self._running
            create_task = asyncio.get_running_loop().create_task
            for n, (entry, fields) in enumerate(zip(entries, raw_message["data"], strict=True)):
                if not places.take_now():
                    await places.take()
                if stop.is_set():  # stopping: the rest stay pending, for others
                    places.give()  # handed on at once: see `_admitted`
                    held.difference_update(entries[n:])
                    await stopped_reading(
                        self.broker, self.settings.shutdown_timeout.total_seconds()
                    )
                    return
                running.add(create_task(self._run_one(stream, entry, fields, held, debug)))

        on_due_batch.__name__ = f"on_due_{stream.rsplit(':', 1)[-1].strip('{}')}"
        return on_due_batch

    async def _admitted(self) -> bool:
        """Wait for a place among the NUDGE_MAX_IN_FLIGHT; False once the service is stopping.

        A stop gives one place more (`stop`); whoever gets a place after the stop hands it
        on at once, so every waiting batch wakes, returns, and lets FastStream stop without
        cancelling a handler (and without waiting for a send to finish to free a place).
        """
        await self._in_flight.take()
        if self._stop.is_set():
            self._in_flight.give()
            return False
        return True

    async def _run_one(
        self, stream: str, entry: str, fields: dict[bytes, bytes], held: set[str], debug: bool
    ) -> None:
        """Handle one entry, then acknowledge it; on failure it stays pending (Reclaimer).

        The acknowledgement is queued, not awaited: the entry's work is durable once `handle`
        returns, and its XACK goes in the auto-pipeline's next round trip with the others of
        its stream (a failed XACK is logged there; the entry stays pending and is handled
        again, skipping what is recorded). So the place and the task are free a round trip
        sooner, and no future or task step is spent per entry on the reply. A stop drains
        the queued acknowledgements (`stop`).

        Cancelled at the shutdown deadline, it is neither acknowledged nor logged: the entry
        stays pending for another replica. The task leaves `_running` itself (no done
        callback to schedule per entry).
        """
        raw = fields.get(DATA_KEY, b"")
        try:
            try:  # `_handle_patiently`, one coroutine frame less while no Redis error comes
                await self.handle(raw, entry, stream, fields, debug=debug)
            except RedisError as exc:
                await self._handle_patiently(raw, entry, stream, fields, first=exc)
            self.pipe.ack_unawaited(stream, NOTIFIER_GROUP, entry)  # one XACK per stream a trip
        except Exception as exc:
            log.warning("nudge_failed_will_retry", entry_id=entry, error=type(exc).__name__)
        finally:
            held.discard(entry)
            self._in_flight.give()
            self._running.discard(asyncio.current_task())

    async def _handle_patiently(
        self,
        raw: bytes,
        entry_id: str,
        stream: str,
        fields: dict[bytes, bytes] | None = None,
        *,
        first: RedisError | None = None,
    ) -> None:
        """`handle`, tried again in this process, with backoff, while Redis refuses writes or
        cannot be reached (OOM, READONLY, NOREPLICAS, a lost connection: refusals.py).

        Such a failure is not the entry's: leaving it pending would have the Reclaimer count a
        delivery per try and dead-letter it after a few. A try that failed so sent nothing
        (the reservation before every send failed) or recorded what it sent (the next try
        skips it and publishes its outcome from the outbox). Other errors, and any error once
        the service is stopping, leave the entry pending as before. `first`: the error of a
        try the caller made itself (`_run_one`), handled as this loop's first."""
        failures = 0
        error = first
        while True:
            if error is None:
                try:
                    await self.handle(raw, entry_id, stream, fields)
                    return
                except RedisError as exc:
                    error = exc
            if not not_now(error) or self._stop.is_set():
                raise error
            failures += 1
            log.warning(
                "redis_refused_backing_off",
                entry_id=entry_id,
                error=type(error).__name__,
                failures=failures,
            )
            self.metrics.observe_refusal(error)
            error = None
            await pause(self._stop, failures)

    async def handle(
        self,
        raw: bytes,
        entry_id: str,
        stream: str,
        fields: dict[bytes, bytes] | None = None,
        *,
        debug: bool | None = None,
    ) -> None:
        """Deliver one NudgeDue, publish its outcomes, schedule what must be retried.

        Returns only when all of that is durable in Redis; the caller then acknowledges.
        `debug`: whether debug lines are logged, when the caller asked once for a batch (a
        structlog `is_enabled_for` ~1.5k instructions); None: asked here.
        """
        self.metrics.observe_consumed(stream)
        try:
            due = parse_due(raw)
            # A first delivery has no `attempt` field: 1, as `_attempt` answers, without its
            # regex (~1.5k instructions).
            attempt = _attempt(fields) if fields is not None and b"attempt" in fields else 1
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
            # Its copy on the rejected stream is the one an erasure scrubs: the entry itself
            # (raw input, which may name people) leaves the due stream once the copy is
            # written, as a refused preference event leaves the preferences stream.
            await self.redis.xdel(stream, entry_id)
            self.metrics.observe_rejected(stream)
            log.warning("nudge_due_rejected", entry_id=entry_id, reason=exc.reason)
            return
        # One delivery of an occurrence at a time in this process: two entries of one
        # occurrence in flight together (a replayed letter beside its original, a publisher
        # writing one twice) both found nothing sent and both sent. The second now waits,
        # then finds the first's records and sends nothing. A dict test and two updates a
        # nudge; an event to wait on only for such a twin.
        occurrence = due.data.occurrence_id
        if occurrence in self._delivering:
            await self._after_twin(occurrence)
        self._delivering[occurrence] = None
        try:
            result = await self.delivery.deliver(due)
            outcomes, retry = result.outcomes, result.retry
            delay = None
            if retry:
                delay = self.retry_policy.delay(attempt, jitter())
                if delay is not None:  # not sooner than a provider asked (Retry-After, bounded)
                    asked = max(r.error.retry_after or 0.0 for r in retry)
                    delay = max(delay, timedelta(seconds=asked))
                else:  # out of attempts: report, keep for operators
                    outcomes = list(outcomes)  # a loop: a comprehension here would make `self`,
                    for r in retry:  # `due` and `attempt` cells on every call of `handle`
                        outcomes.append(self.delivery.gave_up(due, r, attempt))
                    letter = await bury(
                        self.redis,
                        self.keys.dead,
                        source=stream,
                        entry_id=entry_id,
                        reason=f"gave up after {attempt} attempts: {retry[0].error.detail}",
                        attempts=attempt,
                        data=raw,
                        couple_id=due.data.couple_id,
                        maxlen=self.settings.dead_maxlen,
                    )
                    await self._unless_erased(letter, due)
            if result.feedback:  # the listening cadence's "ignored" streaks, for the scheduler
                await publish(
                    self.redis,
                    self.keys.preferences,
                    result.feedback,
                    maxlen=self.settings.preferences_maxlen,
                )
            if outcomes:
                await self._publish(due.data.couple_id, outcomes, result.boxed)
            if retry and delay is not None:
                shard = self.keys.shard_of(due.data.couple_id)
                await self.retries.schedule(shard, raw, attempt + 1, delay)
                for r in retry:
                    self.metrics.observe_retry(r.channel)
                    # One line per failed send, at the default level: a failing relay is visible
                    # before anything is dead-lettered. Ids and a reason category only.
                    log.warning(
                        "nudge_delivery_failed",
                        event_id=str(due.event_id),
                        occurrence_id=due.data.occurrence_id,
                        kind=due.data.kind,
                        channel=r.channel,
                        reason=failure_reason(r.error.detail),
                        attempt=attempt,
                        retry_in_s=round(delay.total_seconds(), 1),
                    )
            elif retry:  # buried above: one error line for the nudge that gave up
                log.error(
                    "nudge_dead_lettered",
                    event_id=str(due.event_id),
                    occurrence_id=due.data.occurrence_id,
                    couple_id=due.data.couple_id,
                    kind=due.data.kind,
                    channels=sorted({r.channel for r in retry}),
                    reasons=sorted({failure_reason(r.error.detail) for r in retry}),
                    attempts=attempt,
                )
            self.delivered += 1
            if debug is None:
                debug = log.is_enabled_for(logging.DEBUG)
            if not debug:  # its arguments alone cost ~2 us a nudge
                return
            # Debug: at thousands a second, per-nudge lines are the metrics' and outcomes' job.
            log.debug(
                "nudge_handled",
                event_type=due.type,
                event_id=str(due.event_id),
                occurrence_id=due.data.occurrence_id,
                kind=due.data.kind,
                attempt=attempt,
                outcomes=[o.type.split(".")[1] for o in outcomes],
                retry_in_s=None if delay is None else round(delay.total_seconds(), 1),
            )
        finally:
            waiting = self._delivering.pop(occurrence)
            if waiting is not None:
                waiting.set()

    async def _after_twin(self, occurrence: str) -> None:
        """Wait until no delivery of `occurrence` is in flight here."""
        delivering = self._delivering
        while occurrence in delivering:
            waiting = delivering[occurrence]
            if waiting is None:
                waiting = delivering[occurrence] = asyncio.Event()
            await waiting.wait()

    async def _unless_erased(self, letter: str, due: NudgeDue) -> None:
        """Take a nudge's dead letter back if its couple was erased since the nudge came due:
        the erasure, applied while the last attempt was in flight, scrubbed the dead stream
        before the letter was written (the scrub would have taken it). Asked after writing,
        so an erasure from then on finds the letter itself. Only on giving up: rare."""
        couple_id = due.data.couple_id
        tombstones = self.keys.tombstones(self.keys.shard_of(couple_id))
        erased = await self.redis.zscore(tombstones, couple_digest(couple_id))
        if erased is not None and erased >= epoch_ms(due.occurred_at):
            await self.redis.xdel(self.keys.dead, letter)

    async def _publish(
        self, couple_id: str, outcomes: list[OutcomeEvent], boxed: dict[int, Boxed]
    ) -> None:
        """XADD every outcome (one from the couple's outbox as it was written there), then
        delete the published ones from the outbox; then raise the first failure, if any: the
        next try publishes only what is still in the outbox (and what is decided afresh)."""
        maxlen, stream, call = self._outcomes_maxlen, self.keys.outcomes, self.pipe.call
        entries: list[Boxed | None] = []
        replies: list[asyncio.Future[Any]] = []
        # All queued before the first await: they travel together, answered in order. (Loops,
        # not comprehensions: each comprehension is a frame of its own, ~1-2k instructions.)
        for o in outcomes:
            entry = boxed.get(id(o))  # DeliveryResult.boxed: by the outcome's id()
            entries.append(entry)
            replies.append(call(*xadd_command(stream, o if entry is None else entry.data, maxlen)))
        published: list[OutcomeEvent] = []
        fields: list[str] = []
        failure: Exception | None = None
        for n, reply in enumerate(replies):  # not zip(strict=True): its keyword costs ~1.6k
            try:
                await reply  # a future, not a task: no gather needed
            except Exception as exc:
                failure = failure or exc
            else:
                published.append(outcomes[n])
                entry = entries[n]
                if entry is not None:
                    fields.append(entry.field)
        if fields:
            await self.state.unbox(couple_id, fields)
        self.metrics.observe_outcomes(published)
        if failure is not None:
            raise failure

    def operator_routes(self) -> list[BaseRoute]:
        """Health, metrics and the /status page: on NUDGE_OPERATOR_PORT when it is set, else
        beside the public routes on NUDGE_HTTP_PORT. Never routed from the internet."""
        dead = self.keys.dead
        page = StatusPage(
            self.redis,
            self.keys,
            self.clock,
            token=self.settings.operator_token,
            list_dead=lambda count: dead_letters.list_dead(self.redis, dead, count),
            replay=lambda ids: dead_letters.replay(self.redis, dead, ids),
        )
        return health_routes(self.ready, self.watch.notes) + self.metrics.routes() + page.routes()

    def public_routes(self) -> list[BaseRoute]:
        """What people and providers reach from the internet (the Ingress routes only these):
        on NUDGE_HTTP_PORT."""
        from couples_nudge.notifier.action_routes import action_routes
        from couples_nudge.notifier.unsubscribe_routes import unsubscribe_routes
        from couples_nudge.notifier.webhooks.routes import report_routes

        return (
            unsubscribe_routes(self.redis, self.settings, self.clock)
            + action_routes(self.redis, self.settings, self.clock, self.metrics)
            + report_routes(self.redis, self.settings, self.clock, self.metrics)
        )

    async def ready(self) -> dict[str, bool]:
        present = [NOTIFIER_GROUP in await group_names(self.redis, s) for s in self.keys.all_due()]
        return {"redis": True, "consumer_groups": all(present)}

    async def before_start(self) -> None:
        await self.watch.begin()  # joins the state epoch, creates the consumer groups

    async def after_stop(self) -> None:
        for channel in self.channels.values():
            await channel.close()
        await self.redis.aclose()

    def _background(self) -> list[Coroutine[Any, Any, None]]:
        loops: list[Coroutine[Any, Any, None]] = [
            self.retries.run(self._stop, self.settings.retry_poll_seconds),
            self.watch.run(self._stop),
            RecordExpiry(
                self.redis,
                self.keys,
                retention=self.settings.idempotency_retention,
                repeat_window=self.settings.repeat_window,
            ).run(self._stop),
        ]
        for stream in self.keys.all_due():

            async def again(
                raw: bytes, entry: str, fields: dict[bytes, bytes], s: str = stream
            ) -> None:
                if not await self._admitted():
                    raise Interrupted  # stopping: the entry stays pending
                try:
                    await self._handle_patiently(raw, entry, s, fields)
                finally:
                    self._in_flight.give()

            reclaimer = Reclaimer.from_settings(
                self.redis,
                self.settings,
                stream=stream,
                group=NOTIFIER_GROUP,
                consumer=self.consumer,
                handle=again,
                held=self._held.setdefault(stream, set()),
                on_missing_group=self.watch.poke,
            )
            self.reclaimers.append(reclaimer)
            loops.append(reclaimer.run(self._stop))
        return loops

    async def start(self) -> None:
        await self.before_start()  # reaches Redis first: an unreachable one is the only line
        if "email" in self.channels and not self.settings.unsubscribe_enabled:
            # Gmail and Yahoo require one-click unsubscribe (RFC 8058) of bulk senders.
            log.warning(
                "email_without_unsubscribe",
                hint="set NUDGE_PUBLIC_URL and NUDGE_UNSUBSCRIBE_SECRETS: without them emails "
                "carry no one-click unsubscribe link and bounces cannot be mapped to nudges",
            )
        self._stop.clear()
        self._in_flight = Places(self.settings.max_in_flight)  # see `stop`
        await self.broker.start()
        self._tasks = [asyncio.create_task(loop) for loop in self._background()]
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
        """Stop reading and admitting; let the deliveries in flight finish until the deadline
        (default: NUDGE_SHUTDOWN_TIMEOUT from now), cancel the rest; then close connections.

        A delivery cancelled at the deadline is not acknowledged: its entry stays pending and
        another replica's reclaimer sends it (the idempotency records skip what was sent).
        """
        deadline = deadline or Deadline.after(self.settings.shutdown_timeout)
        self._stop.set()  # loops end their pass; reclaimers stop between entries
        self._in_flight.give()  # wakes a batch waiting for a place: see `_admitted`
        await self.gauges.stop()
        for server in (self.http, self.operator_http):
            if server is not None:
                await server.stop()
        await self.broker.stop()  # prompt: its handlers admit nothing more and return
        cancelled, _ = await asyncio.gather(
            settle(set(self._running), deadline), settle(self._tasks, deadline)
        )
        if cancelled:  # info: a stop with sends still hanging is normal, and handled
            log.info("deliveries_left_pending", deliveries=cancelled)
        self._tasks = []
        with contextlib.suppress(TimeoutError):  # acknowledgements of what finished
            await asyncio.wait_for(self.pipe.drain(), timeout=max(1.0, deadline.remaining()))
        await self.after_stop()


_ATTEMPT: Final = re.compile(rb"[1-9][0-9]{0,5}")


def _attempt(fields: dict[bytes, bytes] | None) -> int:
    """The entry's `attempt` field (the retry queue writes it), 1 when absent.

    Any bytes can be there: what is not a small positive number is refused like a bad event.
    """
    value = (fields or {}).get(b"attempt", b"1")
    if _ATTEMPT.fullmatch(value) is None:
        raise EventRejected("attempt: must be a whole number from 1 to 999999")
    return int(value)
