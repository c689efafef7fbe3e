"""Specification of couples_nudge.scheduler.wallclock: wall-clock times <-> instants.

Tables read (zone, wall time, instant). Transitions used (tzdata as seen by zoneinfo):

* America/New_York 2024: 02:00 EST -> 03:00 EDT on Mar 10 (07:00Z),
  02:00 EDT -> 01:00 EST on Nov 3 (06:00Z).
* Europe/London 2024: 01:00 -> 02:00 on Mar 31, 02:00 -> 01:00 on Oct 27 (01:00Z).
* Australia/Lord_Howe 2024, a 30-minute shift: 02:00 -> 02:30 on Oct 6
  (Oct 5 15:30Z), 02:00 -> 01:30 on Apr 7 (Apr 6 15:00Z).
* America/Santiago 2024, at midnight: 00:00 -> 01:00 on Sep 8 (04:00Z),
  24:00 -> 23:00 on Apr 6 (Apr 7 03:00Z). America/Havana and Asia/Beirut
  also spring forward at 00:00 (Mar 10 and Mar 31).
* America/Nuuk 2024: Saturday 23:00 -> Sunday 00:00 on Mar 30/31 (01:00Z),
  a gap that straddles midnight.
* Pacific/Apia skipped all of 2011-12-30 (-10 -> +14 at Dec 30 10:00Z).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from couples_nudge.scheduler.wallclock import is_ambiguous, is_nonexistent, resolve, to_local

NY = "America/New_York"


def wall(text: str) -> datetime:
    """'2024-03-10 02:30' -> naive wall-clock datetime."""
    return datetime.fromisoformat(text)


def at(text: str) -> datetime:
    """'2024-03-10T07:00Z' -> aware UTC datetime."""
    return datetime.fromisoformat(text).astimezone(UTC)


class TestResolve:
    @pytest.mark.parametrize(
        ("zone", "local", "expected"),
        [
            ("UTC", "2024-06-01 12:00", "2024-06-01T12:00Z"),
            ("Asia/Kolkata", "2024-06-01 12:00", "2024-06-01T06:30Z"),
            (NY, "2024-01-15 09:00", "2024-01-15T14:00Z"),
            (NY, "2024-07-15 09:00", "2024-07-15T13:00Z"),
            (NY, "2024-03-10 01:59", "2024-03-10T06:59Z"),  # just before the gap
            (NY, "2024-03-10 03:00", "2024-03-10T07:00Z"),  # first wall time after it
            (NY, "2024-11-03 00:59", "2024-11-03T04:59Z"),  # just before the overlap
            (NY, "2024-11-03 02:00", "2024-11-03T07:00Z"),  # first wall time after it
        ],
    )
    def test_ordinary_times_use_the_zone_offset(self, zone: str, local: str, expected: str) -> None:
        """A wall time that exists once is that wall time at the zone's offset."""
        assert resolve(wall(local), ZoneInfo(zone)) == at(expected)

    @pytest.mark.parametrize(
        ("zone", "local", "expected"),
        [
            (NY, "2024-03-10 02:00", "2024-03-10T07:00Z"),
            (NY, "2024-03-10 02:30", "2024-03-10T07:00Z"),
            (NY, "2024-03-10 02:59", "2024-03-10T07:00Z"),
            ("America/St_Johns", "2024-03-10 02:30", "2024-03-10T05:30Z"),
            ("Europe/London", "2024-03-31 01:30", "2024-03-31T01:00Z"),
            ("Australia/Lord_Howe", "2024-10-06 02:15", "2024-10-05T15:30Z"),
            ("Pacific/Chatham", "2024-09-29 03:00", "2024-09-28T14:00Z"),
            ("America/Santiago", "2024-09-08 00:00", "2024-09-08T04:00Z"),
            ("America/Havana", "2024-03-10 00:00", "2024-03-10T05:00Z"),
            ("Asia/Beirut", "2024-03-31 00:30", "2024-03-30T22:00Z"),
            ("America/Nuuk", "2024-03-30 23:30", "2024-03-31T01:00Z"),  # Sunday 00:00 local
            ("Pacific/Apia", "2011-12-30 12:00", "2011-12-30T10:00Z"),  # Dec 31 00:00 local
        ],
    )
    def test_gap_times_resolve_to_the_transition_instant(
        self, zone: str, local: str, expected: str
    ) -> None:
        """A wall time inside a spring-forward gap is the first instant after the gap."""
        assert resolve(wall(local), ZoneInfo(zone)) == at(expected)

    @pytest.mark.parametrize(
        ("zone", "local", "expected"),
        [
            (NY, "2024-11-03 01:00", "2024-11-03T05:00Z"),
            (NY, "2024-11-03 01:30", "2024-11-03T05:30Z"),
            (NY, "2024-11-03 01:59", "2024-11-03T05:59Z"),
            ("Europe/London", "2024-10-27 01:30", "2024-10-27T00:30Z"),
            ("Australia/Lord_Howe", "2024-04-07 01:45", "2024-04-06T14:45Z"),
            ("America/Santiago", "2024-04-06 23:30", "2024-04-07T02:30Z"),
        ],
    )
    def test_overlap_times_resolve_to_the_first_occurrence(
        self, zone: str, local: str, expected: str
    ) -> None:
        """A wall time that happens twice is its first occurrence (fold=0)."""
        assert resolve(wall(local), ZoneInfo(zone)) == at(expected)

    def test_fold_of_the_argument_is_ignored(self) -> None:
        """Asking for the second pass (fold=1) still gives the first occurrence."""
        local = wall("2024-11-03 01:30").replace(fold=1)
        assert resolve(local, ZoneInfo(NY)) == at("2024-11-03T05:30Z")

    def test_result_is_aware_utc(self) -> None:
        """The instant carries datetime.UTC as its tzinfo."""
        assert resolve(wall("2024-03-10 02:30"), ZoneInfo(NY)).tzinfo is UTC

    def test_rejects_aware_input(self) -> None:
        """Only naive wall times can be resolved."""
        with pytest.raises(ValueError, match="must be naive"):
            resolve(at("2024-01-01T00:00Z"), ZoneInfo("UTC"))


class TestIsNonexistent:
    @pytest.mark.parametrize(
        ("zone", "local", "expected"),
        [
            (NY, "2024-03-10 01:59", False),
            (NY, "2024-03-10 02:00", True),
            (NY, "2024-03-10 02:59", True),
            (NY, "2024-03-10 03:00", False),
            (NY, "2024-11-03 01:30", False),
            ("Australia/Lord_Howe", "2024-10-06 02:29", True),
            ("Australia/Lord_Howe", "2024-10-06 02:30", False),
            ("America/Santiago", "2024-09-08 00:00", True),
            ("Asia/Kolkata", "2024-03-10 02:30", False),
        ],
    )
    def test_table(self, zone: str, local: str, expected: bool) -> None:
        """True exactly for wall times skipped by a spring-forward transition."""
        assert is_nonexistent(wall(local), ZoneInfo(zone)) is expected


class TestIsAmbiguous:
    @pytest.mark.parametrize(
        ("zone", "local", "expected"),
        [
            (NY, "2024-11-03 00:59", False),
            (NY, "2024-11-03 01:00", True),
            (NY, "2024-11-03 01:59", True),
            (NY, "2024-11-03 02:00", False),
            (NY, "2024-03-10 02:30", False),
            ("Australia/Lord_Howe", "2024-04-07 01:29", False),
            ("Australia/Lord_Howe", "2024-04-07 01:30", True),
            ("America/Santiago", "2024-04-06 23:00", True),
            ("America/Santiago", "2024-04-07 00:00", False),
            ("UTC", "2024-11-03 01:30", False),
        ],
    )
    def test_table(self, zone: str, local: str, expected: bool) -> None:
        """True exactly for wall times repeated by a fall-back transition."""
        assert is_ambiguous(wall(local), ZoneInfo(zone)) is expected


class TestToLocal:
    @pytest.mark.parametrize(
        ("zone", "instant", "expected"),
        [
            (NY, "2024-11-03T05:30Z", "2024-11-03 01:30"),  # first pass
            (NY, "2024-11-03T06:30Z", "2024-11-03 01:30"),  # second pass
            (NY, "2024-03-10T07:00Z", "2024-03-10 03:00"),
            ("Australia/Lord_Howe", "2024-10-05T15:30Z", "2024-10-06 02:30"),
            ("Asia/Kolkata", "2024-06-01T06:30Z", "2024-06-01 12:00"),
        ],
    )
    def test_table(self, zone: str, instant: str, expected: str) -> None:
        """The naive wall-clock reading of an instant in the zone."""
        assert to_local(at(instant), ZoneInfo(zone)) == wall(expected)

    def test_result_is_naive_first_fold(self) -> None:
        """The wall time comes back naive with fold=0, even for the second pass."""
        local = to_local(at("2024-11-03T06:30Z"), ZoneInfo(NY))
        assert (local.tzinfo, local.fold) == (None, 0)

    def test_accepts_any_aware_timezone(self) -> None:
        """An instant expressed in another zone converts the same as in UTC."""
        instant = at("2024-06-01T12:00Z").astimezone(ZoneInfo("Asia/Tokyo"))
        assert to_local(instant, ZoneInfo("Europe/London")) == wall("2024-06-01 13:00")

    def test_rejects_naive_input(self) -> None:
        """A naive datetime is not an instant."""
        with pytest.raises(ValueError, match="must be timezone-aware"):
            to_local(wall("2024-01-01 00:00"), ZoneInfo("UTC"))

    def test_round_trip_through_a_fall_back_day(self) -> None:
        """resolve(to_local(i)) is i, except the second pass maps back to the first."""
        tz = ZoneInfo(NY)
        second_pass = (at("2024-11-03T06:00Z"), at("2024-11-03T07:00Z"))
        for minute in range(5 * 60):
            instant = at("2024-11-03T03:00Z") + timedelta(minutes=minute)
            repeated = second_pass[0] <= instant < second_pass[1]
            expected = instant - timedelta(hours=1) if repeated else instant
            assert resolve(to_local(instant, tz), tz) == expected
