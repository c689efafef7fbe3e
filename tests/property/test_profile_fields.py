"""The couple hash's profile fields as written reading each model's `__dict__` equal the plain
form reading attributes (couple_state.profile_fields, issue 20).

Models are built with `model_construct`, so every combination of fields is reached, refused
ones included; `encode_profile` is "id" then the same fields. The fast form relies on a
schema model's `__dict__` holding exactly its field values: a test holds that too.
"""

from __future__ import annotations

from datetime import time

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from benchmarks.burst import START
from benchmarks.harness import couple_event
from couples_nudge.common import couple_state as cs
from couples_nudge.common.check_in_format import check_in_format
from couples_nudge.common.couple_state import encode_profile, profile_fields
from couples_nudge_schemas import (
    AndroidDevice,
    CoupleContext,
    DailyCadence,
    IosDevice,
    MonthlyCadence,
    NudgePlan,
    Nudges,
    Partner,
    PreferencesSetData,
    PushSubscription,
    QuietHours,
    WeeklyCadence,
    parse_preference,
)


def plain_profile_fields(data: PreferencesSetData) -> dict[str, str]:
    """encode_profile's body before issue 20's pass (attribute reads), without "id"."""
    fields: dict[str, str] = {}
    for i, p in enumerate(data.partners):
        s, q, n, c = cs._PARTNER_FIELDS[i]
        fields[s] = f"{p.partner_id}|{p.timezone}"
        if (quiet := p.quiet_hours) is not None:
            fields[q] = cs._quiet_text(quiet.start, quiet.end, quiet.policy)
        fields[n] = p.name
        codes = cs._partner_codes(p.locale, tuple(p.channels), tuple(p.love_languages))
        fields[c] = f"{codes}{p.email or ''}"
        if p.push is not None:
            fields |= cs._push_fields(i, p.push)
        if p.devices:
            fields |= cs._device_fields(i, p.devices)
    date_night, check_in = data.nudges.date_night, data.nudges.check_in
    if date_night is not None and date_night.source != "catalog":
        fields["dn"] = date_night.source
    if check_in is not None and check_in.cadence.repeat == "daily":
        fields["ci"] = "daily"
    if data.listening:
        fields["ln"] = "1"
    if data.focus_areas or data.discreet:
        fields["f"] = cs._focus_text(tuple(data.focus_areas), data.discreet)
    fmt = check_in_format(check_in)
    context = cs._context_text(data.context, fmt) if data.context else cs._bare_context_text(fmt)
    if context:
        fields["x"] = context
    return fields


_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
_QUIET = st.builds(
    QuietHours.model_construct,
    start=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    end=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    policy=st.sampled_from(["defer", "drop"]),
)
_PUSH = st.builds(PushSubscription.model_construct, endpoint=_TEXT, p256dh=_TEXT, auth=_TEXT)
_DEVICE = st.one_of(
    st.builds(
        AndroidDevice.model_construct,
        platform=st.just("android"),
        token=st.text("abcXYZ019-_:", min_size=1, max_size=90),
        app_id=st.none() | st.just("org.app"),
    ),
    st.builds(
        IosDevice.model_construct,
        platform=st.just("ios"),
        token=st.text("0123456789abcdef", min_size=1, max_size=90),
        app_id=st.none() | st.just("org.app"),
    ),
)
_PARTNER = st.builds(
    Partner.model_construct,
    partner_id=st.sampled_from(["maya", "sam", "x.1"]),
    name=_TEXT,
    timezone=st.sampled_from(["Europe/Berlin", "Asia/Kolkata", "UTC"]),
    locale=st.sampled_from(["en", "de", "pt-BR"]),
    channels=st.lists(st.sampled_from(["email", "push", "webhook", "mobile"]), max_size=4),
    email=st.none() | _TEXT,
    push=st.none() | _PUSH,
    devices=st.lists(_DEVICE, max_size=3),
    love_languages=st.lists(st.sampled_from(sorted(cs._LOVE)), max_size=5),
    quiet_hours=st.none() | _QUIET,
)
_CADENCE = st.one_of(
    st.builds(DailyCadence.model_construct, repeat=st.just("daily"), at=st.just(time(9))),
    st.builds(WeeklyCadence.model_construct, repeat=st.just("weekly"), at=st.just(time(9))),
    st.builds(MonthlyCadence.model_construct, repeat=st.just("monthly"), at=st.just(time(9))),
)
_PLAN = st.none() | st.builds(
    NudgePlan.model_construct,
    cadence=_CADENCE,
    format=st.sampled_from([None, "monthly_guide", "question"]),
    source=st.sampled_from(["catalog", "jar", "mixed"]),
)
_CONTEXT = st.none() | st.builds(
    CoupleContext.model_construct,
    living=st.sampled_from([None, "together", "apart"]),
    budget=st.sampled_from([None, "free", "low", "any"]),
    avoid=st.lists(st.just("mobility"), max_size=1),
    children_at_home=st.sampled_from([None, True, False]),
)
_DATA = st.builds(
    PreferencesSetData.model_construct,
    couple_id=st.sampled_from(["c1", "c-2.x"]),
    revision=st.integers(0, 9),
    partners=st.tuples(_PARTNER, _PARTNER),
    nudges=st.builds(Nudges.model_construct, date_night=_PLAN, check_in=_PLAN, appreciation=_PLAN),
    focus_areas=st.lists(st.sampled_from(sorted(cs._FOCUS)), max_size=6, unique=True),
    discreet=st.booleans(),
    context=_CONTEXT,
    listening=st.booleans(),
)


class TestProfileFields:
    @settings(max_examples=300)
    @given(_DATA)
    def test_as_the_plain_form(self, data: PreferencesSetData) -> None:
        """Same fields, values and order as reading each model's attributes."""
        fields = profile_fields(data)
        assert list(fields.items()) == list(plain_profile_fields(data).items())
        assert list(encode_profile(data).items()) == [("id", data.couple_id), *fields.items()]


def _models(model: BaseModel) -> list[BaseModel]:
    """The model and every model in its fields (tuples and lists of models included)."""
    found = [model]
    for value in model.__dict__.values():
        for item in value if isinstance(value, tuple | list) else (value,):
            if isinstance(item, BaseModel):
                found += _models(item)
    return found


def test_dict_holds_exactly_the_fields() -> None:
    """Every model of a validated preferences.set forbids extras and holds each of its fields
    in its `__dict__` (defaults included): what `profile_fields` and `ShapePlanner.arms` read."""
    data = parse_preference(couple_event(3, mix="realistic", occurred=START)).data
    assert isinstance(data, PreferencesSetData)
    models = _models(data)
    assert {type(m) for m in models} >= {PreferencesSetData, Partner, QuietHours, NudgePlan}
    for model in models:
        assert type(model).model_config.get("extra") == "forbid"
        assert list(model.__dict__) == list(type(model).model_fields)
