"""The timer loop's plain path (a burst's fires without a Schedule or Due) matches the general one.

`TimerLoop._plain_step` computes once per shape what schedules of one occurrence share and
writes each fire's NudgeDue from a `DueTemplate`; `_step` decodes the record, decides and
builds the Due. For any record the planner can write, the plain path gives the same FIRE
arguments (payload bytes included) and counts the same (kind, lateness), or declines (None)
and leaves the fire to `_step`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.scheduler.firing import Due, DueTemplate, occurred_field
from couples_nudge.scheduler.lookahead import FRESH_MS, restamped
from couples_nudge.scheduler.planning import Occurrence, Schedule, next_occurrence, plan
from couples_nudge.scheduler.rules import CronRule, RuleError
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import Fire, ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import Cadence, NudgeKind, PreferencesSetData, QuietHours
from tests.unit.test_records import AUDIENCES, cadences, couple, quiet_hours, record

NOW = datetime(2026, 5, 1, tzinfo=UTC)
_SAFE = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True)
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # the schema's SafeId
_ID = st.one_of(_SAFE, _SAFE, st.text(max_size=20))
_LATENESS = st.sampled_from(
    [timedelta(milliseconds=ms) for ms in (0, 500, 120_000, 4 * 3_600_000, 7 * 3_600_000)]
)


def _loop() -> TimerLoop:
    settings = SchedulerSettings(redis_url=SecretStr("redis://unused"), key_prefix="plain")
    return TimerLoop(cast("ScheduleStore", None), ManualClock(NOW), settings)


def _renamed(prefs: PreferencesSetData, couple_id: str, a: str, b: str) -> PreferencesSetData:
    """The same preferences for other people: another couple of the same shape."""
    first, second = prefs.partners
    return prefs.model_copy(
        update={
            "couple_id": couple_id,
            "revision": prefs.revision + 7,
            "partners": (
                first.model_copy(update={"partner_id": a}),
                second.model_copy(update={"partner_id": b}),
            ),
        }
    )


def _first(schedule: Schedule) -> Occurrence | None:
    try:
        return next_occurrence(schedule, NOW)
    except RuleError:
        return None


class TestPlainStep:
    @settings(max_examples=150, deadline=None)
    @given(
        cadence=cadences(),
        audience=st.sampled_from(sorted(AUDIENCES)),
        maya_quiet=quiet_hours(),
        sam_quiet=quiet_hours(),
        sam_zone=st.sampled_from(["Europe/Berlin", "America/New_York", "Asia/Kolkata"]),
        seqs=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)),
        lateness=_LATENESS,
        other=st.tuples(_SAFE, _SAFE),
    )
    def test_same_fire_as_the_general_path(
        self,
        cadence: Cadence,
        audience: str,
        maya_quiet: QuietHours | None,
        sam_quiet: QuietHours | None,
        sam_zone: str,
        seqs: tuple[int, int],
        lateness: timedelta,
        other: tuple[str, str],
    ) -> None:
        """Two couples of one shape in one batch: each fire that publishes and does nothing
        else goes the plain way, with the FIRE arguments `_step` makes; others are declined."""
        loop = _loop()
        prefs = couple(
            cadence,
            AUDIENCES[audience],
            maya_quiet=maya_quiet,
            sam_quiet=sam_quiet,
            sam_zone=sam_zone,
        )
        # Another couple, and another first partner (the plans name "sam" by id: kept).
        assume(other[1] != "sam")
        second = _renamed(prefs, other[0], other[1], "sam")
        pairs = zip(
            plan(prefs, min_interval=timedelta(0), now=NOW),
            plan(second, min_interval=timedelta(0), now=NOW),
            strict=True,
        )
        for schedule, twin in pairs:
            occurrence = _first(schedule)
            if occurrence is None:
                continue
            score, nominal_ms = epoch_ms(occurrence.fire_at), epoch_ms(occurrence.nominal)
            now = occurrence.fire_at + lateness
            bursts: dict[Any, Any] = {}  # shared by both couples, as in one batch
            for sched, prefs_, seq in ((schedule, prefs, seqs[0]), (twin, second, seqs[1])):
                sid = sched.schedule_id
                raw = record(sched, prefs_, seq, nominal_ms).encode()
                general, (decision, _) = loop._step(sid, score, raw, now, {})
                plain = loop._plain_step(sid, score, raw, now, {}, bursts)
                published_on_time = (
                    decision.publish is not None
                    and not decision.missed
                    and decision.dropped is None
                    and isinstance(sched.rule, CronRule)  # a spread rule is per schedule
                )
                assert (plain is not None) == published_on_time
                if plain is not None:
                    assert plain.fire == general
                    assert plain.fired == (sched.kind, decision.lateness)


_KINDS: list[NudgeKind] = ["date_night", "check_in", "appreciation"]


class TestDueTemplate:
    @settings(max_examples=300, deadline=None)
    @given(
        kind=st.sampled_from(_KINDS),
        audience=st.sampled_from([(0,), (1,), (0, 1), (1, 0)]),
        alternate=st.booleans(),
        seqs=st.tuples(st.integers(0, 2**40), st.integers(-2, 2**40)),
        revisions=st.tuples(st.integers(0, 2**40), st.integers(-2, 2**40)),
        ids=st.tuples(_ID, _ID, _ID, _ID),
        note=st.sampled_from([None, "dst_gap", "quiet_hours_deferred", 'a"b', "é", "x" * 41]),
        late=st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=2)),
    )
    def test_writes_what_the_due_writes(
        self,
        kind: NudgeKind,
        audience: tuple[int, ...],
        alternate: bool,
        seqs: tuple[int, int],
        revisions: tuple[int, int],
        ids: tuple[str, str, str, str],
        note: str | None,
        late: timedelta,
    ) -> None:
        """A template from one Due writes another Due's bytes for other ids, or declines."""
        nominal = datetime(2026, 12, 4, 18, tzinfo=UTC)
        occurrence = Occurrence(nominal, nominal + timedelta(minutes=5), note)
        now = occurrence.fire_at + late

        def due(couple_id: str, target: str, partners: tuple[str, str], i: int) -> Due:
            schedule = Schedule(
                schedule_id=f"{couple_id}/{kind[0]}/{target}",
                couple_id=couple_id,
                kind=kind,
                rule=CronRule("0 19 * * 5"),
                timezone="Europe/Berlin",
                recipients=tuple(partners[j] for j in audience),
                alternate=alternate,
                revision=revisions[i],
                partners=partners,
            )
            return Due(schedule, occurrence, seqs[i], now)

        template = DueTemplate.of(due("c1", "both", ("maya", "sam"), 0), audience)
        if note in ('a"b', "é", "x" * 41):
            assert template is None
            return
        assert template is not None
        couple_id, target, a, b = ids
        other = due(couple_id, target, (a, b), 1)
        sid = other.schedule.schedule_id
        written = template.payload(sid, couple_id, (a, b), seqs[1], revisions[1])
        if written is not None:
            assert written == other.payload()
        else:  # declined: only for ids or numbers the direct JSON does not vouch for, or a
            # recipient named twice (the schema refuses it)
            safe = all(_SAFE_ID.fullmatch(x) for x in (couple_id, a, b))
            repeated = a == b and len(audience) == 2 and not alternate
            assert repeated or not (
                safe and _SAFE_ID.fullmatch(target) and min(seqs[1], revisions[1]) >= 0
            )


class TestRestamped:
    @settings(max_examples=200, deadline=None)
    @given(
        seq=st.integers(0, 2**20),
        note=st.sampled_from([None, "dst_gap", "quiet_hours_deferred"]),
        later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(milliseconds=FRESH_MS)),
    )
    def test_a_prepared_payload_sent_later_is_the_one_made_then(
        self, seq: int, note: str | None, later: timedelta
    ) -> None:
        """A step prepared for `now` = its instant and sent within FRESH_MS of it carries the
        bytes the normal path writes at the sending moment (only occurred_at differs)."""
        nominal = datetime(2026, 12, 4, 18, tzinfo=UTC)
        occurrence = Occurrence(nominal, nominal, note)
        schedule = Schedule(
            schedule_id="c1/d/both",
            couple_id="c1",
            kind="date_night",
            rule=CronRule("0 19 * * 5"),
            timezone="Europe/Berlin",
            recipients=("maya", "sam"),
            partners=("maya", "sam"),
        )
        then, sent = nominal, nominal + later
        prepared = Due(schedule, occurrence, seq, then).payload()
        step = Fire("c1/d/both", 0, None, None, None, prepared)
        moved = restamped(step, occurred_field(then), occurred_field(sent))
        assert moved.payload == Due(schedule, occurrence, seq, sent).payload()
