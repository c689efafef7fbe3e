"""Specification of tests/support/schema_diff.py: which schema changes break the contract.

Small schemas state each rule; then the committed v1 baseline itself is mutated, one
breaking change at a time, and each is caught where it was made.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.contracts import BASELINE
from tests.support.schema_diff import breaking_changes

Json = dict[str, Any]


def obj(**properties: Json) -> Json:
    """A closed object (as pydantic exports a strict model) whose first property is required."""
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {name: copy.deepcopy(schema) for name, schema in properties.items()},
        "required": list(properties)[:1],
    }


STRING: Json = {"type": "string"}
NULLABLE: Json = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}


def with_(schema: Json, path: str, **changes: Any) -> Json:
    """A copy of `schema` with `changes` made to the node at `path` (keys joined by `/`)."""
    changed = copy.deepcopy(schema)
    node = changed
    for part in filter(None, path.split("/")):
        node = node[int(part)] if isinstance(node, list) else node[part]
    for key, value in changes.items():
        if value is ...:
            del node[key]
        else:
            node[key] = value
    return changed


BASE = obj(id=STRING, name=STRING, note=NULLABLE, n={"type": "integer", "minimum": 0})

BREAKING = {
    "a required field added": (
        BASE,
        with_(BASE, "", required=["id", "name"]),
        ["name: now required"],
    ),
    "a field removed": (
        BASE,
        with_(BASE, "properties", note=...),
        ["note: removed (or renamed)"],
    ),
    "a field renamed": (
        obj(id=STRING, nick=STRING),
        obj(id=STRING, nickname=STRING),
        ["nick: removed (or renamed)"],
    ),
    "a type narrowed": (
        obj(id={"type": "number"}),
        obj(id={"type": "integer"}),
        ["id: type number no longer accepted"],
    ),
    "null no longer accepted": (
        BASE,
        with_(BASE, "properties", note=STRING),
        ["note: branch 1 no longer accepted: note: type null no longer accepted"],
    ),
    "an enum value removed": (
        obj(c={"enum": ["email", "push"]}),
        obj(c={"enum": ["email"]}),
        ["c: values ['\"push\"'] no longer accepted"],
    ),
    "a const changed": (
        obj(type={"const": "a.v1"}),
        obj(type={"const": "a.v2"}),
        ["type: values ['\"a.v1\"'] no longer accepted"],
    ),
    "a maximum length lowered": (
        obj(s={"type": "string", "maxLength": 40}),
        obj(s={"type": "string", "maxLength": 20}),
        ["s: maxLength 40 -> 20"],
    ),
    "a minimum raised": (
        BASE,
        with_(BASE, "properties/n", minimum=1),
        ["n: minimum 0 -> 1"],
    ),
    "a bound added": (
        BASE,
        with_(BASE, "properties/id", maxLength=10),
        ["id: maxLength 10 added"],
    ),
    "a pattern added": (
        BASE,
        with_(BASE, "properties/id", pattern="^[a-z]+$"),
        ["id: pattern added"],
    ),
    "a pattern changed": (
        obj(s={"type": "string", "pattern": "^[a-z]+$"}),
        obj(s={"type": "string", "pattern": "^[a-y]+$"}),
        ["s: pattern changed"],
    ),
    "a format added": (
        BASE,
        with_(BASE, "properties/id", format="uuid"),
        ["id: format added"],
    ),
    "uniqueItems added": (
        obj(xs={"type": "array", "items": STRING}),
        obj(xs={"type": "array", "items": STRING, "uniqueItems": True}),
        ["xs: uniqueItems added"],
    ),
    "an item narrowed": (
        obj(xs={"type": "array", "items": {"enum": ["a", "b"]}}),
        obj(xs={"type": "array", "items": {"enum": ["a"]}}),
        ["xs[]: values ['\"b\"'] no longer accepted"],
    ),
    "an object closed": (
        {"type": "object", "properties": {"id": STRING}, "required": ["id"]},
        obj(id=STRING),
        ["(root): additional properties no longer accepted"],
    ),
    "a rule relating fields added": (
        BASE,
        with_(BASE, "", **{"if": {"required": ["note"]}, "then": {"required": ["name"]}}),
        ["(root): if added", "(root): then added"],
    ),
    "a rule relating fields changed": (
        with_(BASE, "", allOf=[{"required": ["id"]}]),
        with_(BASE, "", allOf=[{"required": ["name"]}]),
        ["(root): allOf changed"],
    ),
}

COMPATIBLE = {
    "an optional field added": (BASE, with_(BASE, "properties", extra=NULLABLE)),
    "an enum value added": (obj(c={"enum": ["email"]}), obj(c={"enum": ["email", "sms"]})),
    "a required field made optional": (BASE, with_(BASE, "", required=[])),
    "a bound loosened": (BASE, with_(BASE, "properties/n", minimum=-5)),
    "a bound removed": (BASE, with_(BASE, "properties/n", minimum=...)),
    "null accepted as well": (BASE, with_(BASE, "properties", name=NULLABLE)),
    "integer widened to number": (obj(n={"type": "integer"}), obj(n={"type": "number"})),
    "a description and a title changed": (
        BASE,
        with_(BASE, "properties/id", description="the id", title="Id"),
    ),
    "a format removed": (obj(u={"type": "string", "format": "uuid"}), obj(u=STRING)),
    "a renamed definition with the same rules": (
        {"$defs": {"A": obj(id=STRING)}, "allOf": [{"$ref": "#/$defs/A"}]},
        {"$defs": {"B": obj(id=STRING)}, "allOf": [{"$ref": "#/$defs/B"}]},
    ),
}


def union(**types: Json) -> Json:
    """A discriminated union of events, as pydantic exports one."""
    defs = {
        tag.replace(".", "_"): obj(type={"const": tag}, data=body) for tag, body in types.items()
    }
    mapping = {tag: f"#/$defs/{tag.replace('.', '_')}" for tag in types}
    return {
        "$defs": defs,
        "discriminator": {"mapping": mapping, "propertyName": "type"},
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
    }


def tree() -> Json:
    """A recursive schema (a node holds nodes)."""
    node = obj(name=STRING, children={"type": "array", "items": {"$ref": "#/$defs/Node"}})
    return {"$defs": {"Node": node}, "$ref": "#/$defs/Node"}


class TestBreakingChanges:
    @pytest.mark.parametrize("case", BREAKING)
    def test_each_breaking_change_is_found_where_it_was_made(self, case: str) -> None:
        """Every rule of the policy: the change is reported, with its location."""
        old, new, expected = BREAKING[case]
        assert breaking_changes(old, new) == expected

    @pytest.mark.parametrize("case", COMPATIBLE)
    def test_compatible_changes_pass(self, case: str) -> None:
        """What the policy allows within a version is not reported."""
        old, new = COMPATIBLE[case]
        assert breaking_changes(old, new) == []

    def test_an_unchanged_schema_has_no_breaking_change(self) -> None:
        for old, new, _expected in BREAKING.values():
            assert breaking_changes(old, old) == breaking_changes(new, new) == []

    def test_a_recursive_schema_is_compared_once_per_definition(self) -> None:
        """$refs that lead back to themselves end; a change inside is still found."""
        narrowed = with_(tree(), "$defs/Node/properties/name", maxLength=5)
        assert breaking_changes(tree(), tree()) == []
        assert breaking_changes(tree(), narrowed) == ["name: maxLength 5 added"]


class TestEventTypes:
    def test_a_removed_event_type_is_breaking(self) -> None:
        old = union(**{"a.set.v1": STRING, "a.paused.v1": STRING})
        new = union(**{"a.set.v1": STRING})
        assert breaking_changes(old, new) == ["a.paused.v1: event type no longer accepted"]

    def test_a_retired_event_type_may_go(self) -> None:
        """A version past its deprecation window is named, and its removal passes."""
        old = union(**{"a.set.v1": STRING, "a.set.v2": STRING})
        new = union(**{"a.set.v2": STRING})
        assert breaking_changes(old, new, retired={"a.set.v1"}) == []

    def test_a_new_version_beside_the_old_one_is_compatible(self) -> None:
        """A breaking change goes into a new type; the old version is left as it was."""
        old = union(**{"a.set.v1": obj(n=STRING)})
        new = union(**{"a.set.v1": obj(n=STRING), "a.set.v2": obj(n=STRING, m=STRING)})
        assert breaking_changes(old, new) == []

    def test_a_change_inside_one_type_names_the_type(self) -> None:
        old = union(**{"a.set.v1": obj(n=STRING)})
        new = union(**{"a.set.v1": obj(n={"type": "string", "maxLength": 3})})
        assert breaking_changes(old, new) == ["a.set.v1.data.n: maxLength 3 added"]

    def test_one_event_model_that_becomes_a_union_keeps_its_type(self) -> None:
        """nudge.due.v1 is one model today; a v2 beside it must leave v1 as accepted."""
        v1 = obj(type={"const": "a.due.v1"}, data=obj(n=STRING))
        assert breaking_changes(v1, union(**{"a.due.v1": obj(n=STRING)})) == []
        assert breaking_changes(v1, union(**{"a.due.v2": obj(n=STRING)})) == [
            "a.due.v1: event type no longer accepted"
        ]


def _baseline(stem: str) -> Json:
    loaded: Json = json.loads((BASELINE / f"{stem}.schema.json").read_text())
    return loaded


def _defs(schema: Json) -> Json:
    defs: Json = schema["$defs"]
    return defs


MUTATIONS: dict[str, tuple[Callable[[Json], None], str]] = {
    "a required field added to preferences.paused": (
        lambda s: _defs(s)["PreferencesPausedData"]["required"].append("until"),
        "preferences.paused.v1.data.until: now required",
    ),
    "a partner's field removed": (
        lambda s: _defs(s)["Partner"]["properties"].pop("locale"),
        "preferences.set.v1.data.partners[0].locale: removed (or renamed)",
    ),
    "a channel removed": (
        lambda s: _defs(s)["Partner"]["properties"]["channels"]["items"]["enum"].remove("webhook"),
        "preferences.set.v1.data.partners[0].channels[]: values ['\"webhook\"'] no longer accepted",
    ),
    "names shortened": (
        lambda s: _defs(s)["Partner"]["properties"]["name"].update(maxLength=20),
        "preferences.set.v1.data.partners[0].name: maxLength 40 -> 20",
    ),
    "the revision narrowed to a string": (
        lambda s: _defs(s)["PreferencesSetData"]["properties"]["revision"].update(type="string"),
        "preferences.set.v1.data.revision: type integer no longer accepted",
    ),
    "an event type dropped": (
        lambda s: s["discriminator"]["mapping"].pop("couple.erased.v1"),
        "couple.erased.v1: event type no longer accepted",
    ),
}


class TestTheBaselineMutated:
    @pytest.mark.parametrize("case", MUTATIONS)
    def test_a_breaking_mutation_of_the_v1_baseline_is_caught(self, case: str) -> None:
        """A copy of the committed preference-event schema, broken one way: found, and
        found where it was made."""
        mutate, expected = MUTATIONS[case]
        old = _baseline("preference-event")
        new = copy.deepcopy(old)
        mutate(new)
        assert expected in breaking_changes(old, new)

    def test_every_baseline_against_itself_passes(self) -> None:
        for path in sorted(BASELINE.glob("*.schema.json")):
            schema = json.loads(path.read_text())
            assert breaking_changes(schema, schema) == [], path.name
