"""Applying preference events to stored state. Validation happened before; planning is pure."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final

import structlog

from couples_nudge.common.clock import Clock, epoch_ms
from couples_nudge.common.couple_state import pause_value, profile_fields
from couples_nudge.common.metrics import Metrics
from couples_nudge.common.streams import scrub
from couples_nudge.scheduler.consent import ConsentStore
from couples_nudge.scheduler.feedback import FeedbackStore
from couples_nudge.scheduler.planning import PlanningError
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.shapes import ShapePlanner
from couples_nudge.scheduler.store import ApplyResult, Plan, ScheduleStore
from couples_nudge_schemas import (
    JAR_LIMIT,
    ChannelBounced,
    ChannelComplained,
    CoupleErased,
    DateJarIdeaAdded,
    DateJarIdeaRemoved,
    NudgeFeedback,
    PreferenceEvent,
    PreferencesPaused,
    PreferencesResubscribed,
    PreferencesResumed,
    PreferencesSet,
    PreferencesSetData,
    PreferencesSnoozed,
    PreferencesUnsubscribed,
)

__all__ = ["Checkpoint", "PreferenceIngest"]

log = structlog.get_logger()
_CHUNK: Final = 100  # plans per pipelined round trip in apply_many
# Longest stretch apply_many plans without a checkpoint: planning is CPU-bound (a raw cron
# took ~0.1-0.2 s), and a batch that never yields holds up the signal handler, and the
# refresh that keeps the batch's entries claimed.
_SLICE_S: Final = 0.05

_new_plan: Final = tuple.__new__  # see PreferenceIngest._plan


def ahead_reason(tolerance_s: int) -> str:
    """The rejected stream's reason for an event dated past the horizon (fixed words)."""
    return (
        f"occurred_at: more than {tolerance_s} s ahead of the service's clock; a future-dated "
        "event would win over every later one (fix the publisher's clock)"
    )


# Awaited between events by apply_many; returns False to stop the batch there.
Checkpoint = Callable[[], Awaitable[bool]]


class PreferenceIngest:
    def __init__(
        self,
        store: ScheduleStore,
        clock: Clock,
        settings: SchedulerSettings,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.shapes = ShapePlanner(settings.min_interval)  # plans each shape of couple once
        self.consent = ConsentStore(store.redis, store.keys)
        self.feedback = FeedbackStore(
            store.redis, store.keys, outcomes_maxlen=settings.outcomes_maxlen, metrics=metrics
        )
        tolerance_s = int(settings.future_tolerance.total_seconds())
        self._tolerance_ms = tolerance_s * 1000
        self._ahead = ahead_reason(tolerance_s)

    def horizon_ms(self) -> int:
        """The latest `occurred_at` applied (ms): the service's clock plus the tolerance.

        Events are ordered by `occurred_at` (last writer wins, revisions aside), so one dated
        in the future would win over every later event until that date: a pause dated 9999
        would keep the couple paused for good. A simulated clock behind the wall clock (tests,
        replays) must not refuse events dated now, so the later of the two clocks counts.
        """
        return max(epoch_ms(self.clock.now()), time.time_ns() // 1_000_000) + self._tolerance_ms

    async def apply_many(
        self, events: Sequence[PreferenceEvent], checkpoint: Checkpoint | None = None
    ) -> list[str | PlanningError]:
        """Apply events in order, like `apply` on each; returns each result or its PlanningError.

        Consecutive preferences.set events are planned, then stored in pipelined round trips of
        up to `_CHUNK` (their Lua calls run in order, so the result is the same as one by one).
        Once a chunk is on the wire the next is planned here while Redis runs it; a chunk is
        only sent once the one before it has succeeded. Any other event is applied on its own,
        in its place.

        Between events, at least every `_SLICE_S`, planning yields to the event loop and awaits
        `checkpoint` (the scheduler keeps the batch's entries claimed there). When it returns
        False, the events planned so far are stored and their results returned: the list then
        ends before the first event that was not applied (the caller leaves those pending).
        """
        results: list[str | PlanningError] = []
        pending: list[tuple[int, Plan]] = []
        storing: list[asyncio.Task[None]] = []  # the chunk sent last, until its outcomes are in

        async def stored(
            indexes: list[int], outcomes: Coroutine[Any, Any, list[ApplyResult]]
        ) -> None:
            for index, result in zip(indexes, await outcomes, strict=True):
                results[index] = result

        async def flush(*, wait: bool) -> None:
            if storing:
                await storing.pop()  # keeps the order: the previous chunk is done in Redis
            if pending:
                outcomes = self.store.apply_plans([p for _, p in pending])  # queued now
                storing.append(asyncio.create_task(stored([i for i, _ in pending], outcomes)))
                pending.clear()
                await self.store.pipe.sent()
            if wait and storing:
                await storing.pop()

        # Per event below: `_plan`'s body written out (its frame, ~1.5k instructions an
        # event), with the planner and the clock bound once a batch.
        arms_of, now = self.shapes.arms, self.clock.now
        horizon = self.horizon_ms()  # once a batch: it only moves later meanwhile
        try:
            yielded = time.monotonic()
            for event in events:
                if time.monotonic() - yielded >= _SLICE_S:
                    await asyncio.sleep(0)  # signals and replies get their turn
                    if checkpoint is not None and not await checkpoint():
                        break
                    yielded = time.monotonic()
                results.append("")
                try:
                    # The exact class (a parsed event is one of the union's, never a
                    # subclass): isinstance of a pydantic class goes through ABCMeta (~1.1k).
                    if type(event) is PreferencesSet:
                        occurred = epoch_ms(event.occurred_at)
                        if occurred > horizon:
                            raise PlanningError(self._ahead)
                        data = event.data
                        arms = arms_of(data, now())
                        values = data.__dict__
                        planned = _new_plan(
                            Plan,
                            (
                                values["couple_id"],
                                values["revision"],
                                occurred,
                                profile_fields(data),
                                arms,
                            ),
                        )
                        pending.append((len(results) - 1, planned))
                        if len(pending) >= _CHUNK:
                            await flush(wait=False)
                        continue
                    await flush(wait=True)
                    results[-1] = await self.apply(event)
                except PlanningError as exc:
                    results[-1] = exc
            await flush(wait=True)
        finally:
            if storing:  # an error above: let the chunk sent finish, observed
                with contextlib.suppress(BaseException):
                    await storing.pop()
        return results

    def _plan(self, data: PreferencesSetData, occurred_ms: int) -> Plan:
        """Plan a couple's schedules and their first fires (pure: the clock is read once).

        Once per preferences.set: the fields are read from the model's `__dict__` (exactly its
        field values), and the Plan made by `tuple.__new__` (a NamedTuple's generated __new__
        is Python, ~1.5k instructions more; Plan defines no __new__ of its own). `apply_many`
        writes this body out in its loop (tests/unit/test_ingest15_plan.py compares them)."""
        arms = self.shapes.arms(data, self.clock.now())
        values = data.__dict__
        return _new_plan(
            Plan,
            (values["couple_id"], values["revision"], occurred_ms, profile_fields(data), arms),
        )

    async def apply(self, event: PreferenceEvent) -> str:
        """Apply one validated event; returns what happened, for logs and tests.

        Raises PlanningError for preferences that cannot become an acceptable plan, and for
        an event dated past `horizon_ms` (nothing is written).
        """
        occurred_ms = epoch_ms(event.occurred_at)
        if occurred_ms > self.horizon_ms():
            raise PlanningError(self._ahead)
        match event:
            case PreferencesSet(data=data):
                return await self.store.apply_plan(self._plan(data, occurred_ms))
            case PreferencesPaused(data=data):
                field = "pause" if data.partner_id is None else f"pause:{data.partner_id}"
                until = None if data.until is None else epoch_ms(data.until)
                value = pause_value(occurred_ms, until).partition("|")[2]
                return await self._consent(data.couple_id, field, occurred_ms, value)
            case PreferencesResumed(data=data):
                field = "pause" if data.partner_id is None else f"pause:{data.partner_id}"
                value = pause_value(occurred_ms, None, resume=True).partition("|")[2]
                return await self._consent(data.couple_id, field, occurred_ms, value)
            case PreferencesUnsubscribed(data=data):
                field = f"unsub:{data.partner_id}:{data.kind}:{data.channel}"
                return await self._consent(data.couple_id, field, occurred_ms, "1")
            case CoupleErased(data=data):
                await self.store.erase(
                    data.couple_id,
                    occurred_ms=occurred_ms,
                    retention_ms=int(self.settings.tombstone_retention.total_seconds() * 1000),
                )
                keys = self.settings.keys
                for stream in (keys.rejected, keys.dead):  # the only streams with raw input
                    await scrub(self.store.redis, stream, data.couple_id)
                return "erased"
            case PreferencesResubscribed(data=data):
                cleared = await self.consent.resubscribe(
                    data.couple_id, data.partner_id, data.kind, data.channel, occurred_ms
                )
                return _written(cleared) if cleared < 0 else "applied"
            case ChannelComplained(data=data):  # a spam report: no more email of any kind
                field = f"unsub:{data.partner_id}:all:{data.channel}"
                return await self._consent(data.couple_id, field, occurred_ms, "complaint")
            case ChannelBounced(data=data) if data.bounce == "hard":
                field = f"dead:{data.partner_id}:{data.channel}"
                return _written(
                    await self.store.set_if_newer(data.couple_id, field, occurred_ms, "hard")
                )
            case ChannelBounced(data=data):
                count = await self.consent.soft_bounce(
                    data.couple_id,
                    data.partner_id,
                    data.channel,
                    occurred_ms,
                    limit=self.settings.soft_bounce_limit,
                    window_ms=int(self.settings.soft_bounce_window.total_seconds() * 1000),
                )
                if count < 0:
                    return _written(count)
                return "applied" if count >= self.settings.soft_bounce_limit else "counted"
            case PreferencesSnoozed(data=data):  # until <= occurred: the snooze ends
                field = f"snz:{data.partner_id}:{data.kind}"
                ends = str(epoch_ms(data.until))
                return await self._consent(data.couple_id, field, occurred_ms, ends)
            case NudgeFeedback():
                return await self.feedback.apply(event)
            case DateJarIdeaAdded(data=data):
                return await self._jar_add(data.couple_id, event, occurred_ms)
            case DateJarIdeaRemoved(data=data):
                return await self.store.jar_remove(data.couple_id, data.idea_id)

    async def _consent(self, couple_id: str, field: str, occurred_ms: int, value: str) -> str:
        """A pause, unsubscribe or snooze field, last writer wins; parked when the couple's
        preferences.set is not applied yet (another replica holds it, or publishers resend
        after a loss of state), for the set to take (lua.SET_IF_NEWER, APPLY_PLAN)."""
        written = await self.store.set_if_newer(couple_id, field, occurred_ms, value, park=True)
        return _written(written)

    async def _jar_add(self, couple_id: str, event: DateJarIdeaAdded, occurred_ms: int) -> str:
        """An idea into the couple's jar; raises PlanningError (the entry is rejected, with a
        reason that never repeats the idea) for a full jar, a stranger or an unknown couple."""
        data = event.data
        entry = json.dumps(
            {
                "text": data.text,
                "added_by": data.added_by,
                "added_at": event.occurred_at.isoformat(),
            },
            ensure_ascii=False,
        )
        result = await self.store.jar_add(
            couple_id,
            data.idea_id,
            entry,
            added_by=data.added_by,
            occurred_ms=occurred_ms,
            limit=JAR_LIMIT,
        )
        if result in _JAR_REFUSALS:
            raise PlanningError(_JAR_REFUSALS[result])
        return result


# Reasons for the rejected stream: fixed text, never the idea's id or text.
_JAR_REFUSALS: Final = {
    "full": f"datejar.idea_added: the date jar is full ({JAR_LIMIT} ideas); remove one first",
    "not_partner": "datejar.idea_added: added_by is not one of the couple's partners",
    "unknown_couple": "datejar.idea_added: unknown couple; publish its preferences.set first",
}


def _written(code: int) -> str:
    return {1: "applied", 0: "stale", -1: "unknown_couple", -2: "erased", -3: "parked"}[code]
