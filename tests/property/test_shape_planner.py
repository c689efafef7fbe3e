"""Planning once per shape gives every couple exactly the Arms planned directly.

`ShapePlanner` remembers a nudge kind's specs and first fires per shape (the kind's plan with
partner ids as positions, zones, quiet hours) and serves them while `now` stays before the
first nominal instant. For any couple, at any sequence of instants (forwards, backwards,
across fires), with the memo shared by other couples of the same shape and by other
shapes, its Arms equal `plan_arms`'s.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any, NamedTuple

from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.common.clock import from_ms
from couples_nudge.scheduler.planning import PlanningError
from couples_nudge.scheduler.shapes import (
    _FLAT,
    ShapePlanner,
    _nested_fields,
    _spread_values,
    _values,
    plan_arms,
)
from couples_nudge.scheduler.store import Arm, Plan, build_arm
from couples_nudge_schemas import (
    Cadence,
    CronCadence,
    NudgePlan,
    Nudges,
    PreferencesSetData,
    QuietHours,
    TimesPerWeekCadence,
    TimeWindow,
    WeeklyCadence,
)
from tests.unit.test_records import AUDIENCES, cadences, couple

START = datetime(2026, 3, 27, 23, tzinfo=UTC)  # two days before Europe's spring DST change
_STEP = st.integers(-3 * 86_400_000, 9 * 86_400_000).map(lambda ms: timedelta(milliseconds=ms))
_IDS = st.sampled_from(["maya", "sam", "both", "turns", "x.1", "lee"])


def _as(prefs: PreferencesSetData, couple_id: str, a: str, b: str) -> PreferencesSetData:
    """The same preferences for other people (plans that name a partner follow the rename)."""
    rename = {prefs.partners[0].partner_id: a, prefs.partners[1].partner_id: b}

    def moved(plan_: NudgePlan | None) -> NudgePlan | None:
        if plan_ is None:
            return None
        update = {
            field: rename[ref]
            for field in ("partner_id", "timezone_of")
            if (ref := getattr(plan_, field)) is not None
        }
        return plan_.model_copy(update=update)

    first, second = prefs.partners
    nudges = prefs.nudges
    return prefs.model_copy(
        update={
            "couple_id": couple_id,
            "partners": (
                first.model_copy(update={"partner_id": a}),
                second.model_copy(update={"partner_id": b}),
            ),
            "nudges": Nudges(
                date_night=moved(nudges.date_night),
                check_in=moved(nudges.check_in),
                appreciation=moved(nudges.appreciation),
            ),
        }
    )


def _direct(prefs: PreferencesSetData, now: datetime) -> list[Arm] | str:
    try:
        return plan_arms(prefs, min_interval=timedelta(hours=1), now=now)
    except PlanningError as exc:
        return str(exc)


def _shaped(planner: ShapePlanner, prefs: PreferencesSetData, now: datetime) -> list[Arm] | str:
    try:
        return planner.arms(prefs, now)
    except PlanningError as exc:
        return str(exc)


_QUIET = st.sampled_from(
    [None, QuietHours(start=time(22), end=time(7)), QuietHours(start=time(18), end=time(20))]
)


class _Shape(NamedTuple):
    cadence: Cadence
    audience: str
    maya_quiet: QuietHours | None
    sam_quiet: QuietHours | None
    sam_zone: str
    ids: tuple[str, str]


@st.composite
def _couples(draw: st.DrawFn) -> list[PreferencesSetData]:
    """A couple and variants of it that differ in one part each: shapes that nearly collide."""
    pools: dict[str, st.SearchStrategy[Any]] = {
        "cadence": st.sampled_from(_CADENCES),
        "audience": st.sampled_from(sorted(_AUDIENCES)),
        "maya_quiet": _QUIET,
        "sam_quiet": _QUIET,
        "sam_zone": _ZONES,
        "ids": _PAIR,
    }
    base = _Shape(**{part: draw(pool) for part, pool in pools.items()})
    if draw(st.booleans()):
        base = base._replace(cadence=draw(cadences()))
    shapes = [base]
    for part in draw(st.lists(st.sampled_from(sorted(pools)), min_size=2, max_size=8)):
        shapes.append(base._replace(**{part: draw(pools[part])}))
    return [
        _as(
            couple(
                shape.cadence,
                _AUDIENCES[shape.audience],
                maya_quiet=shape.maya_quiet,
                sam_quiet=shape.sam_quiet,
                sam_zone=shape.sam_zone,
            ),
            f"c{i}",
            *shape.ids,
        )
        for i, shape in enumerate(shapes)
    ]


_AUDIENCES = {
    **AUDIENCES,
    "together_in_first_zone": {"timing": "together"},
    "one_together": {"recipients": "one", "partner_id": "sam", "timing": "together"},
    "one_first": {"recipients": "one", "partner_id": "maya"},
}
_ZONES = st.sampled_from(["Europe/Berlin", "America/New_York"])
_PAIR = st.tuples(_IDS, _IDS).filter(lambda t: t[0] != t[1])
_CADENCES: list[Cadence] = [
    WeeklyCadence(repeat="weekly", weekday="fri", at=time(19)),
    WeeklyCadence(repeat="weekly", weekday="fri", at=time(19, 30)),
    WeeklyCadence(repeat="weekly", weekday="sat", at=time(19)),
    # seeded by the schedule id: the shape is shared, each couple's first fire is its own
    TimesPerWeekCadence(
        repeat="times_per_week", times=3, between=TimeWindow(start=time(9), end=time(21))
    ),
    TimesPerWeekCadence(
        repeat="times_per_week", times=3, between=TimeWindow(start=time(9), end=time(20))
    ),
    # raw cron: the audience's part is shared, each couple's cron is checked and fired alone
    *(
        CronCadence(repeat="cron", cron=cron)
        for cron in (
            "30 8 * * 1-5",
            "0 9,21 * * *",
            "30 2 * * *",  # inside Europe's spring gap two days after START
            "0 19 * * 5",  # the weekly cadences' instant, written as cron
            "*/20 9 * * *",  # too frequent for the hour's minimum interval
            "0 0 30 2 *",  # never fires: refused (PlanningError)
            "0 9 * * 1,1#2",  # the schema lets it through, the rules refuse it
            "5-5 9 L * *",
        )
    ),
]


class TestShapePlanner:
    @settings(max_examples=400, deadline=None)
    @given(couples=_couples(), data=st.data())
    def test_same_arms_as_planned_directly(
        self, couples: list[PreferencesSetData], data: st.DataObject
    ) -> None:
        """Instants move forwards and back, often to just before, at or after a first fire."""
        planner = ShapePlanner(timedelta(hours=1), size=3)  # small: the memo also starts over
        now = START
        for _ in range(data.draw(st.integers(1, 6))):
            fires: list[int] = []
            for each in couples:
                shaped = _shaped(planner, each, now)
                assert shaped == _direct(each, now)
                # Nominal instants and deferred fires: an arm waits for either (pending_or_next)
                fires += [ms for arm in shaped if isinstance(arm, Arm) for ms in arm[2:4]]
            jump = data.draw(st.booleans())
            if fires and jump:
                edge = data.draw(st.sampled_from(fires)) + data.draw(st.sampled_from([-1, 0, 1]))
                now = from_ms(edge)
            else:
                now += data.draw(_STEP)

    def test_a_shape_is_planned_once_until_its_first_fire(self) -> None:
        """Couples of one shape share the entry while `now` is before the first fire."""
        prefs = couple(WeeklyCadence(repeat="weekly", weekday="fri", at=time(19)), {})
        planner = ShapePlanner(timedelta(hours=1))
        friday = datetime(2026, 3, 27, 18, tzinfo=UTC)  # 19:00 in Berlin, 14:00 in New York
        first = planner.arms(prefs, friday - timedelta(hours=1))
        assert planner.hits == 0
        again = planner.arms(_as(prefs, "c2", "kim", "lou"), friday - timedelta(minutes=1))
        assert planner.hits == 3  # three kinds, each from the memo
        assert [arm.schedule_id for arm in again] == [
            f"c2/{code}/{who}" for code in "dca" for who in ("kim", "lou")
        ]
        assert [arm.field for arm in again] == [
            f"{code}/{who}" for code in "dca" for who in ("kim", "lou")
        ]
        assert [arm[1:4] for arm in again] == [arm[1:4] for arm in first]  # spec, nominal, fire
        assert [arm.record for arm in again] == [arm.record for arm in first]
        later = planner.arms(prefs, friday)  # Berlin's 19:00 has come: planned again
        assert planner.hits == 3
        summer = 7 * 86_400_000 - 3_600_000  # a week later, in Berlin's summer time
        assert later[0].nominal_ms == first[0].nominal_ms + summer

    def test_times_per_week_shares_the_shape_but_not_the_fires(self) -> None:
        """A times-per-week kind's specs come from the memo; each couple's seed picks its fires."""
        prefs = couple(_CADENCES[3], {})
        planner = ShapePlanner(timedelta(hours=1))
        first = planner.arms(prefs, START)
        assert planner.hits == 0
        other = _as(prefs, "c2", "kim", "lou")
        again = planner.arms(other, START + timedelta(days=30))  # any instant: no validity
        assert planner.hits == 3
        assert again == _direct(other, START + timedelta(days=30))
        assert [arm.spec for arm in again] == [arm.spec for arm in first]
        fires = [arm.nominal_ms for arm in again + first]  # 3 kinds x 2 partners x 2 couples
        assert len(set(fires)) == len(fires) == 12  # each schedule its own seed

    def test_raw_cron_shares_the_audience_but_not_the_cron(self) -> None:
        """A raw-cron kind's audience comes from the memo (any instant); each couple's cron is
        validated, checked for frequency and fired on its own."""
        prefs = couple(CronCadence(repeat="cron", cron="30 8 * * 1-5"), {})
        planner = ShapePlanner(timedelta(hours=1))
        first = planner.arms(prefs, START)
        assert planner.hits == 0
        later = START + timedelta(days=30)
        other = _as(couple(CronCadence(repeat="cron", cron="0 21 L * *"), {}), "c2", "kim", "lou")
        again = planner.arms(other, later)
        assert planner.hits == 3
        assert again == _direct(other, later)
        assert [arm.spec[: arm.spec.index("|")] for arm in again] == [
            arm.spec[: arm.spec.index("|")] for arm in first
        ]
        assert {arm.spec.split("|")[1] for arm in again} == {"e0 21 L * *"}
        too_often = couple(CronCadence(repeat="cron", cron="*/30 8 * * *"), {})
        assert _shaped(planner, too_often, later) == _direct(too_often, later)
        assert "cron fires as often as every 30 minutes" in str(_shaped(planner, too_often, later))
        assert planner.hits == 5  # date night from the memo, then refused

    def test_a_couples_zones_and_quiet_hours_get_one_number_never_reused(self) -> None:
        """Couples of one zones-and-quiet-hours share its number; after the memo starts over
        the same ones get a new number, never one that stood for others."""
        prefs = couple(_CADENCES[3], {})
        planner = ShapePlanner(timedelta(hours=1), size=1)
        planner.arms(prefs, START)
        planner.arms(_as(prefs, "c2", "kim", "lou"), START)
        assert list(planner._couples.values()) == [0]
        apart = prefs.model_copy(
            update={
                "partners": (
                    prefs.partners[0].model_copy(update={"timezone": "UTC"}),
                    prefs.partners[1],
                )
            }
        )
        assert planner.arms(apart, START) == _direct(apart, START)
        assert list(planner._couples.values()) == [1]  # started over: size 1
        assert planner.arms(prefs, START) == _direct(prefs, START)
        assert list(planner._couples.values()) == [2]


class TestMemoKeys:
    def test_quiet_hours_are_a_flat_model(self) -> None:
        """ShapePlanner.arms keys quiet hours by their field values alone: none is a model."""
        assert _nested_fields(QuietHours) == ()

    @given(first=cadences(), second=cadences())
    def test_a_cadence_key_is_equal_exactly_when_the_cadences_are(
        self, first: Cadence, second: Cadence
    ) -> None:
        """`_values` keys (nested window included) compare and hash as the models compare."""
        a, b = _values(first), _values(second)
        assert (a == b) == (first == second)
        copied = _values(first.model_copy())
        assert a == copied
        assert hash(a) == hash(copied)
        if type(first) is TimesPerWeekCadence:  # the window as its own key, not the model
            window = first.between
            assert a == (TimesPerWeekCadence, "times_per_week", first.times, _values(window))
            assert _spread_values(first) == a  # written out in ShapePlanner.arms
        if type(first) in _FLAT:  # so keyed by ShapePlanner.arms without the call
            assert a == (type(first), *first.__dict__.values())


_SAFE_ID = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)


class TestArmTexts:
    @given(_SAFE_ID, st.sampled_from("dca"), _SAFE_ID, st.text(), st.integers(0, 2**53))
    def test_build_arm_derives_what_the_store_sent_before(
        self, couple_id: str, code: str, target: str, spec: str, nominal_ms: int
    ) -> None:
        """Arm.field and Arm.record are the texts ScheduleStore._apply_call made before it
        read them from the Arm (the schedule id after "<couple id>/"; seq 0, nominal, spec)."""
        schedule_id = f"{couple_id}/{code}/{target}"
        made = build_arm(schedule_id, spec, nominal_ms, nominal_ms + 1)
        assert made.field == schedule_id[len(couple_id) + 1 :]
        assert made.record == f"0|{made.nominal_ms}|{made.spec}"
        assert made[:4] == (schedule_id, spec, nominal_ms, nominal_ms + 1)

    @settings(max_examples=100, deadline=None)
    @given(couples=_couples())
    def test_the_planners_arms_carry_their_derived_texts(
        self, couples: list[PreferencesSetData]
    ) -> None:
        """Every Arm the shape planner gives, from its memo or not, is `build_arm` of its
        first four fields: its field and record are never another couple's (the comparison
        with `plan_arms` above implies it; this says it alone)."""
        planner = ShapePlanner(timedelta(hours=1))
        for prefs in couples + couples:  # the second time from the memo
            arms = _shaped(planner, prefs, START)
            if not isinstance(arms, str):
                assert arms == [build_arm(*arm[:4]) for arm in arms]


class TestArmsBuiltInC:
    @given(st.text(), st.text(), st.integers(), st.integers(), st.text(), st.text())
    def test_tuple_new_builds_the_same_arm(
        self, schedule_id: str, spec: str, nominal_ms: int, fire_ms: int, field: str, record: str
    ) -> None:
        """`tuple.__new__(Arm, fields)` (shapes.py's fast form) is `Arm(*fields)`: same type,
        fields and field names; Arm's only __new__ is the NamedTuple's, which checks nothing."""
        fields = (schedule_id, spec, nominal_ms, fire_ms, field, record)
        fast, plain = tuple.__new__(Arm, fields), Arm(*fields)
        assert type(fast) is Arm
        assert fast == plain
        assert fast._asdict() == plain._asdict()
        assert Arm.__new__.__module__ == "namedtuple_Arm"  # collections.namedtuple's own

    @given(st.text(), st.integers(), st.integers())
    def test_tuple_new_builds_the_same_plan(
        self, couple_id: str, revision: int, occurred_ms: int
    ) -> None:
        """`tuple.__new__(Plan, fields)` (ingest.py's fast form) is `Plan(*fields)` likewise."""
        fields: tuple[str, int, int, dict[str, str], list[Arm]] = (
            couple_id,
            revision,
            occurred_ms,
            {"s0": "a|UTC"},
            [],
        )
        fast, plain = tuple.__new__(Plan, fields), Plan(*fields)
        assert type(fast) is Plan
        assert fast == plain
        assert fast._asdict() == plain._asdict()
        assert Plan.__new__.__module__ == "namedtuple_Plan"


class TestKeptWeek:
    def test_a_spread_arm_keeps_its_week_only_while_it_holds_now(self) -> None:
        """A times-per-week arm's kept steady week is used only for instants inside it: going
        forwards over Europe's spring change and weeks ahead, then back, every couple gets
        the arms planned directly."""
        prefs = couple(_CADENCES[3], {})
        planner = ShapePlanner(timedelta(hours=1))
        instants = [
            START + timedelta(hours=h) for h in (0, 30, 46, 50, 118, 166, 200, 400, -100, 1, 49)
        ]
        for i, now in enumerate(instants):
            other = _as(prefs, f"c{i}", f"kim{i}", f"lou{i}")
            assert planner.arms(other, now) == _direct(other, now)
