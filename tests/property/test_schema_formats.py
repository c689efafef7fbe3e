"""The exported JSON Schema of each textual value (instants, local times, dates, event ids)
admits exactly what the service's models admit.

Two properties per value type: every string the exported pattern generates is accepted by the
model and by a standard validator asserting formats (so pattern, format and parser agree on
all of it); and for strings drawn around the edges (hour 24, minute 60, 30 February, 29
February of 1900 and 2000, offsets without a colon, seconds, fractions of ten digits, UUIDs in
braces...), the model accepts exactly when the schema does.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import TypeAdapter, ValidationError

from couples_nudge_schemas._base import EventId, Instant, LocalDate, LocalTime

TYPES: dict[str, Any] = {
    "instant": Instant,
    "local time": LocalTime,
    "date": LocalDate,
    "event id": EventId,
}


def _two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


_YEARS = st.one_of(st.integers(0, 9999), st.sampled_from([1900, 2000, 2024, 2026, 2100, 2400])).map(
    lambda n: f"{n:04d}"
)
_DATES = st.builds(lambda y, m, d: f"{y}-{m}-{d}", _YEARS, _two(0, 13), _two(0, 32))
_CLOCK = st.builds(lambda h, m: f"{h}:{m}", _two(0, 25), _two(0, 61))
_SECONDS = st.one_of(
    st.just(""),
    _two(0, 61).map(lambda s: f":{s}"),
    st.builds(
        lambda s, f: f":{s}{f}", _two(0, 60), st.from_regex(r"[.,][0-9]{0,11}", fullmatch=True)
    ),
)
_OFFSETS = st.one_of(
    st.sampled_from(["Z", "z", "", "+0100", "+01", "-00:00"]),
    st.builds(lambda sign, h, m: f"{sign}{h}:{m}", st.sampled_from("+-"), _two(0, 25), _two(0, 61)),
)
EDGES: dict[str, st.SearchStrategy[str]] = {
    "instant": st.builds(
        lambda d, sep, t, s, o: f"{d}{sep}{t}{s}{o}",
        _DATES, st.sampled_from(["T", "t", " ", "_"]), _CLOCK, _SECONDS, _OFFSETS,
    ),
    "local time": st.builds(
        lambda t, s, o: f"{t}{s}{o}",
        _CLOCK,
        st.sampled_from(["", ":00", ":30", ":60", ".5"]),
        st.sampled_from(["", "Z", "+01:00"]),
    ),
    "date": _DATES,
    "event id": st.builds(
        lambda u, form: form.format(u=u, h=u.replace("-", ""), U=u.upper()),
        st.uuids().map(str),
        st.sampled_from(["{u}", "{U}", "{h}", "urn:uuid:{u}", "{{{u}}}", "{u}0", "{h}-", " {u}"]),
    ),
}  # fmt: skip


def service_accepts(name: str, text: str) -> bool:
    try:
        TypeAdapter(TYPES[name]).validate_json(json.dumps(text))
    except ValidationError:
        return False
    return True


def exported(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(TYPES[name]).json_schema()
    return schema


def schema_accepts(name: str, text: str) -> bool:
    return Draft202012Validator(exported(name), format_checker=FormatChecker()).is_valid(text)


def from_pattern(name: str) -> st.SearchStrategy[str]:
    return st.from_regex(re.compile(exported(name)["pattern"]), fullmatch=True)


class TestExportedFormats:
    @pytest.mark.parametrize("name", sorted(TYPES))
    @settings(max_examples=300, deadline=None)
    @given(data=st.data())
    def test_everything_the_pattern_admits_is_accepted(
        self, name: str, data: st.DataObject
    ) -> None:
        """A string the exported pattern generates passes the model and the schema's format."""
        text = data.draw(from_pattern(name))
        assert service_accepts(name, text), text
        assert schema_accepts(name, text), text

    @pytest.mark.parametrize("name", sorted(TYPES))
    @settings(max_examples=500, deadline=None)
    @given(data=st.data())
    def test_model_and_schema_agree_at_the_edges(self, name: str, data: st.DataObject) -> None:
        """Around every boundary, the model accepts a string exactly when the schema does."""
        text = data.draw(EDGES[name])
        assert service_accepts(name, text) == schema_accepts(name, text), text

    def test_formats_kept_are_the_ones_that_agree(self) -> None:
        """`date` and `uuid` stay (every pattern match is one); `time` (RFC 3339 full-time,
        offset required) and `date-time` (seconds required) are dropped: they refuse what the
        service accepts, '22:00' and '2026-11-01T09:00Z'."""
        assert {name: exported(name).get("format") for name in TYPES} == {
            "instant": None,
            "local time": None,
            "date": "date",
            "event id": "uuid",
        }
        checker = FormatChecker()
        assert not checker.conforms("22:00", "time")
        assert "date-time" in checker.checkers, "install rfc3339-validator (dev extra)"
        assert not checker.conforms("2026-11-01T09:00Z", "date-time")
        assert service_accepts("local time", "22:00")
        assert service_accepts("instant", "2026-11-01T09:00Z")
