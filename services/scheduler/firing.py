"""What to do with one due timer: publish, skip as missed, or drop. Pure: `now` is an argument.

After downtime a schedule may be several occurrences behind. It fires at most once: the
newest occurrence that is due, and only if it is within the kind's grace window; the older
ones are reported as missed. The timer is re-armed at the first occurrence after `now`, so
there is never a backlog of copies.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from schemas import NudgeDue, NudgeDueData
from services.scheduler.planning import Occurrence, Schedule, next_occurrence

__all__ = ["Decision", "decide", "occurrence_id"]

_NAMESPACE: Final = uuid.UUID("5d0c6e0e-8f1d-4e8a-9b7e-6a2f4c1d9e11")
_MAX_CATCH_UP: Final = 1000
_LATE: Final = timedelta(minutes=1)
PRODUCER: Final = "nudge-scheduler"


_NAMESPACE_BYTES: Final = _NAMESPACE.bytes
_VERSION_MASK: Final = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_5: Final = (0x8000 << 48) | (5 << 76)


def _uuid5(name: str) -> uuid.UUID:
    """``uuid.uuid5(_NAMESPACE, name)``, without ``UUID.__init__``'s checks: 2x faster per fire."""
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    value = int.from_bytes(digest[:16], "big") & _VERSION_MASK | _VERSION_5
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", value)
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


def occurrence_id(schedule_id: str, nominal: datetime) -> str:
    return f"{schedule_id}@{int(nominal.timestamp())}"


@dataclass(frozen=True, slots=True)
class Decision:
    due: NudgeDue | None  # what to publish, if anything
    next: Occurrence | None  # where to re-arm the timer (None: the rule never fires again)
    missed: list[Occurrence] = field(default_factory=list)
    dropped: Occurrence | None = None  # fell in quiet hours with policy "drop"
    lateness: timedelta = timedelta(0)


def decide(
    schedule: Schedule, current: Occurrence, *, seq: int, now: datetime, grace: timedelta
) -> Decision:
    missed: list[Occurrence] = []
    nxt = next_occurrence(schedule, current.nominal)
    steps = 0
    while nxt is not None and nxt.fire_at <= now and steps < _MAX_CATCH_UP:
        missed.append(current)
        current, nxt = nxt, next_occurrence(schedule, nxt.nominal)
        steps += 1
    if nxt is not None and nxt.fire_at <= now:  # hopelessly behind: jump to the future
        nxt = next_occurrence(schedule, now)
    lateness = now - current.fire_at
    if lateness > grace:
        return Decision(None, nxt, [*missed, current], lateness=lateness)
    if current.dropped:
        return Decision(None, nxt, missed, dropped=current, lateness=lateness)
    return Decision(_nudge_due(schedule, current, seq, now), nxt, missed, lateness=lateness)


def _nudge_due(schedule: Schedule, occ: Occurrence, seq: int, now: datetime) -> NudgeDue:
    oid = occurrence_id(schedule.schedule_id, occ.nominal)
    recipients = list(schedule.recipients)
    pair = schedule.partners
    whose = pair[seq % len(pair)] if pair else None
    if schedule.alternate and whose is not None:
        recipients = [whose]
    # Only a date night has someone whose turn it is to plan; schedules of one couple fire in
    # step, so seq agrees between both partners' own-local date-night schedules.
    turn = whose if schedule.kind == "date_night" else None
    return NudgeDue(
        type="nudge.due.v1",
        event_id=_uuid5(oid),
        occurred_at=now,
        producer=PRODUCER,
        data=NudgeDueData(
            occurrence_id=oid,
            couple_id=schedule.couple_id,
            schedule_id=schedule.schedule_id,
            kind=schedule.kind,
            recipients=recipients,
            turn=turn,
            sequence=seq,
            scheduled_at=occ.fire_at,
            revision=schedule.revision,
            note=occ.note or ("late" if now - occ.fire_at > _LATE else None),
        ),
    )
