"""Fires prepared ahead of their instant (issue 7's burst). Pure: no I/O, `now` is an argument.

Shortly before a busy instant the timer loop reads the timers due up to it with their records
(lua.AHEAD) and prepares each FIRE step as `DUE` + `_steps` would at the instant: payload, next
fire, record to write. At the instant it only sends those steps, so Redis spends the burst on
FIRE alone and the client has nothing left to compute. Nothing is published early: a step is
sent only once its instant has come (and lua.FIRE refuses a score after `now`), and FIRE
publishes only if the timer still holds the score and its record and couple fields are still
what was read; anything else stays armed and the next `DUE` decides it afresh. Nothing is
written ahead either, so a crash loses no timer. Each step keeps the shard's change counter its
page was read at: a chunk read at one value lets FIRE compare that once instead of each state
(lua.py's module docstring says why that is the same check).

A prepared step is decided for `now` = its instant. Sent later, that decision still holds only
for a while: it is sent within `FRESH_MS` of the instant and before the schedule's next fire,
else dropped for the normal path (a loop stalled that long would otherwise publish without the
"late" note, or past a missed occurrence).

How long before an instant preparing starts (`lead_ms`): `lookahead_seconds`, or longer when
what is due right after the instant would take longer than that to prepare at the cost per
step this process last measured (`PrepareCost`). A burst of 100,000 took ~3 s to prepare on a
slow 2-core machine (2026-12-07), where a fixed 2 s window left a third of it to the instant.
Starting earlier changes nothing that is sent: steps are still sent only at their instant,
and FIRE still checks what they were prepared from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from couples_nudge.scheduler.store import Fire
from couples_nudge_schemas import NudgeKind

__all__ = [
    "FRESH_MS",
    "Ahead",
    "PrepareCost",
    "Prepared",
    "chunk_read_at",
    "fresh",
    "lead_ms",
    "restamped",
]

# Well under firing._LATE (a minute: the "late" note) and every grace window (hours).
FRESH_MS: Final = 30_000
# Real seconds a prepared step costs before this process has measured it: the slowest machine
# measured (a 2-core AMD EPYC, 2026-12-07: ~30 us a step, its page's read included), with room.
PREPARE_S_PRIOR: Final = 40e-6
# Preparing shares the process with ingestion and the other shards: the lead allows for that.
LEAD_MARGIN: Final = 1.5
# Fewer steps than this in one look ahead measure mostly its page reads, not the steps.
_MEASURED_MIN: Final = 200


def lead_ms(window_ms: int, due: int, prepare_s: float, speed: float = 1.0) -> int:
    """How long (clock ms) before an instant to start preparing the `due` steps up to the end
    of the window after it: the window, or longer when `due` steps at `prepare_s` real seconds
    each, with LEAD_MARGIN, would take longer (a clock at `speed` times real time moves that
    much further meanwhile)."""
    return max(window_ms, math.ceil(due * prepare_s * LEAD_MARGIN * 1000 * speed))


@dataclass(slots=True)
class PrepareCost:
    """What a prepared step costs this process, in real seconds: the last look ahead that
    prepared enough steps to tell (its page reads included), else PREPARE_S_PRIOR."""

    per_step: float = PREPARE_S_PRIOR

    def observe(self, steps: int, seconds: float) -> None:
        if steps >= _MEASURED_MIN and seconds > 0:
            self.per_step = seconds / steps


class Prepared(NamedTuple):
    step: Fire  # decided and written for `now` = step.expected_ms
    kind: NudgeKind  # what the metrics count when it is done
    read_at: bytes | None  # the shard's change counter when its state was read (lua.AHEAD)


def chunk_read_at(chunk: list[Prepared]) -> bytes | None:
    """The change counter every step of `chunk` was read at, or None when they differ (pages
    read apart): what a FIRE call of the chunk compares once instead of each state (lua.FIRE).
    """
    first = chunk[0].read_at if chunk else None
    return first if all(p.read_at == first for p in chunk) else None


@dataclass(slots=True)
class Ahead:
    """One shard's prepared steps, by instant (ms); each schedule at most once."""

    instants: dict[int, list[Prepared]] = field(default_factory=dict)
    ids: set[str] = field(default_factory=set)
    cursor: str = ""  # the last timer lua.AHEAD returned: where the next page starts

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, prepared: Prepared) -> None:
        sid = prepared.step.schedule_id
        if sid not in self.ids:  # a page read twice (see lua.AHEAD) prepares nothing twice
            self.ids.add(sid)
            self.instants.setdefault(prepared.step.expected_ms, []).append(prepared)

    def next_instant(self) -> int | None:
        return min(self.instants, default=None)

    def take(self, now_ms: int) -> tuple[list[tuple[int, list[Prepared]]], int]:
        """Remove every instant that has come, oldest first; return their steps by instant, and
        how many were dropped as too late (the normal path decides those). Each step is still
        checked with `fresh` when it is sent: not here, so that a burst's first chunk goes out
        without the whole instant (100,000 steps: ~18 ms) being walked first."""
        taken: list[tuple[int, list[Prepared]]] = []
        dropped = 0
        for instant in sorted(i for i in self.instants if i <= now_ms):
            group = self.instants.pop(instant)
            if self.instants:  # else the ids are cleared at once below
                self.ids.difference_update(p.step.schedule_id for p in group)
            if now_ms - instant >= FRESH_MS:
                dropped += len(group)
                continue
            taken.append((instant, group))
        if not self.instants:  # nothing left ahead: the next window is read from its start
            self.ids.clear()
            self.cursor = ""
        return taken, dropped


def fresh(chunk: list[Prepared], now_ms: int) -> list[Prepared]:
    """The steps of `chunk` still to be sent at `now_ms`: before their schedule's next fire
    (at or after it, the normal path decides, noting the occurrence missed)."""
    return [p for p in chunk if p.step.next_fire_ms is None or now_ms < p.step.next_fire_ms]


def restamped(prepared: Fire, occurred_then: bytes, occurred_now: bytes) -> Fire:
    """`prepared` with its NudgeDue's occurred_at moved from the instant it was prepared for
    to when it is sent (both as `'"occurred_at":"<UTC text>"'`): the envelope says when the
    event was emitted, as the normal path's does. The field is unique in a NudgeDue."""
    sid, expected, next_fire, state, record, payload = prepared
    if payload is None or occurred_then == occurred_now:
        return prepared
    return Fire(
        sid, expected, next_fire, state, record, payload.replace(occurred_then, occurred_now, 1)
    )
