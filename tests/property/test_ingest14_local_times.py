"""A LocalTime read from JSON is a dict lookup; it accepts and refuses what the pattern did.

`_LocalTimes` maps exactly the texts LOCAL_TIME_PATTERN admits to their times (issue 20:
no regex, parser or Python frame per value). These hold it to the pattern and the parser it
replaced: the same keys as the pattern's matches, the same times as pydantic's own reading,
and the same outcome (value, or errors with their types, messages and locations) for any JSON
value, as the LocalTime written without the lookup gives.
"""

from __future__ import annotations

import itertools
import json
import re
import warnings
from datetime import time
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from couples_nudge_schemas._base import (
    LOCAL_TIME_PATTERN,
    Checked,
    LocalTime,
    _check_local_time,
    _LocalTimes,
)

_PATTERN = re.compile(LOCAL_TIME_PATTERN)
_WITH_LOOKUP: TypeAdapter[time] = TypeAdapter(LocalTime)
# LocalTime as it was before the lookup: the pattern, then pydantic's time parser.
_PLAIN: TypeAdapter[time] = TypeAdapter(
    Annotated[
        time,
        Checked(
            LOCAL_TIME_PATTERN,
            "must be a local time as HH:MM, minute precision (no UTC offset: the partner's "
            "zone applies)",
            raw_text=True,
            drop_format=True,
            python_after=_check_local_time,
        ),
    ]
)


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    """The errors, a ValueError in their context as its text (exceptions compare by id)."""
    return [
        {**e, "ctx": {k: str(v) for k, v in e["ctx"].items()}} if "ctx" in e else dict(e)
        for e in exc.errors(include_url=False)
    ]


def _outcome(adapter: TypeAdapter[time], raw: Any, *, python: bool = False) -> Any:
    try:
        return adapter.validate_python(raw) if python else adapter.validate_json(raw)
    except ValidationError as exc:
        return _errors(exc)


def _loaded() -> _LocalTimes:
    times = _LocalTimes()
    with pytest.raises(ValueError, match="not a local time"):
        times["not a time"]  # the first miss fills it
    return times


class TestKeys:
    def test_exactly_the_texts_the_pattern_admits(self) -> None:
        digits = "0123456789"
        candidates = (
            "".join(chars)
            for shape in ("dd:dd", "dd:dd:dd")
            for chars in itertools.product(*(digits if c == "d" else ":" for c in shape))
        )
        admitted = {text for text in candidates if _PATTERN.fullmatch(text)}
        assert set(_loaded()) == admitted
        assert len(admitted) == 2880

    def test_the_same_times_as_the_parser(self) -> None:
        for text, value in _loaded().items():
            assert _PLAIN.validate_json(json.dumps(text)) == value
            assert value.tzinfo is None

    def test_filled_on_the_first_miss_only(self) -> None:
        times = _LocalTimes()
        assert not times.loaded
        assert times["07:30"] == time(7, 30)
        assert times.loaded
        assert len(times) == 2880
        with pytest.raises(ValueError, match="not a local time"):
            times["24:00"]
        assert len(times) == 2880  # a refused text is never stored


_NEAR_MISSES = st.sampled_from(
    [
        "09:00",
        "9:00",
        "09:0",
        "24:00",
        "23:60",
        "09:00:00",
        "09:00:01",
        "09:00:00.000",
        "09:00Z",
        "09:00+01:00",
        " 09:00",
        "09:00 ",
        "09:00\n",
        "\u0669\u0669:\u0660\u0660",
        "0900",
        "",
        "T09:00",
    ]
)
_JSON_VALUES = (
    _NEAR_MISSES
    | st.text(alphabet="0123456789:.+-Z ", max_size=9)
    | st.text(max_size=8)
    | st.integers()
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.none()
    | st.lists(st.just("09:00"), max_size=2)
    | st.just({"at": "09:00"})
)


class TestSameOutcome:
    @settings(max_examples=1500, deadline=None)
    @given(_JSON_VALUES)
    def test_as_without_the_lookup(self, value: Any) -> None:
        raw = json.dumps(value)
        assert _outcome(_WITH_LOOKUP, raw) == _outcome(_PLAIN, raw)

    def test_every_admitted_text(self) -> None:
        for text in _loaded():
            raw = json.dumps(text)
            assert _outcome(_WITH_LOOKUP, raw) == _outcome(_PLAIN, raw)

    def test_python_values_unchanged(self) -> None:
        for value in (time(9, 0), time(9, 0, 30), "09:00", "09:00:30", 5, None):
            got = _outcome(_WITH_LOOKUP, value, python=True)
            assert got == _outcome(_PLAIN, value, python=True)

    def test_json_schema_unchanged(self) -> None:
        assert _WITH_LOOKUP.json_schema() == _PLAIN.json_schema()

    def test_serialised_as_before(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # pydantic warns when a serialiser meets another type
            for text in ("09:00", "23:59:00"):
                raw = json.dumps(text)
                new, old = _WITH_LOOKUP.validate_json(raw), _PLAIN.validate_json(raw)
                assert _WITH_LOOKUP.dump_json(new) == _PLAIN.dump_json(old)
                assert _WITH_LOOKUP.dump_python(new, mode="json") == _PLAIN.dump_python(
                    old, mode="json"
                )
                assert _WITH_LOOKUP.dump_python(new) == _PLAIN.dump_python(old)
        assert _WITH_LOOKUP.json_schema(mode="serialization") == _PLAIN.json_schema(
            mode="serialization"
        )
