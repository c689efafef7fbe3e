"""One couple, as the services see it: `nudge trace COUPLE_ID` and the status page's search.

Pure: `build_trace` turns what services/operator/trace_reader.py read from Redis (a
:class:`TraceInput`) into a :class:`CoupleTrace`; the clock's `now` is an argument. The
schedules are decoded read-only with the scheduler's own codec (services/scheduler/records.py)
and their next fires computed with its own planning code, so the trace says what the
scheduler will do, notes included (quiet hours, DST gaps).

Ids, kinds, zones, channels and reasons only: never names, addresses, push subscriptions,
jar ideas (the jar's size only) or a dead letter's payload; dead-letter reasons are scrubbed
of addresses and URLs and cut. Outcomes, retries and dead letters are found by a bounded
scan of the newest entries (`*_scanned` says how many were looked at), not by an index: an
older outcome of the couple may exist beyond the scan.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any, Final, NamedTuple
from zoneinfo import ZoneInfo

from couples_nudge.common.clock import epoch_ms, from_ms
from couples_nudge.common.couple_state import CoupleState, parse_couple
from couples_nudge.common.logging import scrub
from couples_nudge.scheduler.planning import Occurrence, Schedule, next_occurrence, occurrence_at
from couples_nudge.scheduler.preview import occurrence_note
from couples_nudge.scheduler.records import decode_record
from couples_nudge.scheduler.rules import CronRule
from couples_nudge_schemas import (
    EventRejected,
    NudgeFailed,
    NudgeSent,
    NudgeSuppressed,
    parse_outcomes_entry,
)

__all__ = [
    "CoupleTrace",
    "DeadLetterTrace",
    "FireTrace",
    "OutcomeTrace",
    "PartnerTrace",
    "PauseTrace",
    "RecipientFire",
    "RetryTrace",
    "ScheduleTrace",
    "TraceInput",
    "UnsubscribeTrace",
    "build_trace",
]

FIRES_HORIZON: Final = timedelta(days=366)
REASON_LIMIT: Final = 200
_PROFILE_PREFIXES: Final = ("pause", "unsub:", "dead:")


@dataclass(frozen=True, slots=True)
class TraceInput:
    """What the reader took from Redis for one couple, undecoded."""

    couple_id: str
    couple: dict[bytes, bytes]  # the couple hash (empty: no such couple)
    legacy_records: dict[str, bytes]  # schedule id -> record of the layout before issue 7
    timers: dict[str, int]  # schedule id -> armed fire time (ms); absent: not armed
    erased_ms: int | None  # the erasure tombstone's time, if the couple was erased
    jar_size: int
    outcomes: list[tuple[str, bytes]]  # (entry id, __data__), newest first, as scanned
    retries: list[tuple[bytes, int]]  # (member, retry at ms) of the couple's shard, as scanned
    dead: list[tuple[str, dict[bytes, bytes]]]  # (entry id, fields), newest first, as scanned


@dataclass(frozen=True, slots=True)
class PartnerTrace:
    partner_id: str
    timezone: str
    locale: str
    channels: tuple[str, ...]
    quiet_hours: str | None  # "22:00-07:00 defer"


@dataclass(frozen=True, slots=True)
class PauseTrace:
    scope: str  # "couple" or a partner id
    since: datetime
    until: datetime | None  # None: until resumed
    active: bool  # at the trace's `at`


@dataclass(frozen=True, slots=True)
class UnsubscribeTrace:
    partner_id: str
    kind: str  # a nudge kind or "all"
    channel: str  # a channel or "all"
    since: datetime


@dataclass(frozen=True, slots=True)
class ScheduleTrace:
    schedule_id: str
    kind: str
    rule: str  # "cron 0 19 * * 5", "cron 0 19 * * 5 every 2 weeks from 2026-01-02", ...
    timezone: str
    recipients: tuple[str, ...]
    takes_turns: bool
    sequence: int  # occurrences published so far
    armed_at: datetime | None  # the timer; None: not armed (nothing more to fire)


@dataclass(frozen=True, slots=True)
class RecipientFire:
    partner_id: str
    at_local: str  # "2026-12-04T19:00+01:00" in the partner's own zone
    timezone: str
    channels: tuple[str, ...]  # the channels a send would use, as of the trace's `at`
    blocked: str | None  # "paused", "unsubscribed", "channel_dead", "no_channel" or None


@dataclass(frozen=True, slots=True)
class FireTrace:
    at: datetime  # UTC
    schedule_id: str
    kind: str
    occurrence_id: str
    note: str | None  # quiet_hours_deferred, quiet_hours_dropped, dst_gap: ..., ...
    recipients: tuple[RecipientFire, ...]


@dataclass(frozen=True, slots=True)
class OutcomeTrace:
    entry_id: str
    at: datetime
    outcome: str  # sent, suppressed, failed
    kind: str
    partner_id: str | None
    channel: str | None
    reason: str | None  # suppression reason; "permanent" / "transient" for a failure
    occurrence_id: str
    content_id: str | None


@dataclass(frozen=True, slots=True)
class RetryTrace:
    occurrence_id: str
    kind: str
    attempt: int  # the attempt that will be made
    at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetterTrace:
    entry_id: str
    at: str
    source: str
    attempts: int
    reason: str  # scrubbed and cut


@dataclass(frozen=True, slots=True)
class CoupleTrace:
    couple_id: str
    at: datetime
    found: bool  # the couple hash exists
    erased_at: datetime | None
    revision: int | None
    partners: tuple[PartnerTrace, ...]
    date_nights_from: str  # catalog, jar or mixed
    daily_question: bool
    jar_size: int
    pauses: tuple[PauseTrace, ...]
    unsubscribes: tuple[UnsubscribeTrace, ...]
    dead_channels: tuple[UnsubscribeTrace, ...]  # kind "all": a channel that answered "gone"
    schedules: tuple[ScheduleTrace, ...]
    next_fires: tuple[FireTrace, ...]
    outcomes: tuple[OutcomeTrace, ...]  # newest first
    retries: tuple[RetryTrace, ...]
    dead_letters: tuple[DeadLetterTrace, ...]
    outcomes_scanned: int
    retries_scanned: int
    dead_scanned: int

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types; datetimes as ISO 8601 strings."""
        plain: dict[str, Any] = _plain(asdict(self))
        return plain


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def build_trace(
    read: TraceInput, now: datetime, *, fires: int = 10, outcomes: int = 20
) -> CoupleTrace:
    """The couple's trace from what was read; `fires` next fires, `outcomes` newest outcomes."""
    state = parse_couple(read.couple) if read.couple else CoupleState(None)
    profile = state.profile
    schedules = _schedules(read, state)
    now_ms = epoch_ms(now)
    pauses = _pauses(state, now_ms)
    partners = (
        ()
        if profile is None
        else tuple(
            PartnerTrace(
                p.partner_id,
                p.timezone,
                p.locale,
                tuple(p.channels),
                None
                if p.quiet_hours is None
                else f"{p.quiet_hours.start:%H:%M}-{p.quiet_hours.end:%H:%M} "
                f"{p.quiet_hours.policy}",
            )
            for p in profile.partners
        )
    )
    return CoupleTrace(
        couple_id=read.couple_id,
        at=now,
        found=profile is not None,
        erased_at=None if read.erased_ms is None else from_ms(read.erased_ms),
        revision=None if profile is None else profile.revision,
        partners=partners,
        date_nights_from=state.date_night_source,
        daily_question=state.daily_question,
        jar_size=read.jar_size,
        pauses=pauses,
        unsubscribes=_unsubscribes(state),
        dead_channels=_dead_channels(state),
        schedules=tuple(
            _schedule_trace(s.schedule, s.seq, read.timers.get(s.schedule.schedule_id))
            for s in schedules
        ),
        next_fires=_next_fires(schedules, read.timers, state, partners, fires),
        outcomes=_outcomes(read, outcomes),
        retries=_retries(read),
        dead_letters=_dead(read),
        outcomes_scanned=len(read.outcomes),
        retries_scanned=len(read.retries),
        dead_scanned=len(read.dead),
    )


# --- schedules and their next fires ----------------------------------------------------------


class _Stored(NamedTuple):
    schedule: Schedule
    seq: int  # occurrences published so far
    nominal_ms: int  # the armed occurrence's rule instant (0: the rule fires no more)


def _schedules(read: TraceInput, state: CoupleState) -> list[_Stored]:
    """Every stored record, decoded as the timer loop decodes them."""
    c = read.couple
    shared = [c.get(f, b"") for f in (b"rev", b"s0", b"s1", b"q0", b"q1")]
    found: list[_Stored] = []
    sids = [s for s in state.fields.get("sids", "").split(",") if s]
    for sid in sids:
        field = sid.split("/", 1)[1].encode()
        raw = c.get(field)
        try:
            if raw is not None:
                record = decode_record(sid, b"\n".join([raw, *shared]))
            elif sid in read.legacy_records:
                record = decode_record(sid, read.legacy_records[sid])
            else:
                continue
        except (ValueError, KeyError, IndexError):
            continue  # a record the scheduler could not read either: it is not shown as armed
        found.append(_Stored(record.schedule, record.seq, record.nominal_ms))
    return sorted(found, key=lambda stored: stored.schedule.schedule_id)


def _rule_text(schedule: Schedule) -> str:
    rule = schedule.rule
    if isinstance(rule, CronRule):
        text = f"cron {rule.expr}"
        if rule.every_weeks > 1:
            text += f" every {rule.every_weeks} weeks"
            if rule.anchor is not None:
                text += f" from {rule.anchor.isoformat()}"
        return text
    return (
        f"{rule.times_per_week} times a week between "
        f"{rule.window_start:%H:%M} and {rule.window_end:%H:%M}"
    )


def _schedule_trace(schedule: Schedule, seq: int, armed_ms: int | None) -> ScheduleTrace:
    return ScheduleTrace(
        schedule_id=schedule.schedule_id,
        kind=schedule.kind,
        rule=_rule_text(schedule),
        timezone=schedule.timezone,
        recipients=schedule.recipients,
        takes_turns=schedule.alternate,
        sequence=seq,
        armed_at=None if armed_ms is None else from_ms(armed_ms),
    )


def _next_fires(
    schedules: list[_Stored],
    timers: dict[str, int],
    state: CoupleState,
    partners: tuple[PartnerTrace, ...],
    limit: int,
) -> tuple[FireTrace, ...]:
    """The next `limit` fires of all armed schedules, in time order (each schedule's first one
    at its timer, with the note of the occurrence it holds)."""
    by_id = {p.partner_id: p for p in partners}
    found: list[FireTrace] = []
    for schedule, seq, nominal_ms in schedules:
        armed = timers.get(schedule.schedule_id)
        if armed is None or not nominal_ms:
            continue
        occurrence: Occurrence | None = occurrence_at(schedule, from_ms(nominal_ms))
        end = from_ms(armed) + FIRES_HORIZON
        first = True
        for _ in range(limit):
            if occurrence is None or occurrence.nominal > end:
                break
            at = from_ms(armed) if first else occurrence.fire_at
            found.append(_fire(schedule, occurrence, at, seq, state, by_id))
            if not occurrence.dropped:
                seq += 1
            occurrence = next_occurrence(schedule, occurrence.nominal)
            first = False
    found.sort(key=lambda f: (f.at, f.schedule_id))
    return tuple(found[:limit])


def _fire(
    schedule: Schedule,
    occurrence: Occurrence,
    at: datetime,
    seq: int,
    state: CoupleState,
    partners: dict[str, PartnerTrace],
) -> FireTrace:
    recipients = schedule.recipients
    if schedule.alternate and schedule.partners:
        recipients = (schedule.partners[seq % len(schedule.partners)],)
    return FireTrace(
        at=at,
        schedule_id=schedule.schedule_id,
        kind=schedule.kind,
        occurrence_id=f"{schedule.schedule_id}@{int(occurrence.nominal.timestamp())}",
        note=occurrence_note(schedule, occurrence),
        recipients=tuple(
            _recipient(pid, schedule.kind, at, state, partners.get(pid)) for pid in recipients
        ),
    )


def _recipient(
    partner_id: str, kind: str, at: datetime, state: CoupleState, partner: PartnerTrace | None
) -> RecipientFire:
    zone = partner.timezone if partner else "UTC"
    local = at.astimezone(ZoneInfo(zone)).isoformat(timespec="minutes")
    channels = partner.channels if partner else ()
    usable = tuple(
        c
        for c in channels
        if not state.unsubscribed(partner_id, kind, c) and not state.channel_dead(partner_id, c)
    )
    blocked: str | None = None
    if state.paused(partner_id, epoch_ms(at)):
        blocked = "paused"
    elif not channels:
        blocked = "no_channel"
    elif not usable:
        dead = all(state.channel_dead(partner_id, c) for c in channels)
        blocked = "channel_dead" if dead else "unsubscribed"
    return RecipientFire(partner_id, local, zone, usable, blocked)


# --- consent ---------------------------------------------------------------------------------


def _pauses(state: CoupleState, now_ms: int) -> tuple[PauseTrace, ...]:
    found = []
    for name, value in sorted(state.fields.items()):
        if name != "pause" and not name.startswith("pause:"):
            continue
        since, _, until = value.partition("|")
        if until == "off":
            continue  # resumed
        scope = "couple" if name == "pause" else name.split(":", 1)[1]
        until_ms = None if until == "inf" else int(until)
        active = until_ms is None or now_ms < until_ms
        found.append(
            PauseTrace(
                scope, from_ms(int(since)), None if until_ms is None else from_ms(until_ms), active
            )
        )
    return tuple(found)


def _since(value: str) -> datetime:
    """When a consent field was written: its leading "<occurred_ms>" ("<ms>|<value>")."""
    head = value.split("|", 1)[0]
    return from_ms(int(head) if head.isdigit() else 0)


def _unsubscribes(state: CoupleState) -> tuple[UnsubscribeTrace, ...]:
    found = []
    for name, value in sorted(state.fields.items()):
        if name.startswith("unsub:"):
            _, partner, kind, channel = name.split(":", 3)
            found.append(UnsubscribeTrace(partner, kind, channel, _since(value)))
    return tuple(found)


def _dead_channels(state: CoupleState) -> tuple[UnsubscribeTrace, ...]:
    found = []
    for name, value in sorted(state.fields.items()):
        if name.startswith("dead:"):
            _, partner, channel = name.split(":", 2)
            found.append(UnsubscribeTrace(partner, "all", channel, _since(value)))
    return tuple(found)


# --- what happened -----------------------------------------------------------------------------


def _outcomes(read: TraceInput, limit: int) -> tuple[OutcomeTrace, ...]:
    needle = read.couple_id.encode()
    found: list[OutcomeTrace] = []
    for entry_id, raw in read.outcomes:
        if len(found) >= limit:
            break
        if needle not in raw:
            continue  # cheap: most entries are other couples'
        try:
            event = parse_outcomes_entry(raw)
        except EventRejected:
            continue
        if not isinstance(event, NudgeSent | NudgeSuppressed | NudgeFailed):
            continue
        d = event.data
        if d.couple_id != read.couple_id:
            continue
        reason: str | None = None
        content: str | None = None
        if isinstance(event, NudgeSuppressed):
            reason = event.data.reason
        elif isinstance(event, NudgeFailed):
            reason = "permanent" if event.data.permanent else "transient"
        else:
            content = event.data.content_id
        found.append(
            OutcomeTrace(
                entry_id=entry_id,
                at=event.occurred_at,
                outcome=event.type.split(".")[1],
                kind=d.kind,
                partner_id=d.partner_id,
                channel=d.channel,
                reason=reason,
                occurrence_id=d.occurrence_id,
                content_id=content,
            )
        )
    return tuple(found)


def _retries(read: TraceInput) -> tuple[RetryTrace, ...]:
    found = []
    for member, at_ms in read.retries:
        attempt, _, payload = member.partition(b"|")
        try:
            data = json.loads(payload)["data"]
            if data["couple_id"] != read.couple_id:
                continue
            found.append(
                RetryTrace(
                    str(data["occurrence_id"]), str(data["kind"]), int(attempt), from_ms(at_ms)
                )
            )
        except (ValueError, KeyError, TypeError):
            continue
    return tuple(sorted(found, key=lambda r: r.at))


def _dead(read: TraceInput) -> tuple[DeadLetterTrace, ...]:
    found = []
    for entry_id, fields in read.dead:
        if fields.get(b"couple_id", b"").decode(errors="replace") != read.couple_id:
            continue
        attempts = fields.get(b"attempts", b"0")
        found.append(
            DeadLetterTrace(
                entry_id=entry_id,
                at=fields.get(b"at", b"").decode(errors="replace")[:40],
                source=fields.get(b"source", b"").decode(errors="replace")[:80],
                attempts=int(attempts) if attempts.isdigit() else 0,
                reason=scrub(fields.get(b"reason", b"").decode(errors="replace"))[:REASON_LIMIT],
            )
        )
    return tuple(found)
