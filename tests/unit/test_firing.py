"""Specification of couples_nudge.scheduler.firing.decide: what one due timer does.

The schedules fire daily at 09:00 in Berlin, which in June 2026 (UTC+2) is 07:00Z.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, time, timedelta, timezone, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from couples_nudge.scheduler.firing import (
    _NAMESPACE,
    Decision,
    Due,
    _due_json,
    _uuid5,
    _uuid5_text,
    decide,
    occurrence_id,
)
from couples_nudge.scheduler.planning import Occurrence, QuietWindow, Schedule, occurrence_at
from couples_nudge.scheduler.rules import CronRule, next_fire
from couples_nudge_schemas import NudgeKind, QuietHours, parse_due

GRACE = timedelta(hours=3)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def on_time(text: str) -> Occurrence:
    return Occurrence(at(text), at(text))


def schedule(
    expr: str = "0 9 * * *",
    *,
    schedule_id: str = "c1/c/maya",
    kind: NudgeKind = "check_in",
    recipients: tuple[str, ...] = ("maya",),
    alternate: bool = False,
    quiet: QuietHours | None = None,
    partners: tuple[str, ...] = ("maya", "sam"),
) -> Schedule:
    return Schedule(
        schedule_id=schedule_id,
        couple_id="c1",
        kind=kind,
        rule=CronRule(expr),
        timezone="Europe/Berlin",
        recipients=recipients,
        alternate=alternate,
        quiet=() if quiet is None else (QuietWindow.of(quiet, "Europe/Berlin"),),
        revision=5,
        partners=partners,
    )


def night_quiet(policy: Literal["defer", "drop"]) -> QuietHours:
    return QuietHours(start=time(22, 0), end=time(7, 0), policy=policy)


def run(
    current: Occurrence,
    now: str,
    *,
    sched: Schedule | None = None,
    seq: int = 0,
    grace: timedelta = GRACE,
) -> Decision:
    return decide(sched or schedule(), current, seq=seq, now=at(now), grace=grace)


class TestOnTime:
    def test_publishes_nudge_due(self) -> None:
        """At its time the occurrence becomes a NudgeDue with the schedule's ids and revision."""
        decision = run(on_time("2026-06-10T07:00Z"), "2026-06-10T07:00Z", seq=4)
        due = decision.due
        assert due is not None
        assert due.type == "nudge.due.v1"
        assert due.producer == "nudge-scheduler"
        assert due.occurred_at == at("2026-06-10T07:00Z")
        data = due.data
        assert data.occurrence_id == "c1/c/maya@1781074800"  # 20614 days + 7 h after the epoch
        assert (data.couple_id, data.schedule_id, data.kind) == ("c1", "c1/c/maya", "check_in")
        assert (data.recipients, data.turn) == (["maya"], None)
        assert (data.sequence, data.revision) == (4, 5)
        assert data.scheduled_at == at("2026-06-10T07:00Z")
        assert data.note is None

    def test_rearms_at_next_occurrence(self) -> None:
        """The timer moves to the next day's 09:00; nothing is missed or dropped."""
        decision = run(on_time("2026-06-10T07:00Z"), "2026-06-10T07:00Z")
        assert decision.next == on_time("2026-06-11T07:00Z")
        assert (decision.missed, decision.dropped, decision.lateness) == ([], None, timedelta(0))

    def test_small_delay_is_not_late(self) -> None:
        """A delay of up to a minute (polling, batching) is not reported as late."""
        decision = run(on_time("2026-06-10T07:00Z"), "2026-06-10T07:01Z")
        assert decision.due is not None
        assert decision.due.data.note is None
        assert decision.lateness == timedelta(minutes=1)

    def test_published_event_is_valid_on_the_wire(self) -> None:
        """The NudgeDue survives JSON encoding and strict parsing unchanged."""
        due = run(on_time("2026-06-10T07:00Z"), "2026-06-10T07:00Z").due
        assert due is not None
        assert parse_due(json.dumps(due.model_dump(mode="json"))) == due


class TestLate:
    @pytest.mark.parametrize(
        ("now", "lateness"),
        [
            ("2026-06-10T07:02Z", timedelta(minutes=2)),
            ("2026-06-10T09:00Z", timedelta(hours=2)),
            ("2026-06-10T10:00Z", timedelta(hours=3)),  # exactly the grace window
        ],
    )
    def test_within_grace_fires_marked_late(self, now: str, lateness: timedelta) -> None:
        """Late but within grace: published once, for the original time, with note "late"."""
        decision = run(on_time("2026-06-10T07:00Z"), now)
        assert decision.due is not None
        assert decision.due.data.note == "late"
        assert decision.due.data.scheduled_at == at("2026-06-10T07:00Z")
        assert decision.due.occurred_at == at(now)
        assert decision.lateness == lateness
        assert decision.missed == []
        assert decision.next == on_time("2026-06-11T07:00Z")

    @pytest.mark.parametrize("now", ["2026-06-10T10:01Z", "2026-06-11T06:59Z"])
    def test_beyond_grace_is_missed(self, now: str) -> None:
        """Later than the grace window: nothing is published and the occurrence is missed."""
        current = on_time("2026-06-10T07:00Z")
        decision = run(current, now)
        assert decision.due is None
        assert decision.missed == [current]
        assert decision.lateness == at(now) - at("2026-06-10T07:00Z")
        assert decision.next == on_time("2026-06-11T07:00Z")

    def test_grace_is_per_call(self) -> None:
        """The same two hours are fine with a 3 h grace and missed with a 1 h grace."""
        current = on_time("2026-06-10T07:00Z")
        assert run(current, "2026-06-10T09:00Z", grace=timedelta(hours=3)).due is not None
        assert run(current, "2026-06-10T09:00Z", grace=timedelta(hours=1)).due is None


class TestBacklog:
    def test_fires_newest_once_within_grace(self) -> None:
        """After three days down, only today's occurrence fires; the older ones are missed."""
        decision = run(on_time("2026-06-07T07:00Z"), "2026-06-10T08:30Z")
        assert decision.due is not None
        assert decision.due.data.scheduled_at == at("2026-06-10T07:00Z")
        assert decision.due.data.occurrence_id == occurrence_id(
            "c1/c/maya", at("2026-06-10T07:00Z")
        )
        assert decision.due.data.note == "late"
        assert decision.missed == [
            on_time("2026-06-07T07:00Z"),
            on_time("2026-06-08T07:00Z"),
            on_time("2026-06-09T07:00Z"),
        ]
        assert decision.next == on_time("2026-06-11T07:00Z")

    def test_nothing_fires_when_newest_is_beyond_grace(self) -> None:
        """If even the newest occurrence is past grace, all of them are missed."""
        decision = run(on_time("2026-06-07T07:00Z"), "2026-06-10T11:00Z")
        assert decision.due is None
        assert [m.nominal for m in decision.missed] == [
            at("2026-06-07T07:00Z"),
            at("2026-06-08T07:00Z"),
            at("2026-06-09T07:00Z"),
            at("2026-06-10T07:00Z"),
        ]
        assert decision.next == on_time("2026-06-11T07:00Z")

    def test_years_behind_rearms_in_the_future(self) -> None:
        """Years of downtime publish nothing and re-arm at the first occurrence after now."""
        decision = run(on_time("2020-01-01T08:00Z"), "2026-06-10T08:00Z")
        assert decision.due is None
        assert decision.next == on_time("2026-06-11T07:00Z")
        assert decision.missed[0] == on_time("2020-01-01T08:00Z")

    @settings(max_examples=60, deadline=None)
    @given(
        expr=st.sampled_from(["0 9 * * *", "30 6 * * 1", "0 */6 * * *", "15 20 1 * *"]),
        start_minute=st.integers(0, 300 * 24 * 60),
        downtime=st.integers(0, 40 * 24 * 60),
        grace_minutes=st.integers(0, 12 * 60),
    )
    def test_at_most_once_and_in_the_future(
        self, expr: str, start_minute: int, downtime: int, grace_minutes: int
    ) -> None:
        """Whatever the downtime: at most one NudgeDue, for the newest due occurrence and only
        within grace; every older occurrence is missed; the next timer is after now."""
        sched = schedule(expr)
        zone = ZoneInfo("Europe/Berlin")
        first = next_fire(
            sched.rule, zone, at("2026-01-01T00:00Z") + timedelta(minutes=start_minute)
        )
        assert first is not None
        now = first + timedelta(minutes=downtime)
        grace = timedelta(minutes=grace_minutes)
        due_instants = [first]  # brute-force reference: every occurrence at or before now
        while (nxt := next_fire(sched.rule, zone, due_instants[-1])) is not None and nxt <= now:
            due_instants.append(nxt)
        newest = due_instants[-1]

        decision = decide(sched, Occurrence(first, first), seq=0, now=now, grace=grace)

        assert decision.next is not None
        assert decision.next.fire_at > now
        assert decision.next.nominal == next_fire(sched.rule, zone, newest)
        if now - newest <= grace:
            assert decision.due is not None
            assert decision.due.data.scheduled_at == newest
            assert [m.nominal for m in decision.missed] == due_instants[:-1]
        else:
            assert decision.due is None
            assert [m.nominal for m in decision.missed] == due_instants


class TestQuietHours:
    def test_dropped_occurrence_publishes_nothing(self) -> None:
        """An occurrence dropped for quiet hours is reported as dropped, not published."""
        sched = schedule("0 23 * * *", quiet=night_quiet("drop"))
        current = occurrence_at(sched, at("2026-06-10T21:00Z"))
        assert current.dropped
        decision = decide(sched, current, seq=3, now=at("2026-06-10T21:00Z"), grace=GRACE)
        assert decision.due is None
        assert decision.dropped == current
        assert decision.missed == []
        assert decision.next is not None
        assert decision.next.nominal == at("2026-06-11T21:00Z")

    def test_deferred_occurrence_fires_at_end_of_quiet_hours(self) -> None:
        """A deferred occurrence fires at 07:00, keeps its nominal identity and says why."""
        sched = schedule("0 23 * * *", quiet=night_quiet("defer"))
        current = occurrence_at(sched, at("2026-06-10T21:00Z"))
        decision = decide(sched, current, seq=0, now=at("2026-06-11T05:00Z"), grace=GRACE)
        assert decision.due is not None
        assert decision.due.data.scheduled_at == at("2026-06-11T05:00Z")
        assert decision.due.data.note == "quiet_hours_deferred"
        assert decision.due.data.occurrence_id == occurrence_id(
            "c1/c/maya", at("2026-06-10T21:00Z")
        )
        assert decision.missed == []
        assert decision.next == Occurrence(
            at("2026-06-11T21:00Z"), at("2026-06-12T05:00Z"), note="quiet_hours_deferred"
        )


class TestTurns:
    @pytest.mark.parametrize(
        ("seq", "expected"), [(0, "maya"), (1, "sam"), (2, "maya"), (3, "sam"), (10, "maya")]
    )
    def test_alternate_recipients_take_turns(self, seq: int, expected: str) -> None:
        """An alternating schedule sends each occurrence to one partner, by sequence parity."""
        sched = schedule(
            schedule_id="c1/d/turns", kind="date_night", recipients=("maya", "sam"), alternate=True
        )
        due = run(on_time("2026-06-10T07:00Z"), "2026-06-10T07:00Z", sched=sched, seq=seq).due
        assert due is not None
        assert (due.data.recipients, due.data.turn, due.data.sequence) == (
            [expected],
            expected,
            seq,
        )

    @pytest.mark.parametrize(("seq", "expected"), [(0, "maya"), (1, "sam"), (6, "maya")])
    def test_shared_date_night_names_whose_turn_to_plan(self, seq: int, expected: str) -> None:
        """A shared date night goes to both partners and says whose turn it is to plan."""
        sched = schedule(schedule_id="c1/d/both", kind="date_night", recipients=("maya", "sam"))
        due = run(on_time("2026-06-10T07:00Z"), "2026-06-10T07:00Z", sched=sched, seq=seq).due
        assert due is not None
        assert (due.data.recipients, due.data.turn) == (["maya", "sam"], expected)

    @pytest.mark.parametrize("alternate", [False, True], ids=["together", "alternate"])
    @pytest.mark.parametrize("kind", ["check_in", "appreciation"])
    def test_only_date_nights_have_a_turn_to_plan(self, kind: NudgeKind, alternate: bool) -> None:
        """`turn` is whose turn it is to plan a date night; other shared kinds carry none."""
        sched = schedule(
            schedule_id=f"c1/{kind[0]}/{'turns' if alternate else 'both'}",
            kind=kind,
            recipients=("maya", "sam"),
            alternate=alternate,
        )
        due = run(on_time("2026-06-10T07:00Z"), "2026-06-10T07:00Z", sched=sched, seq=1).due
        assert due is not None
        assert due.data.recipients == (["sam"] if alternate else ["maya", "sam"])
        assert due.data.turn is None

    def test_single_recipient_has_no_turn(self) -> None:
        """With one recipient there is nobody to take turns with."""
        due = run(on_time("2026-06-10T07:00Z"), "2026-06-10T07:00Z", seq=1).due
        assert due is not None
        assert (due.data.recipients, due.data.turn) == (["maya"], None)


class TestIdentity:
    @pytest.mark.parametrize(
        ("schedule_id", "nominal", "expected"),
        [
            # 2026-12-06 is 20793 days after 1970-01-01; 20793 * 86400 + 19 * 3600.
            ("c1/d/turns", "2026-12-06T19:00Z", "c1/d/turns@1796583600"),
            ("c1/d/turns", "2026-12-06T20:00+01:00", "c1/d/turns@1796583600"),
            ("c-2/a/sam", "1970-01-01T00:01Z", "c-2/a/sam@60"),
        ],
    )
    def test_occurrence_id(self, schedule_id: str, nominal: str, expected: str) -> None:
        """An occurrence id is the schedule id and the nominal instant in epoch seconds."""
        assert occurrence_id(schedule_id, at(nominal)) == expected

    def test_ids_do_not_depend_on_when_it_fired(self) -> None:
        """Deciding the same occurrence at different moments gives the same ids (for dedup)."""
        current = on_time("2026-06-10T07:00Z")
        first = run(current, "2026-06-10T07:00Z").due
        retry = run(current, "2026-06-10T08:00Z").due
        assert first is not None
        assert retry is not None
        assert retry.data.occurrence_id == first.data.occurrence_id
        assert retry.event_id == first.event_id
        assert first.event_id.version == 5

    def test_ids_differ_per_occurrence_and_schedule(self) -> None:
        """Another day or another schedule gives another occurrence id and event id."""
        base = run(on_time("2026-06-10T07:00Z"), "2026-06-10T07:00Z").due
        next_day = run(on_time("2026-06-11T07:00Z"), "2026-06-11T07:00Z").due
        other = run(
            on_time("2026-06-10T07:00Z"),
            "2026-06-10T07:00Z",
            sched=schedule(schedule_id="c1/c/sam", recipients=("sam",)),
        ).due
        assert base is not None
        assert next_day is not None
        assert other is not None
        ids = {base.data.occurrence_id, next_day.data.occurrence_id, other.data.occurrence_id}
        events: set[uuid.UUID] = {base.event_id, next_day.event_id, other.event_id}
        assert len(ids) == 3
        assert len(events) == 3

    def test_identity_is_nominal_not_deferred(self) -> None:
        """The id comes from the nominal instant, so a deferral does not change it."""
        nominal = at("2026-06-10T21:00Z")
        plain = run(Occurrence(nominal, nominal), "2026-06-10T21:00Z").due
        moved = run(Occurrence(nominal, at("2026-06-11T05:00Z")), "2026-06-11T05:00Z").due
        assert plain is not None
        assert moved is not None
        assert moved.data.occurrence_id == plain.data.occurrence_id
        assert moved.event_id == plain.event_id


_SAFE = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True)
_ANY_TEXT = st.text(max_size=50)
_UTC_INSTANT = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(0)), ZoneInfo("Europe/Berlin"), ZoneInfo("Etc/UTC")]
)
_NOTES = st.sampled_from(
    [None, "dst_gap", "quiet_hours_deferred", "no_shared_window", "x" * 40, "x" * 41, 'a"b', "é"]
)


def _model_bytes(due: Due) -> bytes | ValidationError:
    try:
        return due.model().model_dump_json().encode()
    except ValidationError as exc:
        return exc


def _payload_bytes(due: Due) -> bytes | ValidationError:
    try:
        return due.payload()
    except ValidationError as exc:
        return exc


def _assert_same_as_model(due: Due) -> None:
    model, payload = _model_bytes(due), _payload_bytes(due)
    if isinstance(model, ValidationError):
        assert isinstance(payload, ValidationError)
    else:
        assert payload == model


class TestPayload:
    """Due.payload writes NudgeDue JSON directly; it must be what the model dumps, byte for byte."""

    @pytest.mark.parametrize("kind", ["date_night", "check_in", "appreciation"])
    @pytest.mark.parametrize("alternate", [False, True])
    @pytest.mark.parametrize("seq", [0, 1, 7])
    @pytest.mark.parametrize(
        "now", ["2026-06-10T07:00Z", "2026-06-10T07:00:00.250Z", "2026-06-10T08:00Z"]
    )
    def test_planner_schedules_take_the_direct_path(
        self, kind: NudgeKind, alternate: bool, seq: int, now: str
    ) -> None:
        """Every schedule the planner makes is written directly, and equals the model's JSON."""
        sched = schedule(
            schedule_id=f"c1/{kind[0]}/{'turns' if alternate else 'both'}",
            kind=kind,
            recipients=("maya", "sam"),
            alternate=alternate,
        )
        decision = run(on_time("2026-06-10T07:00Z"), now, sched=sched, seq=seq)
        assert decision.publish is not None
        due = decision.publish
        direct = _due_json(due.schedule, due.occurrence, due.seq, due.now)
        assert direct is not None
        assert direct == due.model().model_dump_json().encode()
        assert due.event_id == str(due.model().event_id)
        assert due.occurrence_id == due.model().data.occurrence_id

    @settings(max_examples=300, deadline=None)
    @given(
        couple=_SAFE,
        target=_SAFE,
        kind=st.sampled_from(["date_night", "check_in", "appreciation"]),
        recipients=st.lists(_SAFE, min_size=1, max_size=2),
        partners=st.one_of(st.just(()), st.tuples(_SAFE, _SAFE)),
        alternate=st.booleans(),
        revision=st.integers(min_value=0, max_value=2**40),
        seq=st.integers(min_value=0, max_value=2**40),
        nominal=_UTC_INSTANT,
        delay=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=30)),
        lateness=st.timedeltas(min_value=timedelta(seconds=-5), max_value=timedelta(hours=3)),
        note=_NOTES,
        zone=_ZONES,
    )
    def test_same_bytes_as_the_model(
        self,
        couple: str,
        target: str,
        kind: NudgeKind,
        recipients: list[str],
        partners: tuple[str, ...],
        alternate: bool,
        revision: int,
        seq: int,
        nominal: datetime,
        delay: timedelta,
        lateness: timedelta,
        note: str | None,
        zone: tzinfo,
    ) -> None:
        """Schedules as records hold them, any note and clock zone: the model's bytes."""
        sched = Schedule(
            schedule_id=f"{couple}/{kind[0]}/{target}",
            couple_id=couple,
            kind=kind,
            rule=CronRule("0 9 * * *"),
            timezone="Europe/Berlin",
            recipients=tuple(recipients),
            alternate=alternate,
            revision=revision,
            partners=partners,
        )
        occ = Occurrence(nominal, nominal + delay, note)
        _assert_same_as_model(Due(sched, occ, seq, (nominal + delay + lateness).astimezone(zone)))

    @settings(max_examples=300, deadline=None)
    @given(
        couple=st.one_of(_SAFE, _ANY_TEXT),
        target=st.one_of(_SAFE, _ANY_TEXT),
        recipients=st.lists(st.one_of(_SAFE, _ANY_TEXT), max_size=3),
        revision=st.integers(min_value=-2, max_value=2),
        seq=st.integers(min_value=-2, max_value=2),
        note=st.one_of(_NOTES, _ANY_TEXT),
    )
    def test_same_refusals_as_the_model(
        self,
        couple: str,
        target: str,
        recipients: list[str],
        revision: int,
        seq: int,
        note: str | None,
    ) -> None:
        """Arbitrary ids, counts and notes: the model's bytes, or the model's refusal."""
        sched = Schedule(
            schedule_id=f"{couple}/c/{target}",
            couple_id=couple,
            kind="check_in",
            rule=CronRule("0 9 * * *"),
            timezone="Europe/Berlin",
            recipients=tuple(recipients),
            revision=revision,
            partners=(),
        )
        occ = Occurrence(at("2026-06-10T07:00Z"), at("2026-06-10T07:00Z"), note)
        _assert_same_as_model(Due(sched, occ, seq, at("2026-06-10T07:00:00.5Z")))

    def test_values_the_schema_refuses_are_refused(self) -> None:
        """A record the schema would not accept still fails (the loop retries it later)."""
        bad = schedule(schedule_id="c1/c/maya", recipients=("not a safe id",))
        decision = run(on_time("2026-06-10T07:00Z"), "2026-06-10T07:00Z", sched=bad)
        assert decision.publish is not None
        with pytest.raises(ValidationError):
            decision.publish.payload()


class TestEventIds:
    @settings(max_examples=500, deadline=None)
    @given(name=st.one_of(_ANY_TEXT, st.from_regex(r"[A-Za-z0-9_.:/@-]{1,200}", fullmatch=True)))
    def test_text_is_the_uuid5(self, name: str) -> None:
        """The event id text written directly is ``str(uuid.uuid5(namespace, name))``."""
        expected = uuid.uuid5(_NAMESPACE, name)
        assert _uuid5_text(name) == str(expected)
        assert _uuid5(name) == expected
