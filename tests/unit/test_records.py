"""Specification of couples_nudge.scheduler.records: schedules as short fields of the couple hash.

A record is "<seq>|<nominal_ms>|<spec>"; the timer loop reads it joined with what the couple's
schedules share ("<record>\n<rev>\n<s0>\n<s1>\n<q0>\n<q1>", as lua.DUE returns it).
Decoding that with the schedule id gives back the schedule that was encoded, for every cadence
kind, audience and quiet-hours policy. Records of the layout before issue 7 (JSON specs)
still decode.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.common.couple_state import encode_profile
from couples_nudge.scheduler.planning import QuietWindow, Schedule, plan
from couples_nudge.scheduler.records import (
    JoinedParts,
    context_of,
    decode_record,
    encode_spec,
    split_joined,
)
from couples_nudge.scheduler.rules import CronRule, SpreadRule, fires_between
from couples_nudge_schemas import (
    Cadence,
    CronCadence,
    MonthlyCadence,
    NudgePlan,
    Nudges,
    Partner,
    PreferencesSetData,
    QuietHours,
    TimesPerWeekCadence,
    TimeWindow,
    Weekday,
    WeeklyCadence,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)
WINDOW = TimeWindow(start=time(12, 0), end=time(20, 30))

CADENCES: dict[str, Cadence] = {
    "weekly": WeeklyCadence(repeat="weekly", weekday="fri", at=time(19, 0)),
    "every_other_week": WeeklyCadence(
        repeat="weekly", weekday="sat", at=time(18, 45), every_weeks=2, anchor=date(2026, 1, 10)
    ),
    "monthly_day": MonthlyCadence(repeat="monthly", at=time(8, 30), day=15),
    "monthly_first_sunday": MonthlyCadence(repeat="monthly", at=time(20, 0), weekday="sun", nth=1),
    "monthly_last_friday": MonthlyCadence(repeat="monthly", at=time(19, 0), weekday="fri", nth=-1),
    "times_per_week": TimesPerWeekCadence(repeat="times_per_week", times=3, between=WINDOW),
    "cron": CronCadence(repeat="cron", cron="0 9 * * mon-fri"),
}

AUDIENCES: dict[str, dict[str, str]] = {
    "own_local": {},
    "together": {"timing": "together", "timezone_of": "sam"},
    "alternate": {"recipients": "alternate"},
    "one": {"recipients": "one", "partner_id": "sam"},
}


def couple(
    cadence: Cadence,
    audience: dict[str, str],
    *,
    couple_id: str = "c-1.x",
    maya_quiet: QuietHours | None = None,
    sam_quiet: QuietHours | None = None,
    sam_zone: str = "America/New_York",
) -> PreferencesSetData:
    plan_ = NudgePlan.model_validate({"cadence": cadence, **audience})
    return PreferencesSetData(
        couple_id=couple_id,
        revision=12,
        partners=(
            Partner(
                partner_id="maya",
                name="Maya",
                timezone="Europe/Berlin",
                channels=["email"],
                email="maya@example.org",
                quiet_hours=maya_quiet,
            ),
            Partner(
                partner_id="sam",
                name="Sam",
                timezone=sam_zone,
                channels=["email"],
                email="sam@example.org",
                quiet_hours=sam_quiet,
            ),
        ),
        nudges=Nudges(date_night=plan_, check_in=plan_, appreciation=plan_),
    )


def record(
    schedule: Schedule,
    prefs: PreferencesSetData,
    seq: int = 3,
    nominal_ms: int | str = 1_781_074_800_000,
) -> str:
    """The record as lua.DUE hands it over: with the couple's revision and partner fields."""
    fields = encode_profile(prefs)
    spec = encode_spec(schedule, context_of(prefs))
    shared = [str(prefs.revision), *(fields.get(f, "") for f in ("s0", "s1", "q0", "q1"))]
    return "\n".join([f"{seq}|{nominal_ms}|{spec}", *shared])


def planned(prefs: PreferencesSetData) -> list[Schedule]:
    return plan(prefs, min_interval=timedelta(hours=4), now=NOW)


QUIET_DEFER = QuietHours(start=time(22, 0), end=time(7, 0), policy="defer")
QUIET_DROP = QuietHours(start=time(23, 30), end=time(6, 15), policy="drop")


class TestRoundTrip:
    @pytest.mark.parametrize("audience", sorted(AUDIENCES))
    @pytest.mark.parametrize("cadence", sorted(CADENCES))
    def test_every_cadence_and_audience(self, cadence: str, audience: str) -> None:
        """Every planned schedule decodes to an equal schedule, with its seq and nominal."""
        prefs = couple(
            CADENCES[cadence], AUDIENCES[audience], maya_quiet=QUIET_DEFER, sam_quiet=QUIET_DROP
        )
        schedules = plan(prefs, min_interval=timedelta(hours=4), now=NOW)
        assert len(schedules) >= 3
        for schedule in schedules:
            raw = record(schedule, prefs, 3, 1_781_074_800_000)
            decoded = decode_record(schedule.schedule_id, raw)
            assert decoded.schedule == schedule
            assert (decoded.seq, decoded.nominal_ms) == (3, 1_781_074_800_000)

    def test_bytes_and_text(self) -> None:
        """A record read from Redis as bytes decodes like the same text."""
        prefs = couple(CADENCES["weekly"], {}, maya_quiet=QUIET_DEFER)
        [schedule, *_] = planned(prefs)
        text = record(schedule, prefs)
        from_bytes = decode_record(schedule.schedule_id, text.encode())
        from_text = decode_record(schedule.schedule_id, text)
        assert from_bytes.schedule == from_text.schedule == schedule
        assert (from_bytes.seq, from_bytes.nominal_ms) == (from_text.seq, from_text.nominal_ms)

    def test_split_joined_names_the_parts_decode_record_reads(self) -> None:
        """The plain fire path's text parts, by name, are what the full decode reads."""
        prefs = couple(CADENCES["weekly"], {}, maya_quiet=QUIET_DEFER, sam_quiet=QUIET_DROP)
        [schedule, *_] = planned(prefs)
        raw = record(schedule, prefs, 7, 1_781_074_800_000).encode()
        parts = split_joined(raw)
        assert isinstance(parts, JoinedParts)
        decoded = decode_record(schedule.schedule_id, raw)
        assert (int(parts.seq), int(parts.nominal)) == (decoded.seq, decoded.nominal_ms)
        assert int(parts.rev) == decoded.schedule.revision == prefs.revision
        assert (parts.id0, parts.id1) == decoded.schedule.partners
        assert parts.zone0 == prefs.partners[0].timezone
        assert parts.zone1 == prefs.partners[1].timezone
        fields = encode_profile(prefs)
        assert (parts.quiet0, parts.quiet1) == (fields["q0"], fields["q1"])
        assert parts.quiet0 != parts.quiet1  # each partner's own, in order
        assert raw.decode().startswith(f"{parts.seq}|{parts.nominal}|{parts.shape}\n")
        assert split_joined(b"3|1781074800000|{}") is None  # a legacy record

    def test_missing_nominal_reads_as_zero(self) -> None:
        """A record whose nominal slot is empty (not yet armed) decodes with nominal 0."""
        prefs = couple(CADENCES["weekly"], {})
        [schedule, *_] = planned(prefs)
        decoded = decode_record(schedule.schedule_id, record(schedule, prefs, 0, ""))
        assert (decoded.seq, decoded.nominal_ms) == (0, 0)

    @pytest.mark.parametrize(
        ("schedule_id", "couple_id", "kind"),
        [
            ("c1/d/turns", "c1", "date_night"),
            ("c-1.x/c/both", "c-1.x", "check_in"),
            ("C_9/a/sam", "C_9", "appreciation"),
        ],
    )
    def test_couple_and_kind_come_from_the_id(
        self, schedule_id: str, couple_id: str, kind: str
    ) -> None:
        """Couple id and kind are read back from "<couple>/<kind code>/<target>"."""
        decoded = decode_record(schedule_id, "1|0|00|e0 9 * * *\n0\nmaya|UTC\nsam|UTC\n\n").schedule
        assert (decoded.schedule_id, decoded.couple_id, decoded.kind) == (
            schedule_id,
            couple_id,
            kind,
        )

    def test_weekly_anchor_without_skipping_fires_the_same(self) -> None:
        """A weekly rule with an anchor but every_weeks=1 decodes to a rule firing identically."""
        cadence = WeeklyCadence(
            repeat="weekly", weekday="fri", at=time(19, 0), every_weeks=1, anchor=date(2026, 1, 9)
        )
        prefs = couple(cadence, {})
        [schedule, *_] = planned(prefs)
        decoded = decode_record(schedule.schedule_id, record(schedule, prefs)).schedule
        zone = ZoneInfo(schedule.timezone)
        end = NOW + timedelta(days=120)
        assert list(fires_between(decoded.rule, zone, NOW, end)) == list(
            fires_between(schedule.rule, zone, NOW, end)
        )


class TestSpecFormat:
    def test_cron_spec(self) -> None:
        """A cron schedule: zone and recipients as partner indexes, then the rule."""
        prefs = couple(CADENCES["monthly_first_sunday"], {"recipients": "one", "partner_id": "sam"})
        [schedule, *_] = planned(prefs)
        assert encode_spec(schedule, context_of(prefs)) == "11|e0 20 * * 0#1"

    def test_full_spec(self) -> None:
        """Week cadence, spread window and alternation; quiet hours are not repeated."""
        together = {"timing": "together", "timezone_of": "sam", "recipients": "alternate"}
        prefs = couple(CADENCES["every_other_week"], together, maya_quiet=QUIET_DEFER)
        [schedule, *_] = planned(prefs)
        assert schedule.alternate
        assert schedule.quiet
        assert encode_spec(schedule, context_of(prefs)) == "101a|e45 18 * * 6;2;2026-01-10"
        spread = couple(CADENCES["times_per_week"], {}, sam_quiet=QUIET_DROP)
        by_id = {s.schedule_id: s for s in planned(spread)}
        assert encode_spec(by_id["c-1.x/a/sam"], context_of(spread)) == "11|t3;12:00;20:30"
        assert encode_spec(by_id["c-1.x/a/maya"], context_of(spread)) == "00|t3;12:00;20:30"

    def test_record_is_short(self) -> None:
        """A record stays under 64 bytes, so the couple hash keeps the listpack encoding."""
        prefs = couple(CADENCES["every_other_week"], {}, maya_quiet=QUIET_DEFER)
        for schedule in planned(prefs):
            value = f"{2**31}|{2**42}|{encode_spec(schedule, context_of(prefs))}"
            assert len(value) <= 64

    def test_no_personal_data(self) -> None:
        """Specs and the partner fields the scheduler reads hold no names or addresses."""
        prefs = couple(CADENCES["weekly"], {}, maya_quiet=QUIET_DEFER)
        for schedule in planned(prefs):
            text = record(schedule, prefs)
            assert "Maya" not in text
            assert "@" not in text

    @pytest.mark.parametrize(
        "change",
        [
            {"recipients": ("maya", "alex")},
            {"timezone": "Asia/Tokyo"},
            {"revision": 13},
            {"quiet": ()},
            {"partners": ("sam", "maya")},
        ],
    )
    def test_refuses_what_the_couple_does_not_imply(self, change: dict[str, object]) -> None:
        """A schedule whose ids, zone, revision or quiet hours are not the couple's is refused."""
        prefs = couple(CADENCES["weekly"], {}, maya_quiet=QUIET_DEFER)
        [schedule, *_] = planned(prefs)
        with pytest.raises(ValueError, match=schedule.schedule_id):
            encode_spec(replace(schedule, **change), context_of(prefs))  # type: ignore[arg-type]


class TestLegacyRecords:
    def test_cron_record(self) -> None:
        """A record of the shard's schedules hash (before issue 7) decodes as it always did."""
        spec = '{"z":"Europe/Berlin","r":["maya"],"v":7,"x":{"e":"0 20 * * 0#1"}}'
        decoded = decode_record("c1/c/maya", f"2|1781074800000|{spec}")
        assert (decoded.seq, decoded.nominal_ms) == (2, 1_781_074_800_000)
        assert decoded.schedule == Schedule(
            schedule_id="c1/c/maya",
            couple_id="c1",
            kind="check_in",
            rule=CronRule("0 20 * * 0#1"),
            timezone="Europe/Berlin",
            recipients=("maya",),
            revision=7,
        )

    def test_full_record(self) -> None:
        """Week cadence, spread window, alternation, partners and quiet hours of a legacy spec."""
        every_other = (
            '{"z":"UTC","r":["maya","sam"],"v":1,'
            '"x":{"e":"0 19 * * 5","w":2,"n":"2026-01-09"},"a":1}'
        )
        spread = (
            '{"z":"America/New_York","r":["sam"],"v":2,'
            '"x":{"t":3,"s":"12:00","u":"20:30"},"p":["maya","sam"],'
            '"q":[["23:30","06:15","drop","America/New_York"]]}'
        )
        assert decode_record("c1/d/turns", f"0||{every_other}").schedule == Schedule(
            schedule_id="c1/d/turns",
            couple_id="c1",
            kind="date_night",
            rule=CronRule("0 19 * * 5", every_weeks=2, anchor=date(2026, 1, 9)),
            timezone="UTC",
            recipients=("maya", "sam"),
            alternate=True,
            revision=1,
        )
        assert decode_record("c1/a/sam", f"1|5|{spread}").schedule == Schedule(
            schedule_id="c1/a/sam",
            couple_id="c1",
            kind="appreciation",
            rule=SpreadRule(3, time(12, 0), time(20, 30), "c1/a/sam"),
            timezone="America/New_York",
            recipients=("sam",),
            quiet=(QuietWindow.of(QUIET_DROP, "America/New_York"),),
            revision=2,
            partners=("maya", "sam"),
        )


_WEEKDAYS: list[Weekday] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_minutes = st.integers(0, 24 * 60 - 1).map(lambda m: time(m // 60, m % 60))


@st.composite
def cadences(draw: st.DrawFn) -> Cadence:
    form = draw(st.sampled_from(["weekly", "monthly_day", "monthly_nth", "spread", "cron"]))
    at = draw(_minutes)
    weekday = draw(st.sampled_from(_WEEKDAYS))
    if form == "weekly":
        every = draw(st.integers(1, 4))
        anchor = draw(st.dates(date(2020, 1, 1), date(2030, 12, 31))) if every > 1 else None
        return WeeklyCadence(
            repeat="weekly", weekday=weekday, at=at, every_weeks=every, anchor=anchor
        )
    if form == "monthly_day":
        return MonthlyCadence(repeat="monthly", at=at, day=draw(st.integers(1, 28)))
    if form == "monthly_nth":
        nth: Literal[1, 2, 3, 4, -1] = draw(st.sampled_from([1, 2, 3, 4, -1]))
        return MonthlyCadence(repeat="monthly", at=at, weekday=weekday, nth=nth)
    if form == "spread":
        start, end = sorted(draw(st.lists(_minutes, min_size=2, max_size=2, unique=True)))
        window = TimeWindow(start=start, end=end)
        return TimesPerWeekCadence(
            repeat="times_per_week", times=draw(st.integers(1, 7)), between=window
        )
    return CronCadence(repeat="cron", cron=f"{at.minute} {at.hour} * * {weekday}")


@st.composite
def quiet_hours(draw: st.DrawFn) -> QuietHours | None:
    if draw(st.booleans()):
        return None
    start, end = draw(st.lists(_minutes, min_size=2, max_size=2, unique=True))
    policy: Literal["defer", "drop"] = draw(st.sampled_from(["defer", "drop"]))
    return QuietHours(start=start, end=end, policy=policy)


class TestRoundTripProperty:
    @settings(max_examples=200, deadline=None)
    @given(
        cadence=cadences(),
        audience=st.sampled_from(sorted(AUDIENCES)),
        maya_quiet=quiet_hours(),
        sam_quiet=quiet_hours(),
        sam_zone=st.sampled_from(["America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]),
        seq=st.integers(0, 10**6),
        nominal_ms=st.integers(0, 2**42),
    )
    def test_decode_inverts_encode(
        self,
        cadence: Cadence,
        audience: str,
        maya_quiet: QuietHours | None,
        sam_quiet: QuietHours | None,
        sam_zone: str,
        seq: int,
        nominal_ms: int,
    ) -> None:
        """For any cadence, audience, quiet hours and zone, decoding gives back the schedule."""
        prefs = couple(
            cadence,
            AUDIENCES[audience],
            maya_quiet=maya_quiet,
            sam_quiet=sam_quiet,
            sam_zone=sam_zone,
        )
        for schedule in plan(prefs, min_interval=timedelta(0), now=NOW):
            decoded = decode_record(schedule.schedule_id, record(schedule, prefs, seq, nominal_ms))
            assert decoded.schedule == schedule
            assert (decoded.seq, decoded.nominal_ms) == (seq, nominal_ms)
