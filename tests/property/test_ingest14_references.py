"""`_references_resolve` skips a plan whose input named none of the fields it checks (issue 20).

A plan's `partner_id`, `timezone_of`, `source` and `format` pass every check at their defaults,
and a field absent from a plan's input holds its default, so a plan whose fields set
(`__pydantic_fields_set__`) names none of them is passed over. These hold that shortcut to the
plain form: for plans with each of the four fields absent, given at its default or given
another value, the check refuses with the same message; and whole events, validated from JSON,
give the same outcome and reason as the plain check applied to what they hold.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from couples_nudge_schemas import (
    EventRejected,
    NudgePlan,
    Nudges,
    Partner,
    PreferencesSet,
    PreferencesSetData,
    parse_preference,
)


def _made(model: type[BaseModel], **fields: Any) -> Any:
    """A model holding `fields` as given, not validated; its fields set is their names."""
    return model.model_construct(**fields)


_IDS = st.sampled_from(["maya", "sam", "lee"])
_ABSENT = object()  # the field left out of the plan's input


def _check(data: Any) -> str | None:
    check = PreferencesSetData.__pydantic_decorators__.model_validators["_references_resolve"]
    try:
        check.func(data)
    except ValueError as exc:
        return str(exc)
    return None


def _plain(data: PreferencesSetData) -> str | None:
    """The references' checks written plainly, every plan's four fields read."""
    ids = {p.partner_id for p in data.partners}
    if len(ids) != 2:
        return "the two partners need distinct partner_id values"
    for kind in ("date_night", "check_in", "appreciation"):
        plan: NudgePlan | None = getattr(data.nudges, kind)
        if plan is None:
            continue
        for ref in (plan.partner_id, plan.timezone_of):
            if ref is not None and ref not in ids:
                return f"nudges.{kind} names unknown partner {ref!r}"
        if plan.source != "catalog" and kind != "date_night":
            return f"nudges.{kind}: only date nights draw from the date jar"
        if plan.format is not None and kind != "check_in":
            return f"nudges.{kind}.format is for check-ins only"
    return None


# Each of the four fields: absent, at its default, or another value.
_PLAN_FIELDS = st.fixed_dictionaries(
    {
        "partner_id": st.sampled_from([_ABSENT, None, "maya", "sam", "lee"]),
        "timezone_of": st.sampled_from([_ABSENT, None, "maya", "sam", "lee"]),
        "source": st.sampled_from([_ABSENT, "catalog", "jar", "mixed"]),
        "format": st.sampled_from([_ABSENT, None, "monthly_guide", "question"]),
    }
).map(lambda fields: {k: v for k, v in fields.items() if v is not _ABSENT})
_PLANS = st.none() | _PLAN_FIELDS


_CHOICES: dict[str, tuple[Any, ...]] = {
    "partner_id": (_ABSENT, None, "maya", "lee"),
    "timezone_of": (_ABSENT, None, "sam", "lee"),
    "source": (_ABSENT, "catalog", "jar", "mixed"),
    "format": (_ABSENT, None, "monthly_guide", "question"),
}


class TestFieldsSetShortcut:
    def test_every_combination_of_one_plan(self) -> None:
        """Each kind's plan alone, each of the four fields absent, at its default or not."""
        for kind in ("date_night", "check_in", "appreciation"):
            for values in itertools.product(*_CHOICES.values()):
                fields = {k: v for k, v in zip(_CHOICES, values, strict=True) if v is not _ABSENT}
                data = _made(
                    PreferencesSetData,
                    partners=(_made(Partner, partner_id="maya"), _made(Partner, partner_id="sam")),
                    nudges=_made(Nudges, **{kind: _made(NudgePlan, **fields)}),
                )
                assert _check(data) == _plain(data), (kind, fields)

    @settings(max_examples=800, deadline=None)
    @given(a=_IDS, b=_IDS, date_night=_PLANS, check_in=_PLANS, appreciation=_PLANS)
    def test_same_refusals_whichever_fields_were_given(
        self, a: str, b: str, date_night: Any, check_in: Any, appreciation: Any
    ) -> None:
        plans = {
            kind: None if fields is None else _made(NudgePlan, **fields)
            for kind, fields in (
                ("date_night", date_night),
                ("check_in", check_in),
                ("appreciation", appreciation),
            )
        }
        data = _made(
            PreferencesSetData,
            partners=(
                _made(Partner, partner_id=a),
                _made(Partner, partner_id=b),
            ),
            nudges=_made(Nudges, **plans),
        )
        assert _check(data) == _plain(data)


def _event(a: str, b: str, plans: dict[str, dict[str, Any] | None]) -> bytes:
    partners = [
        {"partner_id": pid, "name": "Alex", "timezone": "UTC", "channels": ["webhook"]}
        for pid in (a, b)
    ]
    nudges: dict[str, Any] = {}
    for kind, fields in plans.items():
        if fields is None:
            continue
        plan: dict[str, Any] = {"cadence": {"repeat": "daily", "at": "09:00"}, **fields}
        if fields.get("partner_id") is not None:
            plan["recipients"] = "one"  # NudgePlan's own check, not the one tested here
        nudges[kind] = plan
    event = {
        "type": "preferences.set.v1",
        "event_id": "00000000-0000-0000-0000-000000000001",
        "occurred_at": "2026-03-01T10:00:00Z",
        "producer": "test",
        "data": {"couple_id": "c1", "revision": 1, "partners": partners, "nudges": nudges},
    }
    return json.dumps(event).encode()


class TestValidatedEvents:
    @settings(max_examples=400, deadline=None)
    @given(a=_IDS, b=_IDS, date_night=_PLANS, check_in=_PLANS, appreciation=_PLANS)
    def test_outcome_is_the_plain_checks(
        self, a: str, b: str, date_night: Any, check_in: Any, appreciation: Any
    ) -> None:
        raw = _event(
            a, b, {"date_night": date_night, "check_in": check_in, "appreciation": appreciation}
        )
        try:
            event = parse_preference(raw)
        except EventRejected as exc:
            reason: str | None = exc.reason
        else:
            assert isinstance(event, PreferencesSet)
            assert _plain(event.data) is None
            return
        unchecked = json.loads(raw)["data"]
        nudges = {kind: _made(NudgePlan, **fields) for kind, fields in unchecked["nudges"].items()}
        data = _made(
            PreferencesSetData,
            partners=tuple(
                _made(Partner, partner_id=p["partner_id"]) for p in unchecked["partners"]
            ),
            nudges=_made(Nudges, **nudges),
        )
        expected = _plain(data)
        assert expected is not None
        assert reason == f"preferences.set.v1.data: Value error, {expected}"
