"""What to do with one due timer: publish, skip as missed, or drop. Pure: `now` is an argument.

After downtime a schedule may be several occurrences behind. It fires at most once: the
newest occurrence that is due, and only if it is within the kind's grace window; the older
ones are reported as missed. The timer is re-armed at the first occurrence after `now`, so
there is never a backlog of copies.

What is published is a :class:`Due`: the timer loop writes its JSON directly
(:meth:`Due.payload`, byte for byte what the NudgeDue model dumps, without building the
model: ~10 us less per fire in a burst); :meth:`Due.model` builds the validated model.
In a burst, thousands of Dues differ only in whose they are: a :class:`DueTemplate` holds what
they share, so a fire writes its JSON without a Schedule, an Occurrence or a Due.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final

from couples_nudge.scheduler.planning import Occurrence, Schedule, next_occurrence
from couples_nudge_schemas import NudgeDue, NudgeDueData

__all__ = [
    "Decision",
    "Due",
    "DueTemplate",
    "Timing",
    "decide",
    "due_event_id",
    "occurred_field",
    "occurrence_id",
    "record_after",
    "timing",
]

_NAMESPACE: Final = uuid.UUID("5d0c6e0e-8f1d-4e8a-9b7e-6a2f4c1d9e11")
_MAX_CATCH_UP: Final = 1000
_LATE: Final = timedelta(minutes=1)
PRODUCER: Final = "nudge-scheduler"


_NAMESPACE_BYTES: Final = _NAMESPACE.bytes
_VERSION_MASK: Final = ~((0xC000 << 48) | (0xF000 << 64))
_VERSION_5: Final = (0x8000 << 48) | (5 << 76)


def _uuid5_int(name: str) -> int:
    digest = hashlib.sha1(_NAMESPACE_BYTES + name.encode(), usedforsecurity=False).digest()
    return int.from_bytes(digest[:16], "big") & _VERSION_MASK | _VERSION_5


def _uuid5(name: str) -> uuid.UUID:
    """``uuid.uuid5(_NAMESPACE, name)``, without ``UUID.__init__``'s checks: 2x faster per fire."""
    made = object.__new__(uuid.UUID)
    object.__setattr__(made, "int", _uuid5_int(name))
    object.__setattr__(made, "is_safe", uuid.SafeUUID.unknown)
    return made


_NAMESPACE_SHA1: Final = hashlib.sha1(_NAMESPACE_BYTES, usedforsecurity=False)
# The RFC 4122 variant (binary 10) in the first hex digit of the clock sequence.
_VARIANT: Final = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def _uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(_NAMESPACE, name))`` without a UUID object (or an int)."""
    sha1 = _NAMESPACE_SHA1.copy()
    sha1.update(name.encode())
    h = sha1.hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def occurrence_id(schedule_id: str, nominal: datetime) -> str:
    return f"{schedule_id}@{int(nominal.timestamp())}"


def due_event_id(occurrence: str) -> str:
    """A NudgeDue's event id, as text: a UUIDv5 of its occurrence id."""
    return _uuid5_text(occurrence)


@dataclass(frozen=True, slots=True)
class Due:
    """One occurrence to publish now, with the schedule's sequence number (whose turn it is)."""

    schedule: Schedule
    occurrence: Occurrence
    seq: int
    now: datetime

    @property
    def occurrence_id(self) -> str:
        return occurrence_id(self.schedule.schedule_id, self.occurrence.nominal)

    @property
    def event_id(self) -> str:
        return due_event_id(self.occurrence_id)

    def model(self) -> NudgeDue:
        """The validated NudgeDue (raises ValidationError for values the schema refuses)."""
        return _nudge_due(self.schedule, self.occurrence, self.seq, self.now)

    def payload(self) -> bytes:
        """``self.model().model_dump_json().encode()``, byte for byte, without the model.

        Anything the direct path does not vouch for (a value the schema might refuse or JSON
        might escape, a datetime not in UTC) goes through the model, which validates it.
        """
        fast = _due_json(self.schedule, self.occurrence, self.seq, self.now)
        return fast if fast is not None else self.model().model_dump_json().encode()


@dataclass(frozen=True, slots=True)
class Decision:
    publish: Due | None  # what to publish, if anything
    next: Occurrence | None  # where to re-arm the timer (None: the rule never fires again)
    missed: list[Occurrence] = field(default_factory=list)
    dropped: Occurrence | None = None  # fell in quiet hours with policy "drop"
    lateness: timedelta = timedelta(0)

    @property
    def due(self) -> NudgeDue | None:
        """The NudgeDue model of what is published (built on each access)."""
        return None if self.publish is None else self.publish.model()


@dataclass(frozen=True, slots=True)
class Timing:
    """What `decide` decides that does not depend on whose schedule it is.

    It depends only on the rule, zone and quiet hours, the current occurrence, `now` and the
    grace window: in a burst thousands of schedules share all of those, and so one Timing.
    """

    publish: Occurrence | None  # the occurrence published now, if any
    next: Occurrence | None
    missed: tuple[Occurrence, ...] = ()
    dropped: Occurrence | None = None
    lateness: timedelta = timedelta(0)

    def decision(self, schedule: Schedule, seq: int, now: datetime) -> Decision:
        publish = None if self.publish is None else Due(schedule, self.publish, seq, now)
        return Decision(publish, self.next, list(self.missed), self.dropped, self.lateness)


def timing(schedule: Schedule, current: Occurrence, *, now: datetime, grace: timedelta) -> Timing:
    if current.fire_at > now:  # not due yet: a timer the zone's new rules moved later
        return Timing(None, current)
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
        return Timing(None, nxt, (*missed, current), lateness=lateness)
    if current.dropped:
        return Timing(None, nxt, tuple(missed), dropped=current, lateness=lateness)
    return Timing(current, nxt, tuple(missed), lateness=lateness)


def decide(
    schedule: Schedule, current: Occurrence, *, seq: int, now: datetime, grace: timedelta
) -> Decision:
    return timing(schedule, current, now=now, grace=grace).decision(schedule, seq, now)


def record_after(
    state: bytes, *, published: bool, next_fire_ms: int | None, next_nominal_ms: int | None
) -> bytes:
    """The record FIRE writes after a step, from the state DUE read ("<seq>|<nominal_ms>|<spec>"
    first, either layout): seq counts a publish; the nominal becomes the next one (None keeps
    it: a deferred retry of the same occurrence), or empty when the rule never fires again.
    Computed here so that FIRE, which checks the state is unchanged, only writes it."""
    seq, nominal, spec = state.split(b"\n", 1)[0].split(b"|", 2)
    if published:
        seq = b"%d" % (int(seq) + 1)
    if next_fire_ms is None:
        nominal = b""
    elif next_nominal_ms is not None:
        nominal = b"%d" % next_nominal_ms
    return b"|".join((seq, nominal, spec))


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


# What the direct JSON path vouches for: values the schema accepts as they are and that JSON
# writes without escapes (the patterns of SafeId and OccurrenceId, notes in plain ASCII).
_SAFE_IDS: Final = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}(?:,[A-Za-z0-9][A-Za-z0-9_.-]{0,63})*"
)
_OCCURRENCE_ID: Final = re.compile(r"[A-Za-z0-9_.:/@-]{1,200}")
_NOTE: Final = re.compile(r"[A-Za-z0-9_ .:-]{0,40}")
_KINDS: Final = frozenset(("date_night", "check_in", "appreciation"))


def _utc_text(instant: datetime) -> str | None:
    """How pydantic writes a UTC datetime ("...T19:00:00Z", "...T19:00:00.500000Z")."""
    # Checked before the cache: aware datetimes of one instant are equal in any zone.
    return _utc_iso(instant) if instant.tzinfo is UTC else None


def occurred_field(now: datetime) -> bytes:
    """The envelope's occurred_at as a NudgeDue payload writes it (`now` aware, in UTC)."""
    text = _utc_text(now)
    if text is None:
        raise ValueError(f"not a UTC datetime: {now!r}")
    return f'"occurred_at":"{text}"'.encode()


@lru_cache(maxsize=1024)
def _utc_iso(instant: datetime) -> str:
    return instant.replace(tzinfo=None).isoformat() + "Z"


def _ids_are_safe(couple_id: str, recipients: tuple[str, ...], turn: str | None) -> bool:
    """Every id a SafeId (str, no comma): one regex over them joined by commas."""
    ids = (couple_id, *recipients) if turn is None else (couple_id, *recipients, turn)
    if not all(type(i) is str for i in ids):
        return False
    return _SAFE_IDS.fullmatch(",".join(ids)) is not None


def _direct_texts(occ: Occurrence, now: datetime) -> tuple[str | None, str, str] | None:
    """The note and both instants as the direct JSON writes them, or None: the model decides."""
    note = occ.note or ("late" if now - occ.fire_at > _LATE else None)
    occurred_at = _utc_text(now)
    scheduled_at = _utc_text(occ.fire_at)
    if (
        occurred_at is None
        or scheduled_at is None
        or (note is not None and not (type(note) is str and _NOTE.fullmatch(note)))
    ):
        return None
    return note, occurred_at, scheduled_at


def _due_json(schedule: Schedule, occ: Occurrence, seq: int, now: datetime) -> bytes | None:
    """NudgeDue JSON as pydantic dumps it, or None when the model must decide (see payload)."""
    oid = occurrence_id(schedule.schedule_id, occ.nominal)
    recipients = schedule.recipients
    pair = schedule.partners
    whose = pair[seq % len(pair)] if pair else None
    if schedule.alternate and whose is not None:
        recipients = (whose,)
    turn = whose if schedule.kind == "date_night" else None
    texts = _direct_texts(occ, now)
    if (
        texts is None
        or not 1 <= len(recipients) <= 2
        or len(set(recipients)) != len(recipients)  # the schema refuses repeated recipients
        or not schedule.schedule_id
        or not _ids_are_safe(schedule.couple_id, recipients, turn)
        or not _OCCURRENCE_ID.fullmatch(oid)
        or len(schedule.schedule_id) > 160
        or schedule.kind not in _KINDS
        or type(seq) is not int
        or seq < 0
        or type(schedule.revision) is not int
        or schedule.revision < 0
    ):
        return None
    note, occurred_at, scheduled_at = texts
    people = ",".join(f'"{r}"' for r in recipients)
    turn_json = "null" if turn is None else f'"{turn}"'
    note_json = "null" if note is None else f'"{note}"'
    return (
        f'{{"event_id":"{_uuid5_text(oid)}","occurred_at":"{occurred_at}",'
        f'"producer":"{PRODUCER}","type":"nudge.due.v1","data":{{"occurrence_id":"{oid}",'
        f'"couple_id":"{schedule.couple_id}","schedule_id":"{schedule.schedule_id}",'
        f'"kind":"{schedule.kind}","recipients":[{people}],"turn":{turn_json},'
        f'"sequence":{seq},"scheduled_at":"{scheduled_at}","revision":{schedule.revision},'
        f'"note":{note_json}}}}}'
    ).encode()


# The couple id as a SafeId, a schedule id headed by it whose rest is occurrence-id text, then
# both partner ids as SafeIds: what DueTemplate.payload vouches for (see _due_json's checks).
_SAFE_ID: Final = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_BURST_IDS: Final = re.compile(rf"({_SAFE_ID}),\1/[A-Za-z0-9_.:/@-]*,{_SAFE_ID},{_SAFE_ID}")


@dataclass(frozen=True, slots=True)
class DueTemplate:
    """The NudgeDue JSON that Dues of one occurrence, kind and audience shape share.

    Only the schedule and couple ids, the two partner ids, seq and revision vary between them:
    :meth:`payload` writes ``Due(...).payload()`` for those, or returns None when it cannot
    vouch for them (the caller then takes the Due's own path). Build with :meth:`of`.
    """

    head: str  # '","occurred_at":...,"data":{"occurrence_id":"'
    at: str  # "@<nominal epoch seconds>"
    kind: str  # '","kind":"<kind>","recipients":['
    tail: str  # ',"scheduled_at":"...","revision":'
    note: str  # ',"note":...}}'
    audience: tuple[int, ...]  # recipients as indexes into the partners
    alternate: bool
    turn: bool  # a date night: whose turn it is goes out
    longest_id: int  # the longest schedule id the occurrence-id pattern and schema allow

    @classmethod
    def of(cls, due: Due, audience: tuple[int, ...]) -> DueTemplate | None:
        """The template of `due`'s shape, or None when `due` does not fit one.

        `audience` is the recipients' indexes into ``due.schedule.partners``; the template is
        checked against `due` itself (same bytes as ``due.payload()``).
        """
        schedule, occ = due.schedule, due.occurrence
        texts = _direct_texts(occ, due.now)
        if (
            texts is None
            or len(schedule.partners) != 2
            or not 1 <= len(audience) <= 2
            or schedule.kind not in _KINDS
        ):
            return None
        note, occurred_at, scheduled_at = texts
        at = f"@{int(occ.nominal.timestamp())}"
        note_json = "null" if note is None else f'"{note}"'
        template = cls(
            head=(
                f'","occurred_at":"{occurred_at}","producer":"{PRODUCER}","type":"nudge.due.v1",'
                '"data":{"occurrence_id":"'
            ),
            at=at,
            kind=f'","kind":"{schedule.kind}","recipients":[',
            tail=f',"scheduled_at":"{scheduled_at}","revision":',
            note=f',"note":{note_json}}}}}',
            audience=audience,
            alternate=schedule.alternate,
            turn=schedule.kind == "date_night",
            longest_id=min(160, 200 - len(at)),
        )
        mine = template.payload(
            schedule.schedule_id,
            schedule.couple_id,
            (schedule.partners[0], schedule.partners[1]),
            due.seq,
            schedule.revision,
        )
        return template if mine is not None and mine == due.payload() else None

    def payload(
        self,
        schedule_id: str,
        couple_id: str,
        partners: tuple[str, str],
        seq: int,
        revision: int,
    ) -> bytes | None:
        """The JSON of this shape's Due for these ids (`couple_id` heads `schedule_id`)."""
        a, b = partners
        if (
            seq < 0
            or revision < 0
            or len(schedule_id) > self.longest_id
            or (a == b and len(self.audience) == 2 and not self.alternate)  # repeated recipient
            or _BURST_IDS.fullmatch(f"{couple_id},{schedule_id},{a},{b}") is None
        ):
            return None
        whose = b if seq & 1 else a
        if self.alternate:
            people = f'"{whose}"'
        elif len(self.audience) == 1:
            people = f'"{partners[self.audience[0]]}"'
        else:
            people = f'"{partners[self.audience[0]]}","{partners[self.audience[1]]}"'
        turn = f'"{whose}"' if self.turn else "null"
        oid = schedule_id + self.at
        return (
            f'{{"event_id":"{_uuid5_text(oid)}{self.head}{oid}","couple_id":"{couple_id}",'
            f'"schedule_id":"{schedule_id}{self.kind}{people}],"turn":{turn},'
            f'"sequence":{seq}{self.tail}{revision}{self.note}'
        ).encode()
