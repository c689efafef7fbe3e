"""Specification of couples_nudge.scheduler.rules: recurrence rules and when they fire.

Tables read (zone, rule, previous, expected): the fire strictly after
``previous``, both UTC. Transition dates are listed in test_wallclock.py.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from couples_nudge.scheduler import rules
from couples_nudge.scheduler.rules import (
    CronRule,
    Rule,
    RuleError,
    SpreadRule,
    fires_between,
    first_gap_below,
    min_gap,
    next_fire,
    validate_cron,
)
from couples_nudge.scheduler.wallclock import to_local
from couples_nudge_schemas import preferences


def at(text: str) -> datetime:
    """'2024-03-10T07:00Z' -> aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


def spread(
    n: int = 3, start: str = "12:00", end: str = "20:00", seed: str = "c1/x/p1"
) -> SpreadRule:
    return SpreadRule(n, time.fromisoformat(start), time.fromisoformat(end), seed)


NY = "America/New_York"


class TestValidateCron:
    @pytest.mark.parametrize(
        "expr",
        [
            "* * * * *",
            "*/15 2 * * *",
            "0,30 9-17 * * mon-fri",
            "0 20 * * 0#1",
            "0 20 * * sun#1",
            "0 9 L * *",
            "0 9 * * L5",
            "0 9 15W * *",
            "0 0 30 2 *",
            "  0   9 * JAN-MAR SUN ",
        ],
    )
    def test_accepts(self, expr: str) -> None:
        """Five croniter fields, including n-th weekday, last day and nearest weekday."""
        validate_cron(expr)

    @pytest.mark.parametrize(
        ("expr", "message"),
        [
            ("* * * *", "cron expression '* * * *': expected 5 fields"),
            ("* * * * * *", "cron expression '* * * * * *': expected 5 fields"),
            ("", "cron expression '': expected 5 fields (minute hour day-of-month month day-of-w"),
            ("@daily", "macros such as @daily are not supported"),
            ("garbage", "cron expression 'garbage': expected 5 fields"),
            ("61 * * * *", "cron expression '61 * * * *': minute 61 out of range (0-59)"),
            ("0 24 * * *", "cron expression '0 24 * * *': hour 24 out of range (0-23)"),
            ("0 0 0 * *", "cron expression '0 0 0 * *': day-of-month 0 out of range (1-31)"),
            ("0 0 * 1-13 *", "cron expression '0 0 * 1-13 *': month 13 out of range (1-12)"),
            ("0 0 * * 8", "cron expression '0 0 * * 8': day-of-week 8 out of range (0-7)"),
            ("0 0 * * 0#6", "day-of-week '0#6': occurrence 6 out of range (1-5)"),
            ("a b c d e", "cron expression 'a b c d e': invalid minute field 'a'"),
            ("0 0 * * funday", "invalid day-of-week field 'funday'"),
            ("*/0 * * * *", "invalid minute field '*/0'"),
            ("0 0 * * 5L", "invalid day-of-week field '5L' (croniter writes the last Fri"),
            ("H * * * *", "minute field 'H': H (hashed) and R (random) values are not supported"),
            ("R 9 * * *", "minute field 'R': H (hashed) and R (random)"),
        ],
    )
    def test_rejects(self, expr: str, message: str) -> None:
        """RuleError names the expression and what is wrong with it."""
        with pytest.raises(RuleError, match=re.escape(message)):
            validate_cron(expr)

    def test_rule_error_is_a_value_error(self) -> None:
        """Callers that only know ValueError still catch a bad rule."""
        with pytest.raises(ValueError, match="expected 5 fields"):
            validate_cron("* *")

    def test_a_new_field_is_parsed_once_by_the_schema_and_the_rules(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The schema checks a new cron's fields with croniter; the rules then read that same
        parse (one croniter per new field, not two), and a known field costs none."""
        parses: list[str] = []

        def counting(expr: str, *args: Any, **kwargs: Any) -> Any:
            parses.append(expr)
            return croniter(expr, *args, **kwargs)

        monkeypatch.setattr(preferences, "croniter", counting)
        monkeypatch.setattr(rules, "croniter", counting)
        # Empty caches of their own (emptying the shared ones would make other tests parse
        # again, inside their strategies: croniter draws from `random` for "R").
        reading = lru_cache(maxsize=64)(preferences.cron_field_reading.__wrapped__)
        monkeypatch.setattr(preferences, "cron_field_reading", reading)
        monkeypatch.setattr(rules, "cron_field_reading", reading)
        monkeypatch.setattr(rules, "_fields", lru_cache(maxsize=64)(rules._fields.__wrapped__))
        monkeypatch.setattr(rules, "_KNOWN_FIELDS", {})
        expr = "7 13 2,9 */2 1-5"
        assert preferences._valid_cron(expr)
        assert parses == ["7 * * * *", "* 13 * * *", "* * 2,9 * *", "* * * */2 *", "* * * * 1-5"]
        validate_cron(expr)
        assert len(parses) == 5
        validate_cron("8 13 2,9 */2 1-5")  # one new field
        assert parses[5:] == ["8 * * * *"]


class TestCronRule:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"expr": "61 * * * *"}, "minute 61 out of range"),
            ({"expr": "0 9 * * mon", "every_weeks": 2}, "every_weeks=2 needs an anchor date"),
            ({"expr": "0 9 * * mon", "every_weeks": 0}, "every_weeks must be from 1 to 4, got 0"),
            ({"expr": "0 9 * * mon", "every_weeks": 5, "anchor": date(2024, 1, 1)}, "from 1 to 4"),
            ({"expr": "0 9 * * mon", "every_weeks": True}, "every_weeks must be an int"),
            ({"expr": "0 9 * * mon", "anchor": datetime(2024, 1, 1)}, "anchor must be a date"),
        ],
    )
    def test_rejects(self, kwargs: dict[str, Any], message: str) -> None:
        """A rule that could never be scheduled is refused when it is built."""
        with pytest.raises(RuleError, match=re.escape(message)):
            CronRule(**kwargs)

    def test_is_a_hashable_value(self) -> None:
        """Equal rules compare and hash equal, so they can key caches."""
        assert CronRule("0 9 * * *") == CronRule("0 9 * * *")
        assert len({CronRule("0 9 * * *"), CronRule("0 9 * * *")}) == 1


class TestSpreadRuleFields:
    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"n": 0}, "times_per_week must be an int from 1 to 7, got 0"),
            ({"n": 8}, "times_per_week must be an int from 1 to 7, got 8"),
            (
                {"start": "20:00", "end": "20:00"},
                "window_end 20:00 must be after window_start 20:00",
            ),
            (
                {"start": "20:00", "end": "08:00"},
                "window_end 08:00 must be after window_start 20:00",
            ),
            ({"start": "12:00:30"}, "window_start must be a whole minute, got 12:00:30"),
            ({"seed": ""}, "seed must be a non-empty string"),
        ],
    )
    def test_rejects(self, kwargs: dict[str, Any], message: str) -> None:
        """A window that is empty or a count outside 1..7 is refused when it is built."""
        with pytest.raises(RuleError, match=re.escape(message)):
            spread(**kwargs)


class TestNextFire:
    @pytest.mark.parametrize(
        ("zone", "expr", "previous", "expected"),
        [
            # New York spring forward, 2024-03-10: 02:00-02:59 does not exist.
            (NY, "30 2 * * *", "2024-03-09T08:00Z", "2024-03-10T07:00Z"),
            (NY, "30 2 * * *", "2024-03-10T07:00Z", "2024-03-11T06:30Z"),
            (NY, "*/15 2 * * *", "2024-03-10T06:00Z", "2024-03-10T07:00Z"),
            (NY, "*/15 2 * * *", "2024-03-10T07:00Z", "2024-03-11T06:00Z"),
            (NY, "0,30 2,3 * * *", "2024-03-10T07:00Z", "2024-03-10T07:30Z"),
            (NY, "0 3 * * *", "2024-03-10T06:59Z", "2024-03-10T07:00Z"),
            # New York fall back, 2024-11-03: 01:00-01:59 happens twice.
            (NY, "30 1 * * *", "2024-11-03T04:00Z", "2024-11-03T05:30Z"),
            (NY, "30 1 * * *", "2024-11-03T05:30Z", "2024-11-04T06:30Z"),
            (NY, "30 1 * * *", "2024-11-03T06:10Z", "2024-11-04T06:30Z"),
            (NY, "*/20 1 * * *", "2024-11-03T06:10Z", "2024-11-04T06:00Z"),
            (NY, "0 * * * *", "2024-11-03T05:00Z", "2024-11-03T07:00Z"),
            # Europe/London, 2024-03-31 and 2024-10-27.
            ("Europe/London", "30 1 * * *", "2024-03-30T12:00Z", "2024-03-31T01:00Z"),
            ("Europe/London", "30 1 * * *", "2024-10-26T12:00Z", "2024-10-27T00:30Z"),
            ("Europe/London", "30 1 * * *", "2024-10-27T01:10Z", "2024-10-28T01:30Z"),
            # Australia/Lord_Howe shifts by 30 minutes.
            ("Australia/Lord_Howe", "15 2 * * *", "2024-10-05T12:00Z", "2024-10-05T15:30Z"),
            ("Australia/Lord_Howe", "15 2 * * *", "2024-10-05T15:30Z", "2024-10-06T15:15Z"),
            ("Australia/Lord_Howe", "45 1 * * *", "2024-04-06T12:00Z", "2024-04-06T14:45Z"),
            ("Australia/Lord_Howe", "45 1 * * *", "2024-04-06T15:00Z", "2024-04-07T15:15Z"),
            # Midnight transitions: Santiago, Havana, Beirut.
            ("America/Santiago", "0 0 * * *", "2024-09-07T12:00Z", "2024-09-08T04:00Z"),
            ("America/Santiago", "0 0 * * *", "2024-09-08T04:00Z", "2024-09-09T03:00Z"),
            ("America/Santiago", "30 23 * * *", "2024-04-06T12:00Z", "2024-04-07T02:30Z"),
            ("America/Santiago", "30 23 * * *", "2024-04-07T03:10Z", "2024-04-08T03:30Z"),
            ("America/Havana", "0 0 * * *", "2024-03-09T12:00Z", "2024-03-10T05:00Z"),
            ("Asia/Beirut", "30 0 * * *", "2024-03-30T12:00Z", "2024-03-30T22:00Z"),
            # A gap that straddles midnight: Saturday 23:30 fires at Sunday 00:00.
            ("America/Nuuk", "30 23 * * *", "2024-03-30T12:00Z", "2024-03-31T01:00Z"),
            # No DST at all.
            ("Asia/Kolkata", "0 9 * * *", "2024-03-10T00:00Z", "2024-03-10T03:30Z"),
            ("Asia/Kolkata", "0 9 * * *", "2024-03-10T03:30Z", "2024-03-11T03:30Z"),
            ("UTC", "0 9 * * *", "2024-03-10T08:59:59.999999Z", "2024-03-10T09:00Z"),
            # Monthly forms croniter understands.
            (NY, "0 20 * * 0#1", "2024-06-01T00:00Z", "2024-06-03T00:00Z"),
            (NY, "0 20 * * sun#1", "2024-06-03T00:00Z", "2024-07-08T00:00Z"),
            (NY, "0 9 L * *", "2024-02-01T00:00Z", "2024-02-29T14:00Z"),
            (NY, "0 9 * * L5", "2024-05-01T00:00Z", "2024-05-31T13:00Z"),
            ("UTC", "0 0 29 2 *", "2024-03-01T00:00Z", "2028-02-29T00:00Z"),
            ("UTC", "0 22-2 * * *", "2024-01-01T02:00Z", "2024-01-01T22:00Z"),  # wraps
            # An equal range is its one value, as in cron (croniter 7 alone reads "every").
            ("UTC", "5-5 * * * *", "2024-01-01T00:05Z", "2024-01-01T01:05Z"),
            ("UTC", "0 9 * 3-3 *", "2024-01-01T00:00Z", "2024-03-01T09:00Z"),
            ("UTC", "0 9 * * mon-mon", "2024-01-01T09:00Z", "2024-01-08T09:00Z"),
        ],
    )
    def test_cron_table(self, zone: str, expr: str, previous: str, expected: str) -> None:
        """The first fire strictly after previous, with gaps and overlaps resolved like cron."""
        assert next_fire(CronRule(expr), ZoneInfo(zone), at(previous)) == at(expected)

    @pytest.mark.parametrize(
        ("anchor", "every_weeks", "previous", "expected"),
        [
            (date(2024, 1, 1), 2, "2024-01-01T08:00Z", "2024-01-01T09:00Z"),
            (date(2024, 1, 1), 2, "2024-01-01T09:00Z", "2024-01-15T09:00Z"),
            (date(2024, 1, 10), 2, "2024-01-01T09:00Z", "2024-01-08T09:00Z"),
            (date(2024, 1, 14), 2, "2024-01-08T09:00Z", "2024-01-22T09:00Z"),
            (date(2030, 1, 7), 2, "2024-01-01T09:00Z", "2024-01-15T09:00Z"),
            (date(2024, 1, 1), 3, "2024-01-01T09:00Z", "2024-01-22T09:00Z"),
            (date(2024, 1, 1), 4, "2024-01-01T09:00Z", "2024-01-29T09:00Z"),
            (date(2023, 12, 31), 4, "2024-01-01T09:00Z", "2024-01-22T09:00Z"),
        ],
    )
    def test_every_other_week_counts_monday_weeks_from_the_anchor(
        self, anchor: date, every_weeks: int, previous: str, expected: str
    ) -> None:
        """Only weeks a multiple of every_weeks away from the anchor's Monday week fire."""
        rule = CronRule("0 9 * * mon", every_weeks=every_weeks, anchor=anchor)
        assert next_fire(rule, ZoneInfo("UTC"), at(previous)) == at(expected)

    def test_every_other_week_keeps_all_days_of_an_on_week(self) -> None:
        """Monday and Friday of an on week both fire; the off week is skipped entirely."""
        rule = CronRule("0 9 * * mon,fri", every_weeks=2, anchor=date(2024, 1, 1))
        fires = fires_between(
            rule, ZoneInfo("UTC"), at("2024-01-01T00:00Z"), at("2024-01-31T00:00Z")
        )
        assert [f.date() for f in fires] == [
            date(2024, 1, 1), date(2024, 1, 5), date(2024, 1, 15), date(2024, 1, 19),
            date(2024, 1, 29),
        ]  # fmt: skip

    def test_every_other_week_jumps_over_a_busy_off_week(self) -> None:
        """An every-minute rule jumps over the 10080 candidates of an off week."""
        rule = CronRule("* * * * *", every_weeks=2, anchor=date(2024, 1, 1))
        assert next_fire(rule, ZoneInfo("UTC"), at("2024-01-07T23:59Z")) == at("2024-01-15T00:00Z")

    @pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6,9,11 *"])
    def test_impossible_dates_never_fire(self, expr: str) -> None:
        """A date that never exists gives None instead of searching forever."""
        assert next_fire(CronRule(expr), ZoneInfo(NY), at("2024-01-01T00:00Z")) is None

    def test_spread_rule_gives_the_first_of_fires_between(self) -> None:
        """next_fire and fires_between agree for spread rules too."""
        rule, tz, start = spread(), ZoneInfo(NY), at("2024-05-01T00:00Z")
        expected = next(fires_between(rule, tz, start, start + timedelta(days=8)))
        assert next_fire(rule, tz, start) == expected

    @pytest.mark.parametrize("rule", [CronRule("0 9 * * *"), spread()])
    def test_results_are_whole_minutes_in_utc(self, rule: Rule) -> None:
        """Every fire is aware UTC with second=0 and microsecond=0."""
        fired = next_fire(rule, ZoneInfo("Asia/Kolkata"), at("2024-05-01T00:00:30.5Z"))
        assert fired is not None
        assert (fired.tzinfo, fired.second, fired.microsecond) == (UTC, 0, 0)

    def test_feeding_each_fire_back_walks_fires_between(self) -> None:
        """Feeding each fire back as previous reproduces fires_between over a DST month."""
        tz, rule = ZoneInfo(NY), CronRule("*/20 1,2 * * *")
        start, end = at("2024-10-28T00:00Z"), at("2024-11-10T00:00Z")
        walked, previous = [], start
        while (fire := next_fire(rule, tz, previous)) is not None and fire <= end:
            walked.append(fire)
            previous = fire
        assert walked == list(fires_between(rule, tz, start, end))
        assert all(b > a for a, b in pairwise(walked))

    def test_rejects_a_naive_previous(self) -> None:
        """A naive datetime is not an instant."""
        with pytest.raises(ValueError, match="after must be timezone-aware"):
            next_fire(CronRule("0 9 * * *"), ZoneInfo("UTC"), datetime(2024, 1, 1))


class TestFiresBetween:
    @pytest.mark.parametrize(
        ("zone", "expr", "start", "end", "expected"),
        [
            (NY, "*/15 2 * * *", "2024-03-09T12:00Z", "2024-03-11T00:00Z", ["2024-03-10T07:00Z"]),
            (
                NY, "30 1 * * *", "2024-11-02T00:00Z", "2024-11-05T00:00Z",
                ["2024-11-02T05:30Z", "2024-11-03T05:30Z", "2024-11-04T06:30Z"],
            ),
            (
                NY, "0,30 * * * *", "2024-11-03T04:00Z", "2024-11-03T08:00Z",
                [
                    "2024-11-03T04:30Z", "2024-11-03T05:00Z", "2024-11-03T05:30Z",
                    "2024-11-03T07:00Z", "2024-11-03T07:30Z", "2024-11-03T08:00Z",
                ],
            ),
            (
                "Australia/Lord_Howe", "0 * * * *", "2024-10-05T13:30Z", "2024-10-05T17:00Z",
                [
                    "2024-10-05T14:30Z", "2024-10-05T15:30Z",  # 01:00, 02:00 -> 02:30
                    "2024-10-05T16:00Z", "2024-10-05T17:00Z",  # 03:00, 04:00
                ],
            ),
            ("UTC", "0 9 * * *", "2024-01-01T09:00Z", "2024-01-02T09:00Z", ["2024-01-02T09:00Z"]),
            ("UTC", "0 9 * * *", "2024-01-02T09:00Z", "2024-01-01T09:00Z", []),
        ],
    )  # fmt: skip
    def test_table(self, zone: str, expr: str, start: str, end: str, expected: list[str]) -> None:
        """Fires in (start, end], ascending, each instant once."""
        fires = fires_between(CronRule(expr), ZoneInfo(zone), at(start), at(end))
        assert list(fires) == [at(e) for e in expected]

    @pytest.mark.parametrize("naive", ["start", "end"])
    def test_rejects_naive_bounds_at_the_call(self, naive: str) -> None:
        """A naive start or end is refused when called, before any iteration."""
        bounds = {"start": at("2024-01-01T00:00Z"), "end": at("2024-01-02T00:00Z")}
        bounds[naive] = bounds[naive].replace(tzinfo=None)
        with pytest.raises(ValueError, match=f"{naive} must be timezone-aware"):
            fires_between(CronRule("0 9 * * *"), ZoneInfo("UTC"), **bounds)

    def test_daily_fires_once_per_local_day_across_a_year(self) -> None:
        """A daily rule fires 366 times in 2024 in New York, transitions included."""
        tz = ZoneInfo(NY)
        fires = list(
            fires_between(
                CronRule("30 1 * * *"), tz, at("2024-01-01T05:00Z"), at("2025-01-01T05:00Z")
            )
        )
        assert len({to_local(f, tz).date() for f in fires}) == len(fires) == 366


class TestDayFieldsAsCronie:
    """Day-of-month and day-of-week as cronie combines them (worked by hand from a calendar).

    cronie's entry.c sets DOM_STAR/DOW_STAR when a day field's first character is '*', and
    its cron.c ANDs the two fields when either flag is set, else ORs them. January 2026
    starts on a Thursday; 2026-01-05 is the first Monday.
    """

    @pytest.mark.parametrize(
        ("expr", "previous", "expected"),
        [
            # '*/3' starts with '*': the 17th AND a Sunday, Wednesday or Saturday. Jan 17 is a
            # Saturday; Feb 17 and Mar 17 are Tuesdays, Apr 17 a Friday, May 17 a Sunday.
            ("30 1 17 * */3", "2026-01-01T00:00Z", "2026-01-17T01:30Z"),
            ("30 1 17 * */3", "2026-01-17T01:30Z", "2026-05-17T01:30Z"),
            # Days 1, 4, 7, ... AND Mondays (5, 12, 19, 26): the 19th.
            ("0 9 */3 * 1", "2026-01-01T00:00Z", "2026-01-19T09:00Z"),
            # '*/1' starts with '*': every day AND Mondays.
            ("0 9 */1 * 1", "2026-01-01T10:00Z", "2026-01-05T09:00Z"),
            # '1-31' does not: every day OR Mondays, so every day.
            ("0 9 1-31 * 1", "2026-01-01T10:00Z", "2026-01-02T09:00Z"),
            # '?' is croniter's '*': Mondays.
            ("0 9 ? * 1", "2026-01-01T10:00Z", "2026-01-05T09:00Z"),
            ("0 9 * * 1", "2026-01-01T10:00Z", "2026-01-05T09:00Z"),
            # Lists OR: the 1st, the 15th, or a Monday.
            ("0 9 1,15 * 1", "2026-01-01T10:00Z", "2026-01-05T09:00Z"),
            ("0 9 1,15 * 1", "2026-01-12T10:00Z", "2026-01-15T09:00Z"),
            # Ranges OR: the "first Monday" written as 1-7 is days 1-7 or any Monday.
            ("0 9 1-7 * 1", "2026-01-07T10:00Z", "2026-01-12T09:00Z"),
            ("0 9 10-12 * 5", "2026-01-09T10:00Z", "2026-01-10T09:00Z"),
            # A stepped range does not start with '*': odd days OR Mondays (the 12th is even).
            ("0 9 1-31/2 * 1", "2026-01-11T10:00Z", "2026-01-12T09:00Z"),
            # A full weekday range: AND with '*/2' (odd days), OR with '15' (every day).
            ("0 9 */2 * 0-6", "2026-01-01T10:00Z", "2026-01-03T09:00Z"),
            ("0 9 15 * 0-6", "2026-01-01T10:00Z", "2026-01-02T09:00Z"),
            # '*/2' weekdays are Sun, Tue, Thu, Sat: the 2nd falls on one first in April (Thu).
            ("0 9 2 * */2", "2026-01-01T00:00Z", "2026-04-02T09:00Z"),
            # Both '*'-led: odd days, across a month end (31st, then the 1st).
            ("0 9 */3 * *", "2026-01-31T10:00Z", "2026-02-01T09:00Z"),
            # croniter's extensions belong to their field: the last day OR Fridays ...
            ("0 9 L * 5", "2026-01-29T10:00Z", "2026-01-30T09:00Z"),
            ("0 9 L * 5", "2026-01-30T10:00Z", "2026-01-31T09:00Z"),
            # ... the 1st OR the first Monday (Feb 1 is a Sunday, Feb 2 the first Monday) ...
            ("0 9 1 * 1#1", "2026-01-05T10:00Z", "2026-02-01T09:00Z"),
            # ... the weekday nearest the 15th OR Mondays (Aug 15 is a Saturday: the 14th) ...
            ("0 9 15W * 1", "2026-08-10T10:00Z", "2026-08-14T09:00Z"),
            # ... and days 1, 11, 21, 31 AND the last Friday: first on July 31.
            ("0 9 */10 * L5", "2026-01-01T00:00Z", "2026-07-31T09:00Z"),
        ],
    )
    def test_cronie_table(self, expr: str, previous: str, expected: str) -> None:
        """The next fire after previous (UTC) is the next day cronie would run the job."""
        assert next_fire(CronRule(expr), ZoneInfo("UTC"), at(previous)) == at(expected)

    def test_the_rule_holds_in_a_couples_zone(self) -> None:
        """In New York the same days fire, at 01:30 local: May 17, 2026 (EDT, UTC-4)."""
        rule = CronRule("30 1 17 * */3")
        assert next_fire(rule, ZoneInfo(NY), at("2026-01-17T12:00Z")) == at("2026-05-17T05:30Z")


class TestFirstGapBelow:
    @pytest.mark.parametrize(
        ("expr", "now", "limit_hours", "expected_minutes"),
        [
            ("0 */4 * * *", "2026-05-01T00:00Z", 4, None),
            ("0 */4 * * *", "2026-05-01T00:00Z", 5, 240),
            ("0 9,21 * * *", "2026-05-01T00:00Z", 12, None),
            ("0 9,21 * * *", "2026-05-01T00:00Z", 13, 12 * 60),
            # Across midnight: 23:00 then 00:00 the next day, but only in December.
            ("0 0,23 * 12 *", "2026-03-01T00:00Z", 4, 60),
            ("0 0,23 * 12 *", "2026-03-01T00:00Z", 1, None),
            # Across a month end: odd days, 22:00 and 02:00: May 31 22:00 -> Jun 1 02:00.
            ("0 2,22 */2 * *", "2026-05-01T00:00Z", 5, 4 * 60),
            ("0 2,22 */2 5 *", "2026-05-01T00:00Z", 5, None),
            # Weekly: a week apart, and refused only by a limit over a week.
            ("30 8 * * 1", "2026-05-01T00:00Z", 24 * 7, None),
            ("30 8 * * 1", "2026-05-01T00:00Z", 24 * 7 + 1, 7 * 24 * 60),
            # Feb 29 comes only in some windows: none from 2026-03-01 to 2027-03-02 ...
            ("0 0,12 29 2 *", "2026-03-01T00:00Z", 13, None),
            # ... but 2028-02-29 is inside the year from 2027-03-01.
            ("0 0,12 29 2 *", "2027-03-01T00:00Z", 13, 12 * 60),
            # The window is (now, now + 366 days]: a fire at now does not count ...
            ("0 0,1 29 2 *", "2028-02-29T00:00Z", 2, None),
            ("0 0,1 29 2 *", "2028-02-28T23:59Z", 2, 60),
            # ... a fire at the end does (2027-02-28 + 366 days is 2028-02-29).
            ("0 0,1 29 2 *", "2027-02-28T01:00Z", 2, 60),
            ("0 0,1 29 2 *", "2027-02-28T00:59Z", 2, None),
        ],
    )
    def test_table(
        self, expr: str, now: str, limit_hours: int, expected_minutes: int | None
    ) -> None:
        """The first gap under the limit in the year after now, on the UTC wall clock."""
        start = at(now)
        gap = first_gap_below(
            CronRule(expr), start, start + timedelta(days=366), timedelta(hours=limit_hours)
        )
        assert gap == (None if expected_minutes is None else timedelta(minutes=expected_minutes))

    def test_the_first_short_gap_in_time_not_the_smallest(self) -> None:
        """09:00, 11:00, 12:00: the 2 hours come before the 1 hour, as the walk met them."""
        rule = CronRule("0 9,11,12 * * *")
        start = at("2026-05-04T00:00Z")
        gap = first_gap_below(rule, start, start + timedelta(days=366), timedelta(hours=4))
        assert gap == timedelta(hours=2)

    def test_every_other_week_walks_the_fires(self) -> None:
        """A week cadence (never raw cron) is checked by walking: two weeks apart."""
        rule = CronRule("0 9 * * 1", every_weeks=2, anchor=date(2026, 5, 4))
        start = at("2026-05-01T00:00Z")
        end = start + timedelta(days=366)
        assert first_gap_below(rule, start, end, timedelta(days=14)) is None
        assert first_gap_below(rule, start, end, timedelta(days=15)) == timedelta(days=14)


class TestMinGap:
    @pytest.mark.parametrize(
        ("zone", "expr", "start", "hours", "expected_minutes"),
        [
            ("UTC", "0 * * * *", "2024-03-10T00:00Z", 24, 60),
            (NY, "0 * * * *", "2024-03-10T00:00Z", 24, 60),
            (NY, "30 * * * *", "2024-03-10T00:00Z", 24, 30),
            ("Australia/Lord_Howe", "0 * * * *", "2024-10-05T00:00Z", 24, 30),
            (NY, "*/15 2 * * *", "2024-03-09T00:00Z", 24, 15),
            (NY, "0 9 * * 1-5", "2024-03-04T00:00Z", 24 * 7, 24 * 60),
        ],
    )
    def test_table(
        self, zone: str, expr: str, start: str, hours: int, expected_minutes: int
    ) -> None:
        """The smallest interval between consecutive fires, DST collapses included."""
        gap = min_gap(CronRule(expr), ZoneInfo(zone), at(start), timedelta(hours=hours))
        assert gap == timedelta(minutes=expected_minutes)

    @pytest.mark.parametrize("hours", [0, 1, 12])
    def test_none_with_fewer_than_two_fires(self, hours: int) -> None:
        """Zero or one fire in the horizon has no gap."""
        rule = CronRule("0 9 * * *")
        assert (
            min_gap(rule, ZoneInfo("UTC"), at("2024-01-01T00:00Z"), timedelta(hours=hours)) is None
        )


class TestSpreadRule:
    YEAR = (at("2024-12-30T00:00Z"), at("2025-12-29T00:00Z"))  # ISO weeks 2025-W01..W52

    @pytest.mark.parametrize("n", range(1, 8))
    def test_n_distinct_days_in_every_iso_week_of_a_year(self, n: int) -> None:
        """Each ISO week has exactly N fires on N different local days."""
        tz = ZoneInfo("Europe/Berlin")
        days = [to_local(f, tz).date() for f in fires_between(spread(n), tz, *self.YEAR)]
        weeks = Counter(d.isocalendar()[:2] for d in days)
        assert len(weeks) == 52
        assert set(weeks.values()) == {n}
        assert len(set(days)) == len(days)

    def test_fires_inside_the_window(self) -> None:
        """Every local fire time is within [window_start, window_end)."""
        tz = ZoneInfo("Europe/Berlin")
        rule = spread(7, "12:00", "12:05")
        times = {to_local(f, tz).time() for f in fires_between(rule, tz, *self.YEAR)}
        assert times == {time(12, m) for m in range(5)}

    def test_same_seed_same_fires(self) -> None:
        """The plan is a function of seed and week only (no per-process hash salt)."""
        tz = ZoneInfo(NY)
        assert list(fires_between(spread(seed="a"), tz, *self.YEAR)) == list(
            fires_between(spread(seed="a"), tz, *self.YEAR)
        )

    def test_pinned_plan(self) -> None:
        """The blake2b derivation is part of the contract: changing it moves every couple."""
        fires = fires_between(
            spread(3, seed="couple-1/appreciation/partner-a"),
            ZoneInfo("UTC"),
            at("2024-01-01T00:00Z"),
            at("2024-01-15T00:00Z"),
        )
        assert [f.isoformat() for f in fires] == [
            "2024-01-01T17:21:00+00:00",
            "2024-01-02T13:01:00+00:00",
            "2024-01-04T19:03:00+00:00",
            "2024-01-08T15:10:00+00:00",
            "2024-01-09T18:18:00+00:00",
            "2024-01-13T14:44:00+00:00",
        ]

    def test_different_seeds_differ(self) -> None:
        """Two partners of the same couple get different plans."""
        tz = ZoneInfo(NY)
        a = list(fires_between(spread(seed="c1/appreciation/p1"), tz, *self.YEAR))
        b = list(fires_between(spread(seed="c1/appreciation/p2"), tz, *self.YEAR))
        assert a != b

    def test_days_and_minutes_change_week_to_week(self) -> None:
        """One seed does not repeat the same weekdays or minute every week."""
        tz = ZoneInfo("UTC")
        locals_ = [to_local(f, tz) for f in fires_between(spread(2), tz, *self.YEAR)]
        patterns = Counter(
            tuple(d.weekday() for d in locals_ if d.isocalendar()[:2] == week)
            for week in {d.isocalendar()[:2] for d in locals_}
        )
        assert len(patterns) > 10
        assert len({d.time() for d in locals_}) > 50

    def test_many_seeds_spread_over_the_window(self) -> None:
        """1000 couples' first fire lands on more than 300 of the window's 480 minutes."""
        tz, start = ZoneInfo("UTC"), at("2024-01-01T00:00Z")
        minutes = {
            next_fire(spread(1, seed=f"couple-{i}/appreciation/p"), tz, start) for i in range(1000)
        }
        assert len({m.time() for m in minutes if m is not None}) > 300

    def test_window_inside_a_gap_moves_to_the_transition(self) -> None:
        """A 02:00-03:00 window on the New York spring-forward day fires at 03:00 EDT."""
        tz = ZoneInfo(NY)
        fires = fires_between(
            spread(7, "02:00", "03:00"), tz, at("2024-03-10T05:00Z"), at("2024-03-10T12:00Z")
        )
        assert list(fires) == [at("2024-03-10T07:00Z")]

    def test_starting_mid_week_keeps_the_rest_of_that_week(self) -> None:
        """Resuming from any instant yields the same fires as a run from the week's start."""
        tz, rule = ZoneInfo(NY), spread(5)
        week = list(fires_between(rule, tz, at("2024-05-06T04:00Z"), at("2024-05-13T04:00Z")))
        for i, fire in enumerate(week):
            assert next_fire(rule, tz, fire - timedelta(minutes=1)) == fire
            later = week[i + 1] if i + 1 < len(week) else None
            if later is not None:
                assert next_fire(rule, tz, fire) == later
