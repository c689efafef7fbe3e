"""parse_couple equals its form before issue 20's pass on the notifier's parse (the reference:
tests/support/couple_parse_reference.py) for every couple hash: the same CoupleState, each
model of the profile of the same class with the same field values, fields set, extras and
private values, on a first and a second parse of the same hash (the profile cache's miss and
hit until h/notify9 dropped that cache); an error where the reference raises one.

Hashes: generated profiles (every combination of fields, as tests/property/test_profile_fields.py
makes them) as the scheduler writes them, with or without some profile fields, plus schedule
records, pauses, consents, dead marks, snoozes and levels; and the layout before issue 7
(profile JSON and "sids").
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from benchmarks.burst import START
from benchmarks.harness import couple_event
from couples_nudge.common import couple_state as cs
from couples_nudge.common.couple_state import CoupleState, encode_profile, parse_couple
from couples_nudge_schemas import Partner, PreferencesSetData, parse_preference
from tests.property.test_profile_fields import _DATA
from tests.support.couple_parse_reference import reference_parse_couple

_EXTRA_NAMES = st.sampled_from(
    [
        "pause",
        "pause:maya",
        "unsub:sam:all:email",
        "unsub:maya:date_night:push",
        "dead:maya:email",
        "dead:sam:mobile:0123456789abcdef",
        "soft:sam:email",
        "snz:maya:check_in",
        "lvl:sam:date_night",
        "dn",
        "ci",
        "d/maya",
        "c/sam",
        "a/couple",
        "w0.00",
        "m1.000",
        "mx",
        "weird",
    ]
)
_VALUES = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20)
_DROPPABLE = st.sets(st.sampled_from(["rev", "id", "s0", "s1", "n0", "n1", "c0", "c1", "x"]))


def _same(a: Any, b: Any) -> None:
    """The same value: models of the same class with the same state, deeply."""
    assert type(a) is type(b)
    if isinstance(a, BaseModel):
        assert a.__pydantic_fields_set__ == b.__pydantic_fields_set__
        assert type(a.__pydantic_fields_set__) is type(b.__pydantic_fields_set__)
        assert a.__pydantic_extra__ == b.__pydantic_extra__
        assert a.__pydantic_private__ == b.__pydantic_private__
        assert list(a.__dict__) == list(b.__dict__)
        for key, value in a.__dict__.items():
            _same(value, b.__dict__[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _same(x, y)
    else:
        assert a == b


def _check(raw: dict[bytes, bytes]) -> None:
    try:
        expected: CoupleState | None = reference_parse_couple(raw)
        error: type[BaseException] | None = None
    except Exception as e:  # the reference's error is the answer to match
        expected, error = None, type(e)
    for _ in range(2):  # twice: a parse leaves nothing behind that changes the next
        if error is not None:
            try:
                parse_couple(raw)
            except error:
                continue
            raise AssertionError(f"parse_couple did not raise {error}")
        got = parse_couple(raw)
        assert expected is not None
        assert got == expected
        _same(got.profile, expected.profile)
        assert list(got.fields.items()) == list(expected.fields.items())
        assert list(got.records.items()) == list(expected.records.items())
        assert got.check_in_format == expected.check_in_format


class TestParseCouple:
    @settings(max_examples=400)
    @given(
        _DATA,
        _DROPPABLE,
        st.lists(st.tuples(_EXTRA_NAMES, _VALUES), max_size=6),
        st.booleans(),
        st.booleans(),
    )
    def test_as_the_reference(
        self,
        data: PreferencesSetData,
        dropped: set[str],
        extra: list[tuple[str, str]],
        drop: bool,
        shuffle: bool,
    ) -> None:
        fields = {"rev": str(data.revision), **encode_profile(data)}
        if drop:
            for name in dropped:
                fields.pop(name, None)
        fields |= dict(extra)
        items = list(fields.items())
        if shuffle:
            items.reverse()  # Redis's order is the hash's, not the writer's
        _check({k.encode(): v.encode() for k, v in items})

    @settings(max_examples=100)
    @given(
        st.integers(0, 400),
        st.sampled_from(["realistic", "burst"]),
        st.lists(st.tuples(_EXTRA_NAMES, _VALUES), max_size=4),
    )
    def test_scenario_couples(
        self, i: int, mix: Literal["burst", "realistic"], extra: list[tuple[str, str]]
    ) -> None:
        """The benchmarks' couples, as written, with and without other fields."""
        data = parse_preference(couple_event(i, mix=mix, occurred=START)).data
        assert isinstance(data, PreferencesSetData)
        fields = {"rev": str(data.revision), **encode_profile(data), **dict(extra)}
        _check({k.encode(): v.encode() for k, v in fields.items()})

    @settings(max_examples=100)
    @given(
        st.integers(0, 400),
        st.sampled_from(["realistic", "burst"]),
        st.lists(st.tuples(_EXTRA_NAMES, _VALUES), max_size=4),
    )
    def test_legacy_profile_json(
        self, i: int, mix: Literal["burst", "realistic"], extra: list[tuple[str, str]]
    ) -> None:
        """The layout before issue 7: the profile as JSON, the schedule ids in "sids"."""
        data = parse_preference(couple_event(i, mix=mix, occurred=START)).data
        assert isinstance(data, PreferencesSetData)
        fields = {
            "rev": str(data.revision),
            **dict(extra),
            "profile": data.model_dump_json(exclude_defaults=True),
            "sids": f"{data.couple_id}/d/x",
        }
        _check({k.encode(): v.encode() for k, v in fields.items()})


def test_every_parse_builds_its_own_profile() -> None:
    """Neither the reference nor parse_couple caches the profile (h/notify9): each parse
    builds models of its own, none shared with an earlier parse."""
    data = parse_preference(couple_event(1, mix="burst", occurred=START)).data
    assert isinstance(data, PreferencesSetData)
    raw = {b"rev": b"1", **{k.encode(): v.encode() for k, v in encode_profile(data).items()}}
    first, second = reference_parse_couple(raw), reference_parse_couple(raw)
    assert first.profile is not second.profile
    mine, again = cs.parse_couple(raw).profile, cs.parse_couple(raw).profile
    assert mine is not None
    assert again is not None
    assert mine is not again
    assert mine.partners[0] is not again.partners[0]
    assert mine == again


def test_the_fields_set_are_every_field() -> None:
    """A parsed profile gives every field of its models: their fields set are all of them."""
    assert set(Partner.model_fields) == cs._PARTNER_FIELDS_SET
    assert set(PreferencesSetData.model_fields) == cs._DATA_FIELDS_SET


def test_the_state_slots_are_its_fields() -> None:
    """`_state` sets one slot a dataclass field: the slots are exactly the fields."""
    assert CoupleState.__slots__ == tuple(f.name for f in dataclasses.fields(CoupleState))


def test_a_models_state_is_four_slots() -> None:
    """`_trusted`, `_partner` and `_profile` set a model's state through BaseModel's slots."""
    assert BaseModel.__slots__ == (
        "__dict__",
        "__pydantic_fields_set__",
        "__pydantic_extra__",
        "__pydantic_private__",
    )
