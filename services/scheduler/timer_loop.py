"""The timer loop: claim what is due, publish NudgeDue, re-arm. Safe with any number of replicas.

Per shard and batch: 1 round trip for the due timers, 1 for their records, 1 Lua call that
compare-and-sets every timer score and publishes atomically, and 1 pipeline for missed/dropped
outcomes. A replica that loses the compare-and-set for a timer simply moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import datetime

import structlog
from redis.exceptions import RedisError

from schemas import NudgeSuppressed, NudgeSuppressedData, SuppressionReason
from services.common.clock import Clock, epoch_ms, from_ms
from services.common.streams import encode, publish
from services.scheduler.firing import PRODUCER, Decision, decide, occurrence_id
from services.scheduler.planning import Occurrence, Schedule, occurrence_at
from services.scheduler.records import decode_record
from services.scheduler.settings import SchedulerSettings
from services.scheduler.store import Fire, ScheduleStore

__all__ = ["TimerLoop"]

log = structlog.get_logger()
_RETRY_BROKEN_MS = 3_600_000


class TimerLoop:
    def __init__(
        self,
        store: ScheduleStore,
        clock: Clock,
        settings: SchedulerSettings,
        *,
        on_fired: Callable[[Decision, Schedule], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.keys = settings.keys
        self.on_fired = on_fired
        self.fired = 0
        self.missed = 0

    async def tick(self, shard: int) -> int:
        """Handle one batch of due timers of one shard; returns how many were due."""
        now = self.clock.now()
        due = await self.store.due(shard, epoch_ms(now), self.settings.batch_size)
        if not due:
            return 0
        raws = await self.store.records(shard, [sid for sid, _ in due])
        steps: list[Fire] = []
        decisions: dict[str, tuple[Decision, Schedule]] = {}
        for (sid, score), raw in zip(due, raws, strict=True):
            if raw is None:  # a timer without a record (erased meanwhile): remove it
                steps.append(Fire(sid, score, None, None, None))
                continue
            try:
                step, decided = self._step(sid, score, raw, now)
            except Exception:  # one broken record must not stop every other schedule
                log.exception("schedule_failed", schedule_id=sid)
                step, decided = Fire(sid, score, score + _RETRY_BROKEN_MS, None, None), None
            steps.append(step)
            if decided is not None:
                decisions[sid] = decided
        won = await self.store.fire(shard, steps)
        await self._report(won, decisions, now_ms=epoch_ms(now))
        return len(due)

    def _step(
        self, sid: str, score: int, raw: bytes, now: datetime
    ) -> tuple[Fire, tuple[Decision, Schedule]]:
        record = decode_record(sid, raw)
        schedule = record.schedule
        current = occurrence_at(schedule, from_ms(record.nominal_ms))
        if epoch_ms(current.fire_at) != score:  # the score is authoritative (deferrals)
            current = Occurrence(current.nominal, from_ms(score), current.note, current.dropped)
        decision = decide(
            schedule, current, seq=record.seq, now=now, grace=self.settings.grace(schedule.kind)
        )
        nxt = decision.next
        step = Fire(
            sid,
            score,
            None if nxt is None else epoch_ms(nxt.fire_at),
            None if nxt is None else epoch_ms(nxt.nominal),
            None if decision.due is None else encode(decision.due),
        )
        return step, (decision, schedule)

    async def _report(
        self, won: set[str], decisions: dict[str, tuple[Decision, Schedule]], now_ms: int
    ) -> None:
        outcomes: list[NudgeSuppressed] = []
        for sid in won:
            if sid not in decisions:
                continue
            decision, schedule = decisions[sid]
            if decision.due is not None:
                self.fired += 1
                log.debug(
                    "nudge_due_published",
                    occurrence_id=decision.due.data.occurrence_id,
                    kind=schedule.kind,
                    lateness_ms=int(decision.lateness.total_seconds() * 1000),
                )
            for occ in decision.missed:
                outcomes.append(_suppressed(schedule, occ, "missed", now_ms))
            if decision.dropped is not None:
                outcomes.append(_suppressed(schedule, decision.dropped, "quiet_hours", now_ms))
            self.missed += len(decision.missed)
            if self.on_fired is not None:
                self.on_fired(decision, schedule)
        if outcomes:
            await publish(
                self.store.redis,
                self.keys.outcomes,
                outcomes[:1000],
                maxlen=self.settings.outcomes_maxlen,
            )
            log.info("occurrences_suppressed", count=len(outcomes))

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: fire what is due, else sleep until the next timer (bounded)."""
        shards = range(self.settings.shards)
        backoff = 0.5
        while not stop.is_set():
            try:
                busy = False
                for shard in shards:
                    if await self.tick(shard) >= self.settings.batch_size:
                        busy = True
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
