"""The preference models' cross-field checks refuse exactly what they refused written plainly.

The checks run once per model of every preferences.set (issue 20), so they read each field
once, skip the device-token set when there are no devices and the uniqueness set for a list of
one. For any field values (models built without validation, so that every combination is
reached), each check raises the same message as the plain form, or passes where it passed.
The zone check, a dict's own lookup, refuses exactly the names the tz database lacks.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from typing import Annotated, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError

from couples_nudge_schemas import (
    AndroidDevice,
    IosDevice,
    MonthlyCadence,
    NudgePlan,
    Nudges,
    Partner,
    PreferencesSetData,
    PushSubscription,
)
from couples_nudge_schemas._base import Unique, _check_zone, _KnownZones


def _made(model: type[BaseModel], **fields: Any) -> Any:
    """A model holding `fields` as given, not validated (its checks are what is tested)."""
    return model.model_construct(**fields)


_IDS = st.sampled_from(["maya", "sam", "lee"])
_OPTIONAL_ID = st.none() | _IDS
_PUSH = _made(PushSubscription, endpoint="https://push.test/1", p256dh="k", auth="a")
_TOKENS = st.sampled_from(["a" * 64, "A" * 64, "b" * 64, "tokentokentoken1"])
_DEVICES = st.lists(
    st.one_of(
        _TOKENS.map(lambda t: _made(AndroidDevice, platform="android", token=t)),
        _TOKENS.map(lambda t: _made(IosDevice, platform="ios", token=t)),
    ),
    max_size=3,
)


def _check(model: type[BaseModel], name: str) -> Callable[[Any], Any]:
    """The model validator as pydantic-core calls it."""
    check: Callable[[Any], Any] = model.__pydantic_decorators__.model_validators[name].func
    return check


def _message(check: Callable[[Any], Any], model: Any) -> str | None:
    try:
        check(model)
    except ValueError as exc:
        return str(exc)
    return None


def _plain_addresses(p: Partner) -> None:
    if "email" in p.channels and p.email is None:
        raise ValueError("channel 'email' needs an email address")
    if "push" in p.channels and p.push is None:
        raise ValueError("channel 'push' needs a push subscription")
    if "mobile" in p.channels and not p.devices:
        raise ValueError("channel 'mobile' needs at least one device")
    tokens = {d.token.lower() if d.platform == "ios" else d.token for d in p.devices}
    if len(tokens) != len(p.devices):
        raise ValueError("a device token must not repeat")


def _plain_references(data: PreferencesSetData) -> None:
    ids = {p.partner_id for p in data.partners}
    if len(ids) != 2:
        raise ValueError("the two partners need distinct partner_id values")
    for kind in ("date_night", "check_in", "appreciation"):
        plan: NudgePlan | None = getattr(data.nudges, kind)
        if plan is None:
            continue
        for ref in (plan.partner_id, plan.timezone_of):
            if ref is not None and ref not in ids:
                raise ValueError(f"nudges.{kind} names unknown partner {ref!r}")
        if plan.source != "catalog" and kind != "date_night":
            raise ValueError(f"nudges.{kind}: only date nights draw from the date jar")
        if plan.format is not None and kind != "check_in":
            raise ValueError(f"nudges.{kind}.format is for check-ins only")


def _plain_one_form(c: MonthlyCadence) -> None:
    by_weekday = c.weekday is not None and c.nth is not None
    if by_weekday == (c.day is not None) or (c.weekday is None) != (c.nth is None):
        raise ValueError("give either weekday and nth, or day")


_PLANS = st.none() | st.builds(
    lambda partner_id, zone_of, source, fmt: _made(
        NudgePlan, partner_id=partner_id, timezone_of=zone_of, source=source, format=fmt
    ),
    _OPTIONAL_ID,
    _OPTIONAL_ID,
    st.sampled_from(["catalog", "jar", "mixed"]),
    st.sampled_from([None, "monthly_guide", "question"]),
)


class TestPartnerAddresses:
    """Partner._channels_have_addresses against the plain form."""

    @settings(max_examples=400, deadline=None)
    @given(
        channels=st.lists(st.sampled_from(["email", "push", "webhook", "mobile"]), max_size=4),
        email=st.none() | st.just("a@b.test"),
        push=st.none() | st.just(_PUSH),
        devices=_DEVICES,
    )
    def test_same_refusals(
        self, channels: list[str], email: str | None, push: Any, devices: list[Any]
    ) -> None:
        partner = _made(Partner, channels=channels, email=email, push=push, devices=devices)
        expected = _message(_plain_addresses, partner)
        assert _message(_check(Partner, "_channels_have_addresses"), partner) == expected


class TestReferences:
    """PreferencesSetData._references_resolve against the plain form."""

    @settings(max_examples=600, deadline=None)
    @given(a=_IDS, b=_IDS, date_night=_PLANS, check_in=_PLANS, appreciation=_PLANS)
    def test_same_refusals(
        self, a: str, b: str, date_night: Any, check_in: Any, appreciation: Any
    ) -> None:
        data = _made(
            PreferencesSetData,
            partners=(_made(Partner, partner_id=a), _made(Partner, partner_id=b)),
            nudges=_made(
                Nudges, date_night=date_night, check_in=check_in, appreciation=appreciation
            ),
        )
        expected = _message(_plain_references, data)
        assert _message(_check(PreferencesSetData, "_references_resolve"), data) == expected


class TestMonthlyForm:
    """MonthlyCadence._one_form against the plain form."""

    @settings(max_examples=200, deadline=None)
    @given(
        weekday=st.none() | st.just("mon"),
        nth=st.none() | st.sampled_from([1, -1]),
        day=st.none() | st.just(3),
    )
    def test_same_refusals(self, weekday: str | None, nth: int | None, day: int | None) -> None:
        cadence = _made(MonthlyCadence, weekday=weekday, nth=nth, day=day)
        expected = _message(_plain_one_form, cadence)
        assert _message(_check(MonthlyCadence, "_one_form"), cadence) == expected


_UNIQUE: TypeAdapter[list[str]] = TypeAdapter(Annotated[list[str], Unique("must not repeat")])


class TestUnique:
    """Unique refuses a list exactly when its items repeat (lists of one skip the set)."""

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=5))
    def test_refuses_repeats_only(self, items: list[str]) -> None:
        if len(set(items)) == len(items):
            assert _UNIQUE.validate_python(items) == items
        else:
            with pytest.raises(ValidationError, match="must not repeat"):
                _UNIQUE.validate_python(items)


_ZONES = sorted(zoneinfo.available_timezones())


def _plain_zone(name: str) -> str:
    if name not in zoneinfo.available_timezones():
        raise ValueError("unknown IANA time zone")
    return name


class TestZoneCheck:
    """The zone check (`_KnownZones.__getitem__`) against the plain set test it replaced."""

    @settings(max_examples=400, deadline=None)
    @given(
        st.sampled_from(_ZONES)
        | st.sampled_from(_ZONES).map(str.lower)
        | st.sampled_from(_ZONES).map(lambda zone: zone + "x")
        | st.text(max_size=20)
    )
    def test_same_answers(self, name: str) -> None:
        assert _message(_check_zone, name) == _message(_plain_zone, name)
        if _message(_plain_zone, name) is None:
            assert _check_zone(name) == name

    def test_the_tz_database_is_read_on_the_first_miss(self) -> None:
        zones = _KnownZones()
        assert not zones.loaded
        assert zones["Europe/Berlin"] == "Europe/Berlin"
        assert zones.loaded
        with pytest.raises(ValueError, match="unknown IANA time zone"):
            zones["Europe/Nowhere"]
        fresh = _KnownZones()
        with pytest.raises(ValueError, match="unknown IANA time zone"):
            fresh["Europe/Nowhere"]
        assert fresh.loaded
