"""Specification of couples_nudge.scheduler.planning: preferences -> schedules -> occurrences.

Expected instants are worked out by hand from the calendar (2026-01-01 is a Thursday) and
the zones' offsets: Europe/Berlin is UTC+1 in winter and UTC+2 from 2026-03-29 01:00Z to
2026-10-25 01:00Z; America/New_York is UTC-5 in winter and UTC-4 from 2026-03-08 07:00Z to
2026-11-01 06:00Z; Asia/Tokyo is UTC+9 all year.
"""

from __future__ import annotations

import re
import time as timer
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.scheduler.planning import (
    KIND_CODES,
    Occurrence,
    PlanningError,
    QuietWindow,
    Schedule,
    next_occurrence,
    occurrence_at,
    plan,
    rule_for,
)
from couples_nudge.scheduler.rules import CronRule, Rule, SpreadRule, next_fire
from couples_nudge.scheduler.wallclock import to_local
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
    WeeklyCadence,
)

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
MAYA_QUIET = QuietHours(start=time(22, 0), end=time(7, 0), policy="defer")
SAM_QUIET = QuietHours(start=time(23, 0), end=time(6, 30), policy="drop")
MAY = datetime(2026, 5, 1, tzinfo=UTC)  # no DST change in either zone for 62 days
FOUR_HOURS = timedelta(hours=4)


def at(text: str) -> datetime:
    """'2026-12-06T19:00Z' -> aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def hm(text: str) -> time:
    return time.fromisoformat(text)


def weekly(day: Literal["fri", "sat", "sun"] = "fri", at_: str = "19:00") -> WeeklyCadence:
    return WeeklyCadence(repeat="weekly", weekday=day, at=hm(at_))


def cron(expr: str) -> CronCadence:
    return CronCadence(repeat="cron", cron=expr)


def couple(
    *,
    date_night: NudgePlan | None = None,
    check_in: NudgePlan | None = None,
    appreciation: NudgePlan | None = None,
    maya_quiet: QuietHours | None = MAYA_QUIET,
    sam_quiet: QuietHours | None = SAM_QUIET,
) -> PreferencesSetData:
    """Maya in Berlin and Sam in New York, revision 7."""
    return PreferencesSetData(
        couple_id="c1",
        revision=7,
        partners=(
            Partner(
                partner_id="maya",
                name="Maya",
                timezone=BERLIN,
                channels=["email"],
                email="maya@example.org",
                quiet_hours=maya_quiet,
            ),
            Partner(
                partner_id="sam",
                name="Sam",
                timezone=NEW_YORK,
                channels=["email"],
                email="sam@example.org",
                quiet_hours=sam_quiet,
            ),
        ),
        nudges=Nudges(date_night=date_night, check_in=check_in, appreciation=appreciation),
    )


def schedule(
    rule: Rule | str,
    zone: str = BERLIN,
    quiet: QuietHours | None = None,
    recipients: tuple[str, ...] = ("maya",),
) -> Schedule:
    return Schedule(
        schedule_id="c1/c/maya",
        couple_id="c1",
        kind="check_in",
        rule=CronRule(rule) if isinstance(rule, str) else rule,
        timezone=zone,
        recipients=recipients,
        quiet=() if quiet is None else (QuietWindow.of(quiet, zone),),
    )


def quiet(start: str, end: str, policy: Literal["defer", "drop"] = "defer") -> QuietHours:
    return QuietHours(start=hm(start), end=hm(end), policy=policy)


class TestRuleFor:
    @pytest.mark.parametrize(
        ("cadence", "expected"),
        [
            (weekly("fri", "19:00"), CronRule("0 19 * * 5")),
            (weekly("sun", "07:05"), CronRule("5 7 * * 0")),
            (
                WeeklyCadence(
                    repeat="weekly",
                    weekday="fri",
                    at=hm("19:00"),
                    every_weeks=2,
                    anchor=date(2026, 1, 9),
                ),
                CronRule("0 19 * * 5", every_weeks=2, anchor=date(2026, 1, 9)),
            ),
            (MonthlyCadence(repeat="monthly", at=hm("08:30"), day=15), CronRule("30 8 15 * *")),
            (
                MonthlyCadence(repeat="monthly", at=hm("20:00"), weekday="sun", nth=1),
                CronRule("0 20 * * 0#1"),
            ),
            (
                MonthlyCadence(repeat="monthly", at=hm("09:00"), weekday="mon", nth=3),
                CronRule("0 9 * * 1#3"),
            ),
            (
                MonthlyCadence(repeat="monthly", at=hm("19:00"), weekday="fri", nth=-1),
                CronRule("0 19 * * L5"),
            ),
            (cron("0 9 * * mon-fri"), CronRule("0 9 * * mon-fri")),
            (
                TimesPerWeekCadence(
                    repeat="times_per_week",
                    times=3,
                    between=TimeWindow(start=hm("12:00"), end=hm("20:00")),
                ),
                SpreadRule(3, hm("12:00"), hm("20:00"), "seed-1"),
            ),
        ],
    )
    def test_rule_per_cadence(self, cadence: Cadence, expected: Rule) -> None:
        """Each human cadence becomes the matching cron rule; N-times-a-week a seeded spread."""
        assert rule_for(cadence, "seed-1") == expected

    @pytest.mark.parametrize(
        ("cadence", "zone", "after", "expected"),
        [
            # The first Sunday of December 2026 is the 6th (Dec 1 is a Tuesday); 20:00 CET.
            (
                MonthlyCadence(repeat="monthly", at=hm("20:00"), weekday="sun", nth=1),
                BERLIN,
                "2026-11-10T00:00Z",
                "2026-12-06T19:00Z",
            ),
            # The last Friday of February 2026 is the 27th; 19:00 EST is midnight UTC.
            (
                MonthlyCadence(repeat="monthly", at=hm("19:00"), weekday="fri", nth=-1),
                NEW_YORK,
                "2026-02-01T00:00Z",
                "2026-02-28T00:00Z",
            ),
            # The third Monday of January 2026 is the 19th (Jan 5 is the first).
            (
                MonthlyCadence(repeat="monthly", at=hm("09:00"), weekday="mon", nth=3),
                "Europe/London",
                "2026-01-01T00:00Z",
                "2026-01-19T09:00Z",
            ),
            # Day 15 at 08:30 in Tokyo is the evening before in UTC.
            (
                MonthlyCadence(repeat="monthly", at=hm("08:30"), day=15),
                "Asia/Tokyo",
                "2026-01-20T00:00Z",
                "2026-02-14T23:30Z",
            ),
            # Friday 19:00 after Berlin moved to summer time is 17:00Z (Apr 3 is a Friday).
            (weekly("fri", "19:00"), BERLIN, "2026-03-30T00:00Z", "2026-04-03T17:00Z"),
            # Every other Friday counted from the week of Jan 9: Jan 9, Jan 23, Feb 6, ...
            (
                WeeklyCadence(
                    repeat="weekly",
                    weekday="fri",
                    at=hm("19:00"),
                    every_weeks=2,
                    anchor=date(2026, 1, 9),
                ),
                BERLIN,
                "2026-01-10T00:00Z",
                "2026-01-23T18:00Z",
            ),
            (
                WeeklyCadence(
                    repeat="weekly",
                    weekday="fri",
                    at=hm("19:00"),
                    every_weeks=2,
                    anchor=date(2026, 1, 9),
                ),
                BERLIN,
                "2026-01-24T00:00Z",
                "2026-02-06T18:00Z",
            ),
            # Friday 2026-03-06 09:30 IST -> next weekday 09:00 is Monday the 9th (UTC+5:30).
            (cron("0 9 * * mon-fri"), "Asia/Kolkata", "2026-03-06T04:00Z", "2026-03-09T03:30Z"),
        ],
    )
    def test_fires_at_local_time(
        self, cadence: Cadence, zone: str, after: str, expected: str
    ) -> None:
        """The rule fires at the cadence's wall-clock time in the given zone."""
        assert next_fire(rule_for(cadence, "s"), ZoneInfo(zone), at(after)) == at(expected)

    def test_times_per_week_fires_on_distinct_days_in_window(self) -> None:
        """Three times a week means three different days per ISO week, inside the window."""
        rule = rule_for(
            TimesPerWeekCadence(
                repeat="times_per_week",
                times=3,
                between=TimeWindow(start=hm("12:00"), end=hm("20:00")),
            ),
            "c1/a/maya",
        )
        zone = ZoneInfo(BERLIN)
        fires: list[datetime] = []
        moment = at("2026-05-31T22:00Z")  # Monday 2026-06-01 00:00 in Berlin
        while (nxt := next_fire(rule, zone, moment)) is not None and nxt < at("2026-06-28T22:00Z"):
            fires.append(nxt)
            moment = nxt
        local = [to_local(f, zone) for f in fires]
        weeks = [d.isocalendar()[1] for d in local]
        assert sorted(set(weeks)) == [23, 24, 25, 26]
        assert all(weeks.count(w) == 3 for w in set(weeks))
        assert len({d.date() for d in local}) == 12
        assert all(time(12, 0) <= d.time() < time(20, 0) for d in local)


MAYA_WINDOW = QuietWindow.of(MAYA_QUIET, BERLIN)
SAM_WINDOW = QuietWindow.of(SAM_QUIET, NEW_YORK)
BOTH_WINDOWS = (MAYA_WINDOW, SAM_WINDOW)


def _shape(s: Schedule) -> tuple[str, str, tuple[str, ...], bool, tuple[QuietWindow, ...]]:
    return (s.schedule_id, s.timezone, s.recipients, s.alternate, s.quiet)


class TestPlan:
    @pytest.mark.parametrize(
        ("nudge", "expected"),
        [
            (
                NudgePlan(cadence=weekly()),
                [
                    ("c1/d/maya", BERLIN, ("maya",), False, (MAYA_WINDOW,)),
                    ("c1/d/sam", NEW_YORK, ("sam",), False, (SAM_WINDOW,)),
                ],
            ),
            (
                NudgePlan(cadence=weekly(), timing="together"),
                [("c1/d/both", BERLIN, ("maya", "sam"), False, BOTH_WINDOWS)],
            ),
            (
                NudgePlan(cadence=weekly(), timing="together", timezone_of="sam"),
                [("c1/d/both", NEW_YORK, ("maya", "sam"), False, BOTH_WINDOWS)],
            ),
            (
                NudgePlan(cadence=weekly(), recipients="alternate"),
                [("c1/d/turns", BERLIN, ("maya", "sam"), True, BOTH_WINDOWS)],
            ),
            (
                NudgePlan(cadence=weekly(), recipients="alternate", timezone_of="sam"),
                [("c1/d/turns", NEW_YORK, ("maya", "sam"), True, BOTH_WINDOWS)],
            ),
            (
                NudgePlan(cadence=weekly(), recipients="alternate", timing="together"),
                [("c1/d/turns", BERLIN, ("maya", "sam"), True, BOTH_WINDOWS)],
            ),
            (
                NudgePlan(cadence=weekly(), recipients="one", partner_id="sam"),
                [("c1/d/sam", NEW_YORK, ("sam",), False, (SAM_WINDOW,))],
            ),
            (
                NudgePlan(cadence=weekly(), recipients="one", partner_id="maya"),
                [("c1/d/maya", BERLIN, ("maya",), False, (MAYA_WINDOW,))],
            ),
        ],
    )
    def test_audience_and_timing(
        self,
        nudge: NudgePlan,
        expected: list[tuple[str, str, tuple[str, ...], bool, tuple[QuietWindow, ...]]],
    ) -> None:
        """Own-local plans get one schedule per recipient in their zone; together and alternate
        plans get one shared schedule in one zone; every recipient's quiet hours apply."""
        schedules = plan(couple(date_night=nudge), min_interval=FOUR_HOURS, now=MAY)
        assert [_shape(s) for s in schedules] == expected

    def test_one_recipient_together_uses_only_their_quiet_hours(self) -> None:
        """A single-recipient plan never applies the other partner's quiet hours."""
        prefs = couple(
            date_night=NudgePlan(
                cadence=weekly(), recipients="one", partner_id="sam", timing="together"
            ),
            sam_quiet=None,
        )
        [only] = plan(prefs, min_interval=FOUR_HOURS, now=MAY)
        assert only.recipients == ("sam",)
        assert only.quiet == ()  # Sam has none; Maya's 22:00-07:00 is not his

    def test_every_kind_in_fixed_order(self) -> None:
        """Kinds plan in order d, c, a; ids are <couple>/<code>/<target>."""
        prefs = couple(
            appreciation=NudgePlan(cadence=weekly("sun", "12:00"), timing="together"),
            check_in=NudgePlan(cadence=weekly("sun", "20:00"), recipients="alternate"),
            date_night=NudgePlan(cadence=weekly()),
        )
        schedules = plan(prefs, min_interval=FOUR_HOURS, now=MAY)
        assert [(s.schedule_id, s.kind) for s in schedules] == [
            ("c1/d/maya", "date_night"),
            ("c1/d/sam", "date_night"),
            ("c1/c/turns", "check_in"),
            ("c1/a/both", "appreciation"),
        ]
        assert {s.couple_id for s in schedules} == {"c1"}
        assert {s.revision for s in schedules} == {7}

    def test_kind_codes(self) -> None:
        """Each kind has a one-letter code used in schedule ids."""
        assert KIND_CODES == {"date_night": "d", "check_in": "c", "appreciation": "a"}

    def test_no_nudges_no_schedules(self) -> None:
        """A couple without nudge plans has no schedules."""
        assert plan(couple(), min_interval=FOUR_HOURS, now=MAY) == []

    def test_spread_is_seeded_per_schedule(self) -> None:
        """Each spread schedule is seeded with its own id, so couples and partners differ."""
        spread = TimesPerWeekCadence(
            repeat="times_per_week", times=3, between=TimeWindow(start=hm("12:00"), end=hm("20:00"))
        )
        schedules = plan(
            couple(appreciation=NudgePlan(cadence=spread)), min_interval=FOUR_HOURS, now=MAY
        )
        assert [s.rule for s in schedules] == [
            SpreadRule(3, hm("12:00"), hm("20:00"), "c1/a/maya"),
            SpreadRule(3, hm("12:00"), hm("20:00"), "c1/a/sam"),
        ]

    def test_schedule_zone(self) -> None:
        """Schedule.tz() is the ZoneInfo of its timezone name."""
        assert schedule("0 9 * * *", zone=NEW_YORK).tz() == ZoneInfo(NEW_YORK)


class TestFrequency:
    @pytest.mark.parametrize(
        ("expr", "min_interval", "message"),
        [
            (
                "0 */2 * * *",
                FOUR_HOURS,
                "check_in: cron fires as often as every 2 hours; "
                "the minimum interval between nudges is 4 hours",
            ),
            (
                "0 9,11 * * *",
                FOUR_HOURS,
                "check_in: cron fires as often as every 2 hours; "
                "the minimum interval between nudges is 4 hours",
            ),
            (
                "0,30 9 * * *",
                FOUR_HOURS,
                "check_in: cron fires as often as every 30 minutes; "
                "the minimum interval between nudges is 4 hours",
            ),
            (
                "0 9 * * *",
                timedelta(hours=25),
                "check_in: cron fires as often as every 24 hours; "
                "the minimum interval between nudges is 25 hours",
            ),
            (
                "0 9 * * *",
                timedelta(hours=24, minutes=30),
                "check_in: cron fires as often as every 24 hours; "
                "the minimum interval between nudges is 1470 minutes",
            ),
        ],
    )
    def test_too_frequent_cron_is_rejected(
        self, expr: str, min_interval: timedelta, message: str
    ) -> None:
        """A raw cron firing more often than the minimum interval is rejected, saying both."""
        prefs = couple(check_in=NudgePlan(cadence=cron(expr)))
        with pytest.raises(PlanningError) as caught:
            plan(prefs, min_interval=min_interval, now=MAY)
        assert str(caught.value) == message

    @pytest.mark.parametrize("expr", ["0 */4 * * *", "0 9 * * *", "0 20 * * 0#1", "0 9 1 1 *"])
    def test_often_enough_cron_is_accepted(self, expr: str) -> None:
        """A raw cron whose fires are at least the minimum interval apart is planned."""
        prefs = couple(check_in=NudgePlan(cadence=cron(expr)))
        assert len(plan(prefs, min_interval=FOUR_HOURS, now=MAY)) == 2

    def test_gap_is_measured_on_the_wall_clock(self) -> None:
        """Every 4 local hours is accepted: the one shorter gap a DST change makes is ours."""
        prefs = couple(check_in=NudgePlan(cadence=cron("0 */4 * * *")))
        assert len(plan(prefs, min_interval=FOUR_HOURS, now=MAY)) == 2
        with pytest.raises(PlanningError, match=r"^check_in: cron fires as often as every 4 hours"):
            plan(prefs, min_interval=timedelta(hours=5), now=MAY)

    def test_human_cadences_are_not_limited(self) -> None:
        """The minimum interval applies to raw cron only; weekly plans are never too frequent."""
        prefs = couple(date_night=NudgePlan(cadence=weekly()))
        assert len(plan(prefs, min_interval=timedelta(days=30), now=MAY)) == 2

    @pytest.mark.parametrize(
        "expr",
        [
            "*/5 * * 12 *",  # every five minutes, but only in December
            "0 9,10 1 1 *",  # twice on New Year's Day, an hour apart
        ],
    )
    def test_seasonal_spam_is_rejected_whenever_planned(self, expr: str) -> None:
        """A cron that is too frequent in some months is rejected whenever it is planned."""
        prefs = couple(check_in=NudgePlan(cadence=cron(expr)))
        with pytest.raises(PlanningError, match="cron fires as often as every"):
            plan(prefs, min_interval=FOUR_HOURS, now=at("2026-03-01T00:00Z"))

    @pytest.mark.parametrize(
        ("expr", "message"),
        [
            ("R 9 * * *", "minute field 'R': H (hashed) and R (random) values are not supported"),
            ("0 9 * * 1,1#2", "n-th (#) and last (L) weekdays cannot be listed with plain"),
            # croniter reads these 30 days and L as every day beside "*", as written beside "1"
            ("0 9 3-1,L * *", "'3-1,L': L cannot be listed with 30 other days"),
            ("0 9 2-31,L * 1", "'2-31,L': L cannot be listed with 30 other days"),
        ],
    )
    def test_a_cron_the_schema_passes_but_the_rules_refuse_is_a_planning_error(
        self, expr: str, message: str
    ) -> None:
        """The ingest path refuses it like any bad plan (a PlanningError), saying why."""
        prefs = couple(check_in=NudgePlan(cadence=cron(expr)))
        with pytest.raises(PlanningError, match=re.escape(f"check_in: cron expression {expr!r}")):
            plan(prefs, min_interval=FOUR_HOURS, now=MAY)
        with pytest.raises(PlanningError, match=re.escape(message)):
            plan(prefs, min_interval=FOUR_HOURS, now=MAY)

    @pytest.mark.parametrize("expr", ["0 9 1-30,L * *", "0 9 1-30,L * 1", "0 9 3-29,L * *"])
    def test_l_with_days_that_leave_none_out_or_are_fewer_than_30_is_planned(
        self, expr: str
    ) -> None:
        """Days 1-30 and L are every day, read alike beside any weekday field; fewer days and
        L are never read as every day: neither is refused."""
        prefs = couple(check_in=NudgePlan(cadence=cron(expr)))
        assert plan(prefs, min_interval=FOUR_HOURS, now=MAY)

    def test_every_minute_is_rejected_quickly(self) -> None:
        """Rejecting an every-minute cron is cheap (it must not block the consumer for seconds)."""
        prefs = couple(check_in=NudgePlan(cadence=cron("* * * * *")))
        started = timer.perf_counter()
        with pytest.raises(PlanningError, match="cron fires as often as every"):
            plan(prefs, min_interval=FOUR_HOURS, now=MAY)
        assert timer.perf_counter() - started < 1.0


class TestOccurrenceAt:
    @pytest.mark.parametrize(
        ("zone", "quiet_hours", "nominal", "fire_at"),
        [
            # Berlin in June is UTC+2. Quiet 22:00-07:00 wraps midnight.
            (BERLIN, quiet("22:00", "07:00"), "2026-06-10T21:00Z", "2026-06-11T05:00Z"),
            (BERLIN, quiet("22:00", "07:00"), "2026-06-10T20:00Z", "2026-06-11T05:00Z"),
            (BERLIN, quiet("22:00", "07:00"), "2026-06-10T22:00Z", "2026-06-11T05:00Z"),
            (BERLIN, quiet("22:00", "07:00"), "2026-06-11T04:30Z", "2026-06-11T05:00Z"),
            (BERLIN, quiet("22:00", "07:00"), "2026-06-11T04:59Z", "2026-06-11T05:00Z"),
            # A window inside one day.
            (BERLIN, quiet("13:00", "15:00"), "2026-06-10T11:00Z", "2026-06-10T13:00Z"),
            (BERLIN, quiet("13:00", "15:00"), "2026-06-10T12:00Z", "2026-06-10T13:00Z"),
            # The same wall-clock quiet hours in New York (UTC-4 in June).
            (NEW_YORK, quiet("22:00", "07:00"), "2026-06-11T02:30Z", "2026-06-11T11:00Z"),
            # Spring forward: 02:30 on 2026-03-29 does not exist in Berlin -> 03:00 CEST.
            (BERLIN, quiet("23:00", "02:30"), "2026-03-29T00:30Z", "2026-03-29T01:00Z"),
            # Fall back: 02:30 on 2026-10-25 happens twice in Berlin -> the first, CEST.
            (BERLIN, quiet("23:00", "02:30"), "2026-10-24T23:00Z", "2026-10-25T00:30Z"),
        ],
    )
    def test_deferred_to_end_of_quiet_hours(
        self, zone: str, quiet_hours: QuietHours, nominal: str, fire_at: str
    ) -> None:
        """A nominal instant in the recipient's quiet hours fires when they end, local time."""
        occ = occurrence_at(schedule("0 9 * * *", zone, quiet_hours), at(nominal))
        assert occ == Occurrence(at(nominal), at(fire_at), note="quiet_hours_deferred")

    @pytest.mark.parametrize(
        ("quiet_hours", "nominal"),
        [
            (quiet("22:00", "07:00"), "2026-06-11T05:00Z"),  # 07:00: the end is not quiet
            (quiet("22:00", "07:00"), "2026-06-10T19:59Z"),  # 21:59
            (quiet("22:00", "07:00"), "2026-06-10T10:00Z"),  # noon
            (quiet("13:00", "15:00"), "2026-06-10T13:00Z"),  # 15:00
            (quiet("13:00", "15:00"), "2026-06-10T10:59Z"),  # 12:59
            (quiet("13:00", "15:00"), "2026-06-10T21:00Z"),  # 23:00
            (None, "2026-06-10T21:00Z"),
        ],
    )
    def test_outside_quiet_hours_unchanged(
        self, quiet_hours: QuietHours | None, nominal: str
    ) -> None:
        """Outside quiet hours (or without any) the occurrence fires at its nominal instant."""
        occ = occurrence_at(schedule("0 9 * * *", BERLIN, quiet_hours), at(nominal))
        assert occ == Occurrence(at(nominal), at(nominal))

    @pytest.mark.parametrize(
        ("nominal", "dropped"),
        [
            ("2026-06-10T21:00Z", True),  # 23:00
            ("2026-06-11T04:59Z", True),  # 06:59
            ("2026-06-11T05:00Z", False),  # 07:00
            ("2026-06-10T19:59Z", False),  # 21:59
        ],
    )
    def test_drop_policy(self, nominal: str, dropped: bool) -> None:
        """With policy drop, an occurrence in quiet hours is marked dropped and not moved."""
        occ = occurrence_at(
            schedule("0 9 * * *", BERLIN, quiet("22:00", "07:00", "drop")), at(nominal)
        )
        assert occ.fire_at == at(nominal)
        assert occ.dropped is dropped
        assert occ.note == ("quiet_hours_dropped" if dropped else None)

    @settings(max_examples=150, deadline=None)
    @given(
        zone=st.sampled_from([BERLIN, NEW_YORK, "Asia/Kolkata", "Australia/Lord_Howe"]),
        start=st.integers(0, 24 * 60 - 1),
        end=st.integers(0, 24 * 60 - 1),
        minute=st.integers(0, 365 * 24 * 60),
    )
    def test_deferral_is_first_instant_outside_quiet_hours(
        self, zone: str, start: int, end: int, minute: int
    ) -> None:
        """Brute force, minute by minute: a deferred nudge goes out at the first instant whose
        local time is no longer quiet, and at its nominal instant when that is not quiet."""
        if start == end:
            return
        window = quiet(f"{start // 60:02d}:{start % 60:02d}", f"{end // 60:02d}:{end % 60:02d}")
        tz = ZoneInfo(zone)
        nominal = at("2026-01-01T00:00Z") + timedelta(minutes=minute)

        def is_quiet(instant: datetime) -> bool:
            local = to_local(instant, tz)
            m = local.hour * 60 + local.minute
            return start <= m < end if start < end else (m >= start or m < end)

        expected = nominal
        while is_quiet(expected):
            expected += timedelta(minutes=1)
        occ = occurrence_at(schedule("0 9 * * *", zone, window), nominal)
        assert occ.fire_at == expected
        assert occ.note == (None if expected == nominal else "quiet_hours_deferred")


class TestNextOccurrence:
    def test_applies_quiet_hours(self) -> None:
        """The next nominal instant is found first, then moved out of quiet hours."""
        occ = next_occurrence(schedule("0 23 * * *", BERLIN, MAYA_QUIET), at("2026-06-10T00:00Z"))
        assert occ == Occurrence(
            at("2026-06-10T21:00Z"), at("2026-06-11T05:00Z"), note="quiet_hours_deferred"
        )

    def test_strictly_after(self) -> None:
        """An occurrence at exactly `after` is not returned again; the next one is."""
        daily = schedule("0 23 * * *", BERLIN, MAYA_QUIET)
        occ = next_occurrence(daily, at("2026-06-10T21:00Z"))
        assert occ is not None
        assert occ.nominal == at("2026-06-11T21:00Z")

    def test_after_is_nominal_not_deferred(self) -> None:
        """Asking after the deferred fire time still yields the next nominal, not a skip."""
        daily = schedule("0 23 * * *", BERLIN, MAYA_QUIET)
        occ = next_occurrence(daily, at("2026-06-11T05:00Z"))
        assert occ is not None
        assert occ.nominal == at("2026-06-11T21:00Z")

    def test_planned_own_local_schedules(self) -> None:
        """Friday 23:00 each partner's own time: Maya's is deferred to 07:00, Sam's dropped."""
        prefs = couple(date_night=NudgePlan(cadence=weekly("fri", "23:00")))
        maya, sam = plan(prefs, min_interval=FOUR_HOURS, now=MAY)
        after = at("2026-06-01T00:00Z")  # a Monday; Friday is June 5
        assert next_occurrence(maya, after) == Occurrence(
            at("2026-06-05T21:00Z"), at("2026-06-06T05:00Z"), note="quiet_hours_deferred"
        )
        assert next_occurrence(sam, after) == Occurrence(
            at("2026-06-06T03:00Z"), at("2026-06-06T03:00Z"), "quiet_hours_dropped", True
        )

    def test_shared_schedule_waits_for_both_partners_allowed_hours(self) -> None:
        """Together at Fri 23:00 Berlin: Maya (22-07 Berlin, defer) pushes it to Sat 07:00
        Berlin = 01:00 New York, inside Sam's 23:00-06:30; it lands at 06:30 New York."""
        prefs = couple(date_night=NudgePlan(cadence=weekly("fri", "23:00"), timing="together"))
        [both] = plan(prefs, min_interval=FOUR_HOURS, now=MAY)
        occ = next_occurrence(both, at("2026-06-01T00:00Z"))
        assert occ == Occurrence(
            at("2026-06-05T21:00Z"), at("2026-06-06T10:30Z"), note="quiet_hours_deferred"
        )

    def test_shared_schedule_dropped_when_every_covering_window_drops(self) -> None:
        """Only Sam's quiet hours (policy drop) cover the instant: the occurrence is dropped."""
        prefs = couple(date_night=NudgePlan(cadence=weekly("sat", "11:00"), timing="together"))
        [both] = plan(prefs, min_interval=FOUR_HOURS, now=MAY)
        # Sat 11:00 Berlin = 05:00 New York: inside Sam's 23:00-06:30, outside Maya's.
        occ = next_occurrence(both, at("2026-06-01T00:00Z"))
        assert occ == Occurrence(
            at("2026-06-06T09:00Z"), at("2026-06-06T09:00Z"), "quiet_hours_dropped", True
        )
