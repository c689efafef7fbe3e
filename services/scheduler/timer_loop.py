"""The timer loop: claim what is due, publish NudgeDue, re-arm. Safe with any number of replicas.

Per shard and batch: 1 Lua call reads the due timers with their records, then 1 Lua call per
chunk of 200 compare-and-sets every timer score and publishes atomically, and 1 pipeline for
missed/dropped outcomes. A replica that loses the compare-and-set for a timer simply moves on;
in a burst, replicas read different slots of the backlog so they rarely compute the same batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

import structlog
from redis.exceptions import RedisError

from schemas import NudgeKind, NudgeSuppressed, NudgeSuppressedData, SuppressionReason
from services.common.clock import Clock, epoch_ms, from_ms
from services.common.metrics import Metrics
from services.common.streams import publish
from services.scheduler.firing import (
    PRODUCER,
    Decision,
    DueTemplate,
    Timing,
    occurrence_id,
    timing,
)
from services.scheduler.planning import Occurrence, QuietWindow, Schedule, occurrence_at
from services.scheduler.records import audience_of, decode_record, split_joined
from services.scheduler.rules import CronRule, Rule
from services.scheduler.settings import SchedulerSettings
from services.scheduler.store import Fire, ScheduleStore

__all__ = ["TimerLoop", "shard_round"]

log = structlog.get_logger()
_RETRY_BROKEN_MS = 3_600_000
_OUTCOME_CHUNK = 1000
_CHUNK = 200  # timers per FIRE call; a batch is several chunks, fired while the next computes
_IN_FLIGHT = 2  # FIRE calls sent ahead of their replies
# (rule, zone, quiet hours, nominal ms, score, grace): what a schedule's Timing depends on,
# besides `now`; with it the Timing and the next fire and nominal instants in ms.
_TimingKey = tuple[Rule, str, tuple[QuietWindow, ...], int, int, timedelta]
_Timed = tuple[Timing, int | None, int | None]
# (kind code, "<spec>|<rule>", zones, quiet hours, nominal ms, score): as the key above, in the
# record's own text (split_joined), plus the audience; with it what a plain fire of such a
# schedule needs: the NudgeDue template, the next fire and nominal ms, and what is counted.
_BurstKey = tuple[str, str, str, str, str, str, str, int]
_Fired = tuple[NudgeKind, timedelta]
_Burst = tuple[DueTemplate, int | None, int | None, _Fired]
_Firing = tuple["asyncio.Task[set[str]]", dict[str, tuple[Decision, Schedule]], dict[str, _Fired]]


class TimerLoop:
    def __init__(
        self,
        store: ScheduleStore,
        clock: Clock,
        settings: SchedulerSettings,
        *,
        on_fired: Callable[[Decision, Schedule], None] | None = None,
        metrics: Metrics | None = None,
        replica: str = "",
    ) -> None:
        self.replica = replica  # this process's consumer name: where its shard round starts
        self.store = store
        self.clock = clock
        self.settings = settings
        self.keys = settings.keys
        self.on_fired = on_fired
        self.metrics = metrics if metrics is not None else Metrics("scheduler", self.keys)
        self.fired = 0
        self.missed = 0

    async def tick(self, shard: int) -> int:
        """Handle one batch of due timers of one shard; returns how many were due.

        The batch is fired in chunks: each chunk's FIRE call runs in Redis while the next
        chunk is computed here, so the two cores work side by side. Up to `_IN_FLIGHT` calls
        are sent ahead, so that Redis has the next chunk as soon as it finishes one.
        """
        now = self.clock.now()
        now_ms = epoch_ms(now)
        due = await self.store.due_records(
            shard, now_ms, self.settings.batch_size, pick=random.randrange(1 << 30)
        )
        if not due:
            return 0
        # FIRE calls in flight, oldest first, each with what its chunk decided.
        firing: deque[_Firing] = deque()
        timings: dict[_TimingKey, _Timed] = {}  # shared by the batch's schedules (a burst)
        # Plain fires skip the Decision and Schedule: only when nobody looks at them per fire.
        bursts: dict[_BurstKey, _Burst | Literal[False]] | None = (
            {} if self.on_fired is None and not log.is_enabled_for(logging.DEBUG) else None
        )
        try:
            for start in range(0, len(due), _CHUNK):
                steps, decisions, plain = self._steps(
                    due[start : start + _CHUNK], now, timings, bursts
                )
                if len(firing) == _IN_FLIGHT:
                    await self._reported(firing[0], now_ms)
                    firing.popleft()
                task = asyncio.create_task(self.store.fire(shard, steps))
                firing.append((task, decisions, plain))
                await asyncio.sleep(0)  # let the task send the call before computing on
            while firing:
                await self._reported(firing[0], now_ms)
                firing.popleft()
        finally:
            for task, _, _ in firing:  # an error above: do not leave a call unobserved
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        return len(due)

    async def _reported(self, call: _Firing, now_ms: int) -> None:
        task, decisions, plain = call
        await self._report(await task, decisions, plain, now_ms=now_ms)

    def _steps(
        self,
        due: list[tuple[str, int, bytes | None]],
        now: datetime,
        timings: dict[_TimingKey, _Timed],
        bursts: dict[_BurstKey, _Burst | Literal[False]] | None,
    ) -> tuple[list[Fire], dict[str, tuple[Decision, Schedule]], dict[str, _Fired]]:
        steps: list[Fire] = []
        decisions: dict[str, tuple[Decision, Schedule]] = {}
        plain: dict[str, _Fired] = {}
        for sid, score, raw in due:
            if raw is None:  # a timer without a record (erased meanwhile): remove it
                steps.append(Fire(sid, score, None, None, None))
                continue
            if bursts is not None:
                try:
                    made = self._plain_step(sid, score, raw, now, timings, bursts)
                except Exception:  # whatever it is, the general path below decides (and logs)
                    made = None
                if made is not None:
                    steps.append(made[0])
                    plain[sid] = made[1]
                    continue
            try:
                step, decided = self._step(sid, score, raw, now, timings)
            except Exception:  # one broken record must not stop every other schedule
                log.exception("schedule_failed", schedule_id=sid)
                step, decided = Fire(sid, score, score + _RETRY_BROKEN_MS, None, None), None
            steps.append(step)
            if decided is not None:
                decisions[sid] = decided
        return steps, decisions, plain

    def _plain_step(
        self,
        sid: str,
        score: int,
        raw: bytes,
        now: datetime,
        timings: dict[_TimingKey, _Timed],
        bursts: dict[_BurstKey, _Burst | Literal[False]],
    ) -> tuple[Fire, _Fired] | None:
        """`_step` for a schedule that publishes on time, without decoding it: what schedules
        of one shape share is computed once (`_burst`); None means "take `_step`"."""
        parts = split_joined(raw)
        if parts is None:  # a legacy record
            return None
        seq, nominal, shape, rev, id0, zone0, id1, zone1, q0, q1 = parts
        couple_id, code, _ = sid.split("/", 2)
        key = (code, shape, zone0, zone1, q0, q1, nominal, score)
        burst = bursts.get(key)
        if burst is None:
            burst = bursts[key] = self._burst(sid, score, raw, shape, now, timings)
        if burst is False:
            return None
        template, next_fire_ms, next_nominal_ms, fired = burst
        payload = template.payload(sid, couple_id, (id0, id1), int(seq), int(rev))
        if payload is None:
            return None
        return Fire(sid, score, next_fire_ms, next_nominal_ms, payload), fired

    def _burst(
        self,
        sid: str,
        score: int,
        raw: bytes,
        shape: str,
        now: datetime,
        timings: dict[_TimingKey, _Timed],
    ) -> _Burst | Literal[False]:
        """What schedules of `sid`'s shape share when they publish on time and nothing else;
        False when they do something else (missed, dropped, late) or cannot share it."""
        step, (decision, schedule) = self._step(sid, score, raw, now, timings)
        due = decision.publish
        if (
            due is None
            or decision.missed
            or decision.dropped is not None
            or not isinstance(schedule.rule, CronRule)  # a spread rule is seeded per schedule
        ):
            return False
        audience, alternate = audience_of(shape)
        template = DueTemplate.of(due, audience) if alternate == schedule.alternate else None
        if template is None:
            return False
        fired = (schedule.kind, decision.lateness)
        return template, step.next_fire_ms, step.next_nominal_ms, fired

    def _step(
        self, sid: str, score: int, raw: bytes, now: datetime, timings: dict[_TimingKey, _Timed]
    ) -> tuple[Fire, tuple[Decision, Schedule]]:
        record = decode_record(sid, raw)
        schedule = record.schedule
        grace = self.settings.grace(schedule.kind)
        key = (schedule.rule, schedule.timezone, schedule.quiet, record.nominal_ms, score, grace)
        timed = timings.get(key)
        if timed is None:  # `now` is the batch's: the key holds everything else timing reads
            current = occurrence_at(schedule, from_ms(record.nominal_ms))
            if epoch_ms(current.fire_at) != score:  # the score is authoritative (deferrals)
                current = Occurrence(current.nominal, from_ms(score), current.note, current.dropped)
            decided = timing(schedule, current, now=now, grace=grace)
            nxt = decided.next
            timed = timings[key] = (
                decided,
                None if nxt is None else epoch_ms(nxt.fire_at),
                None if nxt is None else epoch_ms(nxt.nominal),
            )
        decided, next_fire_ms, next_nominal_ms = timed
        decision = decided.decision(schedule, record.seq, now)
        publish = decision.publish
        step = Fire(
            sid,
            score,
            next_fire_ms,
            next_nominal_ms,
            None if publish is None else publish.payload(),
        )
        return step, (decision, schedule)

    async def _report(
        self,
        lost: set[str],
        decisions: dict[str, tuple[Decision, Schedule]],
        plain: dict[str, _Fired],
        now_ms: int,
    ) -> None:
        """Count and report what the FIRE call did: everything but what it `lost`."""
        outcomes: list[NudgeSuppressed] = []
        fired: Counter[_Fired] = Counter()
        debug = log.is_enabled_for(logging.DEBUG)  # per-fire lines cost nothing when filtered
        # Plain fires published and did nothing else (see _plain_step).
        fired.update(plain.values() if not lost else (plain[s] for s in plain if s not in lost))
        for sid, (decision, schedule) in decisions.items():
            if sid in lost:
                continue
            if decision.publish is not None:
                fired[schedule.kind, decision.lateness] += 1
                if debug:
                    due = decision.publish
                    log.debug(
                        "nudge_due_published",
                        event_type="nudge.due.v1",
                        event_id=due.event_id,
                        occurrence_id=due.occurrence_id,
                        kind=schedule.kind,
                        lateness_ms=int(decision.lateness.total_seconds() * 1000),
                    )
            if decision.missed:
                for occ in decision.missed:
                    outcomes.append(_suppressed(schedule, occ, "missed", now_ms))
                self.missed += len(decision.missed)
            if decision.dropped is not None:
                outcomes.append(_suppressed(schedule, decision.dropped, "quiet_hours", now_ms))
            if self.on_fired is not None:
                self.on_fired(decision, schedule)
        if fired:
            self.fired += fired.total()
            self.metrics.observe_dues(fired)
        # Every missed or dropped occurrence is reported; after a long outage there can be
        # many, so they go out in pipelines of a bounded size.
        for start in range(0, len(outcomes), _OUTCOME_CHUNK):
            chunk = outcomes[start : start + _OUTCOME_CHUNK]
            await publish(
                self.store.redis, self.keys.outcomes, chunk, maxlen=self.settings.outcomes_maxlen
            )
            self.metrics.observe_outcomes(chunk)
        if outcomes:
            log.info("occurrences_suppressed", count=len(outcomes))

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: fire what is due, else sleep until the next timer (bounded)."""
        shards = shard_round(self.settings.shards, self.replica)
        backoff = 0.5
        while not stop.is_set():
            try:
                busy = False
                for shard in shards:
                    if await self.tick(shard) >= self.settings.batch_size:
                        busy = True
                self.metrics.observe_timer_pass()
                if busy:
                    continue
                heads = [await self.store.next_due_ms(shard) for shard in shards]
                backoff = 0.5
            except RedisError as exc:
                log.warning("timer_loop_redis_error", error=type(exc).__name__)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            await self._sleep_until([h for h in heads if h is not None], stop)

    async def _sleep_until(self, heads: list[int], stop: asyncio.Event) -> None:
        bound = self.settings.max_poll_seconds
        if heads:
            delay = (min(heads) - epoch_ms(self.clock.now())) / 1000 / self.clock.speed
            bound = max(0.0, min(bound, delay))
        await _wait(stop, bound)


def shard_round(shards: int, replica: str) -> list[int]:
    """Every shard once per pass, starting at an offset that is a stable hash of the replica's
    name: replicas side by side begin their passes on different shards (no coordination)."""
    first = zlib.crc32(replica.encode()) % shards
    return [(first + i) % shards for i in range(shards)]


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _suppressed(
    schedule: Schedule, occ: Occurrence, reason: SuppressionReason, now_ms: int
) -> NudgeSuppressed:
    oid = occurrence_id(schedule.schedule_id, occ.nominal)
    return NudgeSuppressed(
        type="nudge.suppressed.v1",
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{oid}#{reason}"),
        occurred_at=from_ms(now_ms),
        producer=PRODUCER,
        data=NudgeSuppressedData(
            occurrence_id=oid,
            couple_id=schedule.couple_id,
            kind=schedule.kind,
            scheduled_at=occ.fire_at,
            reason=reason,
        ),
    )
