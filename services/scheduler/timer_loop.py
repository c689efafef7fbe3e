"""The timer loop: claim what is due, publish NudgeDue, re-arm. Safe with any number of replicas.

Per shard and batch: 1 Lua call reads the due timers with their records, then 1 Lua call per
chunk of 200 compare-and-sets every timer score and publishes atomically, and 1 pipeline for
missed/dropped outcomes. A replica that loses the compare-and-set for a timer simply moves on;
in a burst, replicas read different slots of the backlog so they rarely compute the same batch.

Before a busy instant the loop also looks ahead (lookahead.py): it reads the timers due within
`lookahead_seconds` and prepares their FIRE steps, then at the instant only sends them, before
the batch above picks up whatever they did not do. A burst too big to prepare within that
window at this process's measured speed is prepared earlier (`lead_ms`): the loop counts the
timers due at a head that is near (one ZCOUNT per shard and head) and starts when the count
asks for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
import uuid
import zlib
from collections import Counter, deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final, Literal, NamedTuple

import structlog
from redis.exceptions import RedisError

from couples_nudge.common.clock import Clock, epoch_ms, from_ms
from couples_nudge.common.metrics import Metrics
from couples_nudge.common.streams import publish
from couples_nudge.scheduler.firing import (
    PRODUCER,
    Decision,
    DueTemplate,
    Timing,
    due_event_id,
    occurred_field,
    occurrence_id,
    record_after,
    timing,
)
from couples_nudge.scheduler.leases import ShardLeases, lease_ms, lease_policy
from couples_nudge.scheduler.lookahead import (
    Ahead,
    PrepareCost,
    Prepared,
    chunk_read_at,
    fresh,
    lead_ms,
    restamped,
)
from couples_nudge.scheduler.planning import Occurrence, QuietWindow, Schedule, occurrence_in_force
from couples_nudge.scheduler.records import audience_of, decode_record, split_joined
from couples_nudge.scheduler.rules import CronRule, Rule
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import Fire, Fired, ScheduleStore, TimerRow
from couples_nudge_schemas import NudgeKind, NudgeSuppressed, NudgeSuppressedData, SuppressionReason

__all__ = ["TimerLoop", "shard_round"]

log = structlog.get_logger()
_RETRY_BROKEN_MS = 3_600_000
_OUTCOME_CHUNK = 1000
# Missed / dropped outcomes kept while Redis refuses them (`_publish_unreported`); beyond this,
# the oldest are given up, with an error line (FIRE, which moves the timers, is refused by then
# as well).
_UNREPORTED_MAX = 100_000
_CHUNK = 200  # timers per FIRE call; a batch is several chunks, fired while the next computes
_IN_FLIGHT = 2  # FIRE calls sent ahead of their replies
# How often (on the clock) a replica trims the tombstones of the shards it fires to
# NUDGE_TOMBSTONE_RETENTION (`_trim_tombstones`): one ZREMRANGEBYSCORE a shard an hour.
_TRIM_TOMBSTONES_MS = 3_600_000
# (rule, zone, quiet hours, nominal ms, score, grace): what a schedule's Timing depends on,
# besides `now`. A dictionary key, hashed as a whole and never read by position.
_TimingKey = tuple[Rule, str, tuple[QuietWindow, ...], int, int, timedelta]
# (kind code, "<spec>|<rule>", zones, quiet hours, nominal ms, score): as the key above, in the
# record's own text (split_joined), plus the audience. A dictionary key likewise.
_BurstKey = tuple[str, str, str, str, str, str, str, int]
# What a NudgeDue is counted by: Metrics.observe_dues's key (a Counter's, as it takes it).
_Fired = tuple[NudgeKind, timedelta]


class _Timed(NamedTuple):
    """A Timing shared by the batch's schedules of one _TimingKey, and what it gives."""

    decided: Timing
    next_fire_ms: int | None
    next_nominal_ms: int | None


class _Burst(NamedTuple):
    """What a plain fire (`_plain_step`) of one _BurstKey's schedules needs: made once."""

    template: DueTemplate
    next_fire_ms: int | None
    middle: str  # the record's "|<next nominal>|", as record_after writes it
    fired: _Fired


class _Decided(NamedTuple):
    """What `_step` decided for a schedule, and the schedule (for `_report`)."""

    decision: Decision
    schedule: Schedule


class _Step(NamedTuple):
    """A FIRE step and how it is counted when FIRE does it (a plain fire's)."""

    fire: Fire
    fired: _Fired


# _Step made without NamedTuple's __new__ frame (~190 ns), once a plain fire: the pair in
# _Step's field order (as records._new_parts and ingest._new_plan do).
_new_step: Final = tuple.__new__


class _Firing(NamedTuple):
    """A batch chunk's FIRE call in flight, with what its chunk decided."""

    task: asyncio.Task[Fired]
    decisions: dict[str, _Decided]
    plain: dict[str, _Fired]


class _Counted(NamedTuple):
    """A shard's head, and how many timers are due from it to the window's end after it."""

    head: int
    due: int


class _Sent(NamedTuple):
    """A prepared chunk's FIRE call in flight: its steps, their instant, when it was sent."""

    task: asyncio.Task[Fired]
    chunk: list[Prepared]
    instant: datetime
    sent_at: datetime


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
        self.ahead: dict[int, Ahead] = {}  # per shard: the steps prepared ahead (lookahead.py)
        self.fired_ahead = 0  # of `fired`, by steps prepared ahead
        self.prepare_cost = PrepareCost()  # what a prepared step costs here (`lead_ms`)
        self._head_counts: dict[int, _Counted] = {}  # per shard: its head's count (`_lead_due`)
        self.leases: ShardLeases | None = None  # while `run` runs: the shards it fires
        # Suppressed outcomes of timers FIRE already moved, not yet taken by Redis: published
        # before anything else by the next tick (`_publish_unreported`).
        self.unreported: deque[NudgeSuppressed] = deque()
        self._tombstones_trimmed_ms = 0  # when `_trim_tombstones` last ran (clock ms)

    async def tick(self, shard: int) -> int:
        """Handle one batch of due timers of one shard; returns how many were due.

        The batch is fired in chunks: each chunk's FIRE call runs in Redis while the next
        chunk is computed here, so the two cores work side by side. Up to `_IN_FLIGHT` calls
        are sent ahead, so that Redis has the next chunk as soon as it finishes one. Outcomes
        an earlier tick could not publish go first (`_publish_unreported`).
        """
        if self.unreported:
            await self._publish_unreported()
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
                task = asyncio.create_task(self.store.fire(shard, steps, now_ms))
                firing.append(_Firing(task, decisions, plain))
                await asyncio.sleep(0)  # let the task send the call before computing on
            while firing:
                await self._reported(firing[0], now_ms)
                firing.popleft()
        finally:
            for call in firing:  # an error above: do not leave a call unobserved
                call.task.cancel()
                with contextlib.suppress(BaseException):
                    await call.task
        return len(due)

    def _looks_ahead(self) -> bool:
        """Prepared steps are plain fires (`_plain_step`): not when `on_fired` wants each
        Decision."""
        settings = self.settings
        return (
            settings.lookahead_seconds > 0 and settings.lookahead_max > 0 and self.on_fired is None
        )

    def _window_ms(self) -> int:
        """The lookahead window in clock ms (a scaled clock runs `speed` times real time)."""
        return int(self.settings.lookahead_seconds * 1000 * self.clock.speed)

    async def look_ahead(self, shard: int, window_ms: int | None = None) -> int:
        """Prepare the FIRE steps of the shard's timers due within the lookahead window (after
        now: what is due now is `tick`'s), or within `window_ms` of now when given; returns how
        many the shard holds prepared.

        Reads a batch at a time from where the last read ended. Stops at the window's last
        timer, at `lookahead_max` prepared (all shards together: the rest fire as usual), and
        as soon as the earliest prepared instant has come (firing it must not wait). What the
        steps cost is measured for `lead_ms`.
        """
        if not self._looks_ahead():
            return 0
        ahead = self.ahead.setdefault(shard, Ahead())
        timings: dict[_TimingKey, _Timed] = {}
        bursts: dict[_BurstKey, _Burst | Literal[False]] = {}
        if window_ms is None:
            window_ms = self._window_ms()
        held, started = len(ahead), time.perf_counter()
        while True:
            room = self.settings.lookahead_max - sum(map(len, self.ahead.values()))
            now_ms = epoch_ms(self.clock.now())
            first = ahead.next_instant()
            if room <= 0 or (first is not None and now_ms >= first):
                break
            limit = min(self.settings.batch_size, room)
            page = await self.store.ahead_records(
                shard, now_ms, now_ms + window_ms, limit, cursor=ahead.cursor
            )
            rows = page.rows
            for sid, score, raw in rows:
                if raw is not None and sid not in ahead.ids:
                    prepared = self._prepared(sid, score, raw, page.read_at, timings, bursts)
                    if prepared is not None:  # else `tick` decides it at its instant
                        ahead.add(prepared)
            if rows:
                ahead.cursor = rows[-1].schedule_id
            if len(rows) < limit:
                break
        self.prepare_cost.observe(len(ahead) - held, time.perf_counter() - started)
        return len(ahead)

    def _prepared(
        self,
        sid: str,
        score: int,
        raw: bytes,
        read_at: bytes | None,
        timings: dict[_TimingKey, _Timed],
        bursts: dict[_BurstKey, _Burst | Literal[False]],
    ) -> Prepared | None:
        """The plain step of `sid` as `tick` would make it at its instant, or None."""
        try:
            made = self._plain_step(sid, score, raw, from_ms(score), timings, bursts)
        except Exception:  # `tick` decides it at its instant, and logs what is wrong
            return None
        return None if made is None else Prepared(made.fire, made.fired[0], read_at)

    async def fire_ahead(self, shard: int) -> int:
        """Send the shard's prepared steps whose instant has come; returns how many were sent.

        Each chunk's payloads say when it was sent (occurred_at), and its fires are counted
        with the lateness it was sent at. Whatever FIRE lost or found stale (a revision, an
        erasure, another replica) is left to `tick`, as are steps no longer fresh (lookahead).
        Replicas holding the same steps (they read the same timers in the same order) count an
        instant's chunks off one counter in Redis (`claim_chunk`), so each chunk is sent once
        and every replica sends until none is left. A chunk claimed by a replica that then
        died, or holding other timers (a replica that read different ones), is `tick`'s.
        """
        ahead = self.ahead.get(shard)
        if ahead is None or not ahead.instants:
            return 0
        groups, dropped = ahead.take(epoch_ms(self.clock.now()))
        sending: deque[_Sent] = deque()
        claim: asyncio.Task[int] | None = None
        sent = undone = 0
        try:
            for instant_ms, group in groups:
                instant = from_ms(instant_ms)
                then = occurred_field(instant)
                claim = asyncio.create_task(self.store.claim_chunk(shard, instant_ms))
                while (index := await claim) * _CHUNK < len(group):
                    # The next claim's round trip overlaps this chunk's: Redis is never idle
                    # waiting for a replica to learn which chunk is its next.
                    claim = asyncio.create_task(self.store.claim_chunk(shard, instant_ms))
                    now = self.clock.now()
                    chunk = fresh(group[index * _CHUNK : (index + 1) * _CHUNK], epoch_ms(now))
                    dropped += min(_CHUNK, len(group) - index * _CHUNK) - len(chunk)
                    if not chunk:
                        continue
                    stamp = occurred_field(now)
                    steps = [restamped(p.step, then, stamp) for p in chunk]
                    task = asyncio.create_task(
                        self.store.fire(shard, steps, epoch_ms(now), read_at=chunk_read_at(chunk))
                    )
                    sending.append(_Sent(task, chunk, instant, now))
                    sent += len(chunk)
                    if len(sending) == _IN_FLIGHT:
                        undone += await self._counted(sending.popleft())
                while sending:
                    undone += await self._counted(sending.popleft())
        finally:  # an error above: leave no call unobserved (a chunk claimed is `tick`'s)
            calls: list[asyncio.Task[Any]] = [call.task for call in sending]
            for task in [*calls, *([claim] if claim else [])]:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if dropped or undone:
            log.info("lookahead_left_to_tick", shard=shard, not_fresh=dropped, not_done=undone)
        return sent

    async def _counted(self, call: _Sent) -> int:
        """Count what a prepared chunk's FIRE call did; returns how many steps it did not do."""
        undone = await call.task
        skipped = undone.lost | undone.stale
        fired: Counter[_Fired] = Counter()
        lateness = call.sent_at - call.instant
        debug = log.is_enabled_for(logging.DEBUG)
        for prepared in call.chunk:
            step = prepared.step
            if step.schedule_id not in skipped:
                fired[prepared.kind, lateness] += 1
                if debug:  # as `_report` logs a fire
                    _log_prepared(step, prepared.kind, lateness)
        if fired:
            self.fired += fired.total()
            self.fired_ahead += fired.total()
            self.metrics.observe_dues(fired)
        return len(skipped)

    async def _reported(self, call: _Firing, now_ms: int) -> None:
        await self._report(await call.task, call.decisions, call.plain, now_ms=now_ms)

    def _steps(
        self,
        due: list[TimerRow],
        now: datetime,
        timings: dict[_TimingKey, _Timed],
        bursts: dict[_BurstKey, _Burst | Literal[False]] | None,
    ) -> tuple[list[Fire], dict[str, _Decided], dict[str, _Fired]]:
        steps: list[Fire] = []
        decisions: dict[str, _Decided] = {}
        plain: dict[str, _Fired] = {}
        for sid, score, raw in due:
            if raw is None:  # a timer without a record (erased meanwhile): remove it
                steps.append(Fire(sid, score, None, None, None, None))
                continue
            if bursts is not None:
                try:
                    made = self._plain_step(sid, score, raw, now, timings, bursts)
                except Exception:  # whatever it is, the general path below decides (and logs)
                    made = None
                if made is not None:
                    steps.append(made.fire)
                    plain[sid] = made.fired
                    continue
            try:
                step, decided = self._step(sid, score, raw, now, timings)
            except Exception:  # one broken record must not stop every other schedule
                log.exception("schedule_failed", schedule_id=sid)
                self.metrics.observe_schedule_failure()
                step = Fire(sid, score, score + _RETRY_BROKEN_MS, raw, None, None)
                decided = None
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
    ) -> _Step | None:
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
        template, next_fire_ms, middle, fired = burst
        count = int(seq)
        payload = template.payload(sid, couple_id, (id0, id1), count, int(rev))
        if payload is None:
            return None
        record = f"{count + 1}{middle}{shape}".encode()  # record_after, for a publish
        step = Fire(sid, score, next_fire_ms, raw, record, payload)
        return _new_step(_Step, (step, fired))

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
        if step.record is None:
            return False
        middle = f"|{step.record.split(b'|', 2)[1].decode()}|"  # the next nominal, as written
        return _Burst(template, step.next_fire_ms, middle, fired)

    def _step(
        self, sid: str, score: int, raw: bytes, now: datetime, timings: dict[_TimingKey, _Timed]
    ) -> tuple[Fire, _Decided]:
        record = decode_record(sid, raw)
        schedule = record.schedule
        grace = self.settings.grace(schedule.kind)
        key = (schedule.rule, schedule.timezone, schedule.quiet, record.nominal_ms, score, grace)
        timed = timings.get(key)
        if timed is None:  # `now` is the batch's: the key holds everything else timing reads
            nominal = from_ms(record.nominal_ms)
            current = occurrence_in_force(schedule, nominal)  # planned under older zone rules?
            if current.nominal == nominal and epoch_ms(current.fire_at) != score:
                # the score is authoritative (deferrals), unless the rules moved the nominal
                current = Occurrence(current.nominal, from_ms(score), current.note, current.dropped)
            decided = timing(schedule, current, now=now, grace=grace)
            nxt = decided.next
            timed = timings[key] = _Timed(
                decided,
                None if nxt is None else epoch_ms(nxt.fire_at),
                None if nxt is None else epoch_ms(nxt.nominal),
            )
        decided, next_fire_ms, next_nominal_ms = timed
        decision = decided.decision(schedule, record.seq, now)
        publish = decision.publish
        written = record_after(
            raw,
            published=publish is not None,
            next_fire_ms=next_fire_ms,
            next_nominal_ms=next_nominal_ms,
        )
        payload = None if publish is None else publish.payload()
        return Fire(sid, score, next_fire_ms, raw, written, payload), _Decided(decision, schedule)

    async def _report(
        self,
        undone: Fired,
        decisions: dict[str, _Decided],
        plain: dict[str, _Fired],
        now_ms: int,
    ) -> None:
        """Count and report what the FIRE call did: everything it did not lose or find stale
        (those timers are untouched: the next DUE reads them afresh)."""
        lost = undone.lost | undone.stale if undone.stale else undone.lost
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
        if outcomes:
            log.info("occurrences_suppressed", count=len(outcomes))
            self._keep_unreported(outcomes)
            await self._publish_unreported()

    def _keep_unreported(self, outcomes: list[NudgeSuppressed]) -> None:
        """Queue outcomes to publish; beyond `_UNREPORTED_MAX` the oldest are given up."""
        self.unreported.extend(outcomes)
        over = len(self.unreported) - _UNREPORTED_MAX
        if over > 0:
            for _ in range(over):
                self.unreported.popleft()
            log.error("outcomes_given_up", count=over, reason="redis refused them too long")

    async def _publish_unreported(self) -> None:
        """Publish the queued outcomes, oldest first, in pipelines of a bounded size (after a
        long outage there can be many); raises (a RedisError) with the rest still queued.

        FIRE has moved their timers already: an outcome lost here would never be written, and
        every occurrence ends with an outcome (docs/reliability.md). So a
        refusal (Redis out of memory after FIRE, a failover) keeps them in this queue, and
        the next tick publishes them before anything else. Their event ids are
        deterministic (`_suppressed`): one published twice is the same event.
        """
        while self.unreported:
            chunk = list(itertools.islice(self.unreported, _OUTCOME_CHUNK))
            await publish(
                self.store.redis, self.keys.outcomes, chunk, maxlen=self.settings.outcomes_maxlen
            )
            for _ in chunk:
                self.unreported.popleft()
            self.metrics.observe_outcomes(chunk)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set: fire what is due on the shards whose lease this replica holds
        (leases.py), else sleep until the next timer (bounded)."""
        leases = self.leases = ShardLeases(
            self.store,
            shard_round(self.settings.shards, self.replica),
            lease_ms(self.settings.max_poll_seconds),
            lease_policy(self.settings.lease_policy, self.settings.redis_cluster),
            holder=f"{self.replica}:{uuid.uuid4().hex[:12]}",
        )
        halt = asyncio.Event()  # set when this loop ends, whatever ends it
        keeper = asyncio.create_task(leases.keep(halt), name="shard-leases")
        try:
            await self._run(stop, leases)
        finally:
            halt.set()  # the keeper gives the leases up and ends
            if self.unreported:  # Redis refused them until the stop: an operator should know
                log.error("outcomes_unreported_at_stop", count=len(self.unreported))
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(keeper, timeout=5.0)

    async def _run(self, stop: asyncio.Event, leases: ShardLeases) -> None:
        backoff = 0.5
        while not stop.is_set():
            shards = [shard for shard in leases.shards if shard in leases.held]
            for lost in [shard for shard in self.ahead if shard not in leases.held]:
                del self.ahead[lost]  # prepared for a shard another replica fires now
            if not shards:  # standing by: another replica fires every shard this one could
                leases.changed.clear()
                await _either(stop, leases.changed, self.settings.max_poll_seconds)
                continue
            try:
                busy = False
                for shard in shards:
                    await self.fire_ahead(shard)  # first: `tick` takes what they leave
                    if await self.tick(shard) >= self.settings.batch_size:
                        busy = True
                self.metrics.observe_timer_pass()
                await self._trim_tombstones(shards)
                if busy:
                    continue
                heads = [await self.store.next_due_ms(shard) for shard in shards]
                await self._look_ahead_near(shards, heads)
                backoff = 0.5
            except RedisError as exc:
                log.warning("timer_loop_redis_error", error=type(exc).__name__)
                await _wait(stop, backoff)
                backoff = min(backoff * 2, 10.0)
                continue
            await self._sleep_until([h for h in heads if h is not None], stop)

    async def _trim_tombstones(self, shards: list[int]) -> None:
        """Forget the erasures older than NUDGE_TOMBSTONE_RETENTION on the shards this replica
        fires, once an hour: ERASE trims a shard's tombstones only when it erases another
        couple of it, so a shard's last erasures were otherwise kept, and kept refusing their
        couple's older events, for ever (tests/integration/test_erasure_replays.py)."""
        now_ms = epoch_ms(self.clock.now())
        if now_ms - self._tombstones_trimmed_ms < _TRIM_TOMBSTONES_MS:
            return
        retention_ms = int(self.settings.tombstone_retention.total_seconds() * 1000)
        await self.store.trim_tombstones(shards, now_ms - retention_ms)
        self._tombstones_trimmed_ms = now_ms

    async def _look_ahead_near(self, shards: list[int], heads: list[int | None]) -> None:
        """Look ahead on the shards whose next timer is within the window, or within the
        longer lead that preparing what is due there asks for (`lead_ms`)."""
        if not self._looks_ahead():
            return
        now_ms, window_ms = epoch_ms(self.clock.now()), self._window_ms()
        room = self.settings.lookahead_max - sum(map(len, self.ahead.values()))
        per_step, speed = self.prepare_cost.per_step, self.clock.speed
        farthest = lead_ms(window_ms, room, per_step, speed)  # the most any count could ask
        for shard, head in zip(shards, heads, strict=True):
            if head is None or not now_ms < head <= now_ms + farthest:
                continue
            if head <= now_ms + window_ms:
                await self.look_ahead(shard)
                continue
            due = min(room, await self._lead_due(shard, head, window_ms))
            lead = lead_ms(window_ms, due, per_step, speed)
            if head - now_ms <= lead:
                if not self.ahead.get(shard):  # nothing prepared on the shard yet: its first look
                    log.info("lookahead_early", shard=shard, due=due, lead_ms=lead)
                await self.look_ahead(shard, head - now_ms + window_ms)

    async def _lead_due(self, shard: int, head: int, window_ms: int) -> int:
        """How many timers of the shard are due from `head` to the window's end after it:
        counted once per head (a head that moved is counted again)."""
        counted = self._head_counts.get(shard)
        if counted is None or counted.head != head:
            due = await self.store.count_due(shard, head, head + window_ms)
            counted = self._head_counts[shard] = _Counted(head, due)
        return counted.due

    async def _sleep_until(self, heads: list[int], stop: asyncio.Event) -> None:
        bound = self.settings.max_poll_seconds
        if heads:
            delay = (min(heads) - epoch_ms(self.clock.now())) / 1000 / self.clock.speed
            bound = max(0.0, min(bound, delay))
        await _wait(stop, bound)


def _log_prepared(step: Fire, kind: NudgeKind, lateness: timedelta) -> None:
    """The debug line `_report` writes per fire, for a prepared plain step."""
    assert step.state is not None  # a plain step has a record and publishes
    occurrence = occurrence_id(step.schedule_id, from_ms(int(step.state.split(b"|", 2)[1])))
    log.debug(
        "nudge_due_published",
        event_type="nudge.due.v1",
        event_id=due_event_id(occurrence),
        occurrence_id=occurrence,
        kind=kind,
        lateness_ms=int(lateness.total_seconds() * 1000),
    )


def shard_round(shards: int, replica: str) -> list[int]:
    """Every shard once per pass, starting at an offset that is a stable hash of the replica's
    name: replicas side by side begin their passes on different shards (no coordination)."""
    first = zlib.crc32(replica.encode()) % shards
    return [(first + i) % shards for i in range(shards)]


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


async def _either(stop: asyncio.Event, changed: asyncio.Event, seconds: float) -> None:
    """Wait until `stop` or `changed` is set, at most `seconds`."""
    waits = [asyncio.create_task(stop.wait()), asyncio.create_task(changed.wait())]
    try:
        await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in waits:
            task.cancel()


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
