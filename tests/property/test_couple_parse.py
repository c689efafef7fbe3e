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

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from benchmarks.burst import START
from benchmarks.callgrind_couple import hashes
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


def test_parsed_models_share_one_fields_set_left_whole() -> None:
    """Every parsed Partner and profile holds its class's one shared fields set (`_trusted`),
    equal to every field; `model_copy(update=...)` changes a copy, never the shared set; the
    frozen models refuse the one change pydantic makes in place (`__setattr__`'s add)."""
    raws = hashes(3)
    parsed = [parse_couple(raw).profile for raw in raws]
    for profile in parsed:
        assert profile is not None
        assert profile.model_fields_set is cs._DATA_SHARED_FIELDS
        for partner in profile.partners:
            assert partner.model_fields_set is cs._PARTNER_SHARED_FIELDS
    first = parsed[0]
    assert first is not None
    copied = first.partners[0].model_copy(update={"locale": "de"})
    assert copied.model_fields_set is not cs._PARTNER_SHARED_FIELDS
    with pytest.raises(ValidationError):
        first.partners[0].locale = "fr"  # type: ignore[misc]
    assert set(Partner.model_fields) == cs._PARTNER_SHARED_FIELDS
    assert set(PreferencesSetData.model_fields) == cs._DATA_SHARED_FIELDS


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


_PARTNERS = st.sampled_from(["maya", "sam", "kim", "x"])
_KINDS = st.sampled_from(["date_night", "check_in", "all", "gratitude"])
_CHANNELS = st.sampled_from(["email", "push", "webhook", "mobile", "all"])
_REFS = st.sampled_from(["0123456789abcdef", "fedcba9876543210"])
_NOW_MS = st.integers(0, 4_000_000_000_000)
_MARK_NAMES = st.one_of(
    _EXTRA_NAMES,
    st.builds(
        "{}:{}".format,
        st.sampled_from(["pause", "snz", "dead", "unsub", "soft", "lvl"]),
        st.builds(
            ":".join,
            st.lists(st.one_of(_PARTNERS, _KINDS, _CHANNELS, _REFS), min_size=1, max_size=3),
        ),
    ),
)
_MARK_VALUES = st.one_of(
    _VALUES,
    st.builds(
        "{}|{}".format,
        st.integers(0, 4_000_000_000_000),
        st.one_of(st.integers(0, 4_000_000_000_000), st.sampled_from(["inf", "off", "1", "0"])),
    ),
)


class TestConsentMarks:
    """`CoupleState.consent_marks` (the delivery's fast path): False exactly when no field
    name starts with a consent mark's prefix, and then every check it lets the delivery skip
    answers False, as the full check does, for any partner, kind, channel, device and
    instant; the full checks themselves unchanged (a hash with marks is asked as before)."""

    @settings(max_examples=400)
    @given(
        _DATA,
        st.lists(st.tuples(_MARK_NAMES, _MARK_VALUES), max_size=6),
        st.lists(st.tuples(_PARTNERS, _KINDS, _CHANNELS, _REFS, _NOW_MS), min_size=1, max_size=8),
        st.booleans(),
    )
    def test_no_mark_means_every_check_is_false(
        self,
        data: PreferencesSetData,
        extra: list[tuple[str, str]],
        asks: list[tuple[str, str, str, str, int]],
        drop_id: bool,
    ) -> None:
        fields = {"rev": str(data.revision), **encode_profile(data), **dict(extra)}
        if drop_id:
            fields.pop("id")
        try:
            state = parse_couple({k.encode(): v.encode() for k, v in fields.items()})
        except ValueError:  # a piece of a push subscription or device list that is not one
            assume(False)
        prefixes = ("pause", "unsub:", "dead:", "snz:")
        assert state.consent_marks == any(name.startswith(prefixes) for name in state.fields)
        partners = [p.partner_id for p in data.partners]
        if state.consent_marks:
            return  # the delivery asks every check, as before
        for partner, kind, channel, ref, now_ms in asks:
            for who in (partner, *partners):
                full = (
                    state.paused(who, now_ms),
                    state.snoozed(who, kind, now_ms),
                    state.unsubscribed(who, kind, channel),
                    state.channel_dead(who, channel),
                    state.device_dead(who, ref),
                )
                assert full == (False, False, False, False, False)

    def test_marks_are_found(self) -> None:
        """Each mark's field sets the flag; others do not (checked to fail with a prefix
        left out of `_MARKS`)."""
        data = parse_preference(couple_event(1, mix="burst", occurred=START)).data
        assert isinstance(data, PreferencesSetData)
        base = {"rev": str(data.revision), **encode_profile(data), "d/x": "0|1|00|e0 19 * * 5"}
        raw = {k.encode(): v.encode() for k, v in base.items()}
        assert not parse_couple(raw).consent_marks
        for name in ("dn", "ci", "soft:maya:email", "lvl:maya:check_in", "weird"):
            assert not parse_couple(raw | {name.encode(): b"1"}).consent_marks
        for name in ("pause", "pause:maya", "unsub:maya:all:all", "dead:maya:email", "snz:a:b"):
            assert parse_couple(raw | {name.encode(): b"1|inf"}).consent_marks

    def test_a_state_made_by_hand_asks_every_check(self) -> None:
        assert CoupleState(None, {}).consent_marks
        assert CoupleState(None, {"rev": "1"}) == parse_couple({b"rev": b"1"})
