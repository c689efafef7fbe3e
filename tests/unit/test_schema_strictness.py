"""Strict means strict: the cases issue 15 found, refused by the models and by a standard JSON
Schema validator reading schemas/json alike."""

from __future__ import annotations

import copy
import json
import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import TypeAdapter

from couples_nudge_schemas import EventRejected, parse_due, parse_preference
from couples_nudge_schemas._base import EMAIL_PATTERN, NAME_PATTERN, Email, Name
from tests.support.events import example

REPO = Path(__file__).resolve().parents[2]
Json = dict[str, Any]
P0 = ("data", "partners", 0)
MONTHLY = ("data", "nudges", "check_in", "cadence")


def validator(stem: str) -> Draft202012Validator:
    schema = json.loads((REPO / "schemas/json" / f"{stem}.schema.json").read_text())
    return Draft202012Validator(schema)


PREFERENCES = validator("preference-event")
DUE = validator("nudge-due")


def changed(event: Json, path: tuple[str | int, ...], value: Any) -> Json:
    event = copy.deepcopy(event)
    target: Any = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return event


def due() -> Json:
    return {
        "type": "nudge.due.v1",
        "event_id": "0b6e2b1c-3c1e-4d4a-9f5e-1a2b3c4d5e6f",
        "occurred_at": "2026-12-01T10:00:00Z",
        "producer": "nudge-scheduler",
        "data": {
            "occurrence_id": "c1/c/both@1796000000",
            "couple_id": "c1",
            "schedule_id": "c1/c/both",
            "kind": "check_in",
            "recipients": ["lena", "jo"],
            "sequence": 0,
            "scheduled_at": "2026-12-01T10:00:00Z",
            "revision": 1,
        },
    }


def refusal(event: Json) -> str | None:
    try:
        parse_preference(json.dumps(event))
    except EventRejected as exc:
        return exc.reason
    return None


REFUSED: list[tuple[tuple[str | int, ...], Any, str]] = [
    *[
        ((*P0, "email"), f"a{c}b@example.test", "email: Value error, not an email address")
        for c in ("\x00", "\x01", "\x1b", "\x7f", "\x85", "\u2028", "\u202e", "\u200b", " ")
    ],
    *[
        ((*P0, "name"), f"Le{c}na", "name: Value error, control, invisible and line-separator")
        for c in ("\x00", "\n", "\x1b", "\x7f", "\x85", "\u2028", "\u2029", "\u202e", "\ufeff")
    ],
    ((*P0, "name"), "Lena\u00a0", "name: Value error, control, invisible"),
    *[
        ((*P0, "timezone"), zone, "timezone: Value error, not a canonical IANA time zone name")
        for zone in ("localtime", "posixrules", "Factory", "EST", "US/Eastern", "Etc/GMT+5", "GMT")
    ],
    *[
        ((*MONTHLY, "nth"), value, "nth: Value error, must be an integer")
        for value in (True, False)
    ],
    *[
        (("occurred_at",), value, "occurred_at: Value error, must be an ISO 8601 date and time")
        for value in (
            "1",
            "1700000000",
            "1.5",
            1,
            1.5,
            "2026-11-01",
            "2026-11-01 09:00:00+00:00",
            "2026-11-01_09:00:00Z",
            "2026-11-01T09:00:00",
            "2026-11-01T09:00:00+0100",
            "\uff12\uff10\uff12\uff16-11-01T09:00:00Z",  # full-width digits
        )
    ],
    ((*MONTHLY, "at"), "1900", "at: Value error, must be a local time as HH:MM"),
    (
        ("data", "nudges", "date_night", "cadence"),
        {"repeat": "weekly", "weekday": "fri", "at": "19:00", "every_weeks": 2, "anchor": "86400"},
        "anchor: Value error, must be a date as YYYY-MM-DD",
    ),
    ((*P0, "channels"), ["email", "email"], "channels: Value error, channels must not repeat"),
    ((*MONTHLY,), {"repeat": "cron", "cron": "0 9 * * 6\x1c"}, "cron: Value error, a cron"),
    (("producer",), "app é", "producer: String should match pattern"),
]


class TestRefused:
    @pytest.mark.parametrize(("path", "value", "reason"), REFUSED)
    def test_refused_with_a_clear_reason_and_by_the_json_schema(
        self, path: tuple[str | int, ...], value: Any, reason: str
    ) -> None:
        """Each loose case of issue 15 is refused, saying why; a JSON Schema validator agrees."""
        event = changed(example(), path, value)
        assert reason in (refusal(event) or "accepted")
        assert not PREFERENCES.is_valid(event)

    @pytest.mark.parametrize(
        ("path", "value", "reason"),
        [
            (("data", "recipients"), ["lena", "lena"], "recipients must not repeat"),
            (("data", "scheduled_at"), "1", "scheduled_at: Value error, must be an ISO 8601"),
            (("data", "note"), "late\x00", "note: String should match pattern"),
            (("data", "schedule_id"), "c1/c\n/both", "schedule_id: String should match pattern"),
        ],
    )
    def test_a_nudge_due_is_as_strict(
        self, path: tuple[str | int, ...], value: Any, reason: str
    ) -> None:
        """A NudgeDue naming a recipient twice is refused (it sent twice), and so on."""
        event = changed(due(), path, value)
        with pytest.raises(EventRejected) as caught:
            parse_due(json.dumps(event))
        assert reason in caught.value.reason
        assert not DUE.is_valid(event)


class TestWhereTheJsonSchemaCannotFollow:
    """Three known gaps, pinned so that a change is noticed: the models are stricter."""

    def test_a_well_formed_zone_missing_from_the_tz_database(self) -> None:
        """The schema's pattern checks a zone's form; only the service knows the tz database."""
        event = changed(example(), (*P0, "timezone"), "Europe/Atlantis")
        assert "timezone: Value error, unknown IANA time zone" in (refusal(event) or "")
        assert PREFERENCES.is_valid(event)

    def test_an_integer_written_as_a_float(self) -> None:
        """JSON Schema counts 1.0 as an integer; the strict models refuse it (nth, revision)."""
        event = changed(example(), (*MONTHLY, "nth"), 1.0)
        assert "nth: Value error, must be an integer" in (refusal(event) or "")
        assert PREFERENCES.is_valid(event)

    def test_a_trailing_newline_under_python_jsonschema(self) -> None:
        """python-jsonschema searches patterns with `re`, whose `$` matches before a final
        newline; ECMA-262 validators, like the models, refuse it."""
        event = changed(example(), (*P0, "name"), "Lena\n")
        assert "name: Value error, control" in (refusal(event) or "")
        assert PREFERENCES.is_valid(event)


ACCEPTED: list[tuple[tuple[str | int, ...], Any]] = [
    ((*P0, "name"), "Zoë"),
    ((*P0, "name"), "José María"),
    ((*P0, "name"), "فرزانه\u200cی"),  # Persian name with a zero-width non-joiner
    ((*P0, "name"), "👩\u200d💻 Lena"),  # an emoji sequence with a zero-width joiner
    ((*P0, "name"), "李小龍"),
    ((*P0, "email"), "zoë@exämple.test"),
    ((*P0, "timezone"), "UTC"),
    ((*P0, "timezone"), "America/Argentina/Buenos_Aires"),
    ((*P0, "timezone"), "America/Port-au-Prince"),
    ((*P0, "timezone"), "Asia/Calcutta"),
    (("occurred_at",), "2026-11-01T09:00Z"),
    (("occurred_at",), "2026-11-01t09:00:00.123456789+05:30"),
    (("occurred_at",), "2026-11-01T09:00:00-03:00"),
    ((*MONTHLY, "nth"), -1),
]


class TestAccepted:
    @pytest.mark.parametrize(("path", "value"), ACCEPTED)
    def test_real_names_zones_and_instants_still_pass(
        self, path: tuple[str | int, ...], value: Any
    ) -> None:
        """Letters of any script, joiners, canonical zones and offsets: accepted by both."""
        event = changed(example(), path, value)
        assert refusal(event) is None
        assert PREFERENCES.is_valid(event)


def _forbidden_in_names(code_point: int) -> bool:
    """The rule, from Unicode's own categories: controls, line and paragraph separators, and
    the BMP's invisible format characters except the zero-width (non-)joiners."""
    category = unicodedata.category(chr(code_point))
    if category in {"Cc", "Zl", "Zp"}:
        return True
    return category == "Cf" and code_point not in {0x200C, 0x200D}


# Format characters Unicode added after the Python running here knew them are tested by it.
_BMP = [c for c in range(0x10000) if not 0xD800 <= c <= 0xDFFF]


class TestEveryCharacter:
    def test_names_refuse_exactly_the_forbidden_characters(self) -> None:
        """For every BMP character inside a name: the model, the exported pattern (as a JSON
        Schema validator reads it) and Unicode's categories agree."""
        name: TypeAdapter[str] = TypeAdapter(Name)
        pattern = re.compile(NAME_PATTERN)
        disagreements = []
        for code_point in _BMP:
            text = f"A{chr(code_point)}B"
            try:
                name.validate_python(text)
                model = True
            except ValueError:
                model = False
            schema = pattern.search(text) is not None
            expected = not _forbidden_in_names(code_point)
            if not model == schema == expected:
                disagreements.append((hex(code_point), model, schema, expected))
        print(f"\n{len(_BMP)} characters checked in names (Unicode {unicodedata.unidata_version})")
        assert disagreements == []

    def test_addresses_refuse_controls_spaces_and_invisible_characters(self) -> None:
        """For every BMP character inside an address: the model and the exported pattern
        agree, and neither lets a control, separator, space or invisible character in."""
        email: TypeAdapter[str] = TypeAdapter(Email)
        pattern = re.compile(EMAIL_PATTERN)
        disagreements, leaks = [], []
        for code_point in _BMP:
            text = f"a{chr(code_point)}b@example.test"
            try:
                email.validate_python(text)
                model = True
            except ValueError:
                model = False
            if model != (pattern.search(text) is not None):
                disagreements.append(hex(code_point))
            if model and (_forbidden_in_names(code_point) or chr(code_point).isspace()):
                leaks.append(hex(code_point))
        assert disagreements == []
        assert leaks == []
