"""Which changes between two JSON Schemas break the contract: `breaking_changes(old, new)`.

A change is breaking when some event the old schema accepts is refused by the new one (the
service reading the stream would refuse what an existing publisher sends). The policy is in
docs/publishers.md ("How the contracts evolve"); this is its check, pure (two JSON documents
in, a list of findings out), run against the committed baseline by
tests/unit/test_contract_evolution.py.

Written here rather than taken from PyPI: `jsoncompat` (the one maintained checker of JSON
Schema compatibility found) calls itself alpha, with missed changes and false positives, and
its current releases need Python 3.12 (the service runs 3.11); the diff tools (jsonschema-diff,
api-schema-diff) show differences or target OpenAPI and do not decide breaking vs compatible
by these rules. The schemas compared are pydantic's exports, which use a small set of
keywords; a keyword this module does not reason about is compared for equality, so an unknown
change is reported, never passed.

Deliberately conservative (a compatible change may be reported; a breaking one is not
missed, for the keywords below):
- a changed `pattern` is reported whether it narrows or widens (regex inclusion is not
  decidable here): a widening is reviewed by hand and the baseline refreshed with it;
- `allOf`, `if`/`then`/`else`, `not`, `contains` and unknown keywords must be unchanged
  (after `$ref`s are followed) or absent from the new schema;
- branches of `anyOf`/`oneOf` are matched: each old branch must be accepted by some new
  branch (a new branch may be added; `oneOf`'s "exactly one" is not re-proved).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = ["breaking_changes"]

Json = Mapping[str, Any]

# Keywords that annotate and never refuse a value.
_ANNOTATIONS: Final = frozenset(
    {"title", "description", "default", "examples", "deprecated", "$comment", "readOnly"}
)
# Keywords handled by a rule of their own below.
_HANDLED: Final = frozenset(
    {
        "$ref",
        "$defs",
        "type",
        "const",
        "enum",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "anyOf",
        "oneOf",
        "discriminator",
        "pattern",
        "format",
        "uniqueItems",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
    }
)
# Lower bounds: a larger value in the new schema refuses what the old one accepted.
_LOWER: Final = ("minLength", "minItems", "minimum", "exclusiveMinimum")
_UPPER: Final = ("maxLength", "maxItems", "maximum", "exclusiveMaximum")


def breaking_changes(old: Json, new: Json, *, retired: Iterable[str] = ()) -> list[str]:
    """Every change from `old` to `new` that refuses an event `old` accepted, as
    `where: what` lines (empty: compatible). `retired`: event types whose removal from a
    discriminated union is intended (a version past its deprecation window)."""
    return _Diff(old, new, frozenset(retired)).node(old, new, "")


class _Diff:
    def __init__(self, old_root: Json, new_root: Json, retired: frozenset[str]) -> None:
        self.roots = (old_root, new_root)
        self.retired = retired
        self.seen: set[tuple[str, str]] = set()  # $ref pairs compared (recursive schemas)

    def resolve(self, schema: Json, side: int) -> tuple[Json, str | None]:
        ref = schema.get("$ref")
        if ref is None:
            return schema, None
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are followed: {ref}")
        target: Any = self.roots[side]
        for part in ref[2:].split("/"):
            target = target[part]
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return {**target, **rest}, ref

    def node(self, old: Json, new: Json, where: str) -> list[str]:
        old, old_ref = self.resolve(old, 0)
        new, new_ref = self.resolve(new, 1)
        if old_ref is not None and new_ref is not None:
            if (old_ref, new_ref) in self.seen:
                return []
            self.seen.add((old_ref, new_ref))
        at = where or "(root)"
        if _branched(old) and not (_branched(new) or "discriminator" in new):
            return self.branches(old, new, where)  # each old branch against all of `new`
        found: list[str] = []
        found += self.types(old, new, at)
        found += self.values(old, new, at)
        found += self.bounds(old, new, at)
        found += self.objects(old, new, where)
        if "items" in old or "items" in new:
            found += self.node(old.get("items", {}), new.get("items", {}), f"{where}[]")
        found += self.tuples(old, new, where)
        found += self.branches(old, new, where)
        found += self.others(old, new, at)
        return found

    def types(self, old: Json, new: Json, at: str) -> list[str]:
        if "type" not in new:
            return []
        if "type" not in old:
            return [f"{at}: now restricted to type {new['type']}"]
        before, after = _type_set(old["type"]), _type_set(new["type"])
        if "number" in after:
            after |= {"integer"}
        lost = before - after
        return [f"{at}: type {', '.join(sorted(lost))} no longer accepted"] if lost else []

    def values(self, old: Json, new: Json, at: str) -> list[str]:
        found = []
        allowed = _allowed(new)
        if allowed is not None:
            before = _allowed(old)
            if before is None:
                found.append(f"{at}: now limited to the values {sorted(map(_key, allowed))}")
            elif lost := {_key(v) for v in before} - {_key(v) for v in allowed}:
                found.append(f"{at}: values {sorted(lost)} no longer accepted")
        for word in ("pattern", "format"):
            if word in new and old.get(word) != new[word]:
                change = "added" if word not in old else "changed"
                found.append(f"{at}: {word} {change}")
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            found.append(f"{at}: uniqueItems added")
        return found

    def bounds(self, old: Json, new: Json, at: str) -> list[str]:
        found = []
        for word in (*_LOWER, *_UPPER):
            if word not in new:
                continue
            if word not in old:
                found.append(f"{at}: {word} {new[word]} added")
            elif (new[word] > old[word]) if word in _LOWER else (new[word] < old[word]):
                found.append(f"{at}: {word} {old[word]} -> {new[word]}")
        return found

    def objects(self, old: Json, new: Json, where: str) -> list[str]:
        found = []
        old_props: Json = old.get("properties", {})
        new_props: Json = new.get("properties", {})
        closed = new.get("additionalProperties") is False
        if closed and old.get("additionalProperties") is not False:
            found.append(f"{where or '(root)'}: additional properties no longer accepted")
        for name in sorted(set(new.get("required", ())) - set(old.get("required", ()))):
            found.append(f"{_join(where, name)}: now required")
        for name, schema in old_props.items():
            if name in new_props:
                found += self.node(schema, new_props[name], _join(where, name))
            elif closed:
                found.append(f"{_join(where, name)}: removed (or renamed)")
        return found

    def tuples(self, old: Json, new: Json, where: str) -> list[str]:
        """`prefixItems` (a list of fixed length, such as a couple's two partners)."""
        before, after = old.get("prefixItems", []), new.get("prefixItems", [])
        if after and len(after) != len(before):
            return [f"{where or '(root)'}: prefixItems changed"]
        found = []
        for number, (schema, now) in enumerate(zip(before, after, strict=False)):
            found += self.node(schema, now, f"{where}[{number}]")
        return found

    def branches(self, old: Json, new: Json, where: str) -> list[str]:
        if "discriminator" in new:
            return self.union(old, new, where)
        old_branches = old.get("anyOf") or old.get("oneOf")
        new_branches = new.get("anyOf") or new.get("oneOf")
        if old_branches is None and new_branches is None:
            return []
        old_branches = old_branches or [_core(old)]
        new_branches = new_branches or [_core(new)]
        found = []
        for number, branch in enumerate(old_branches):
            tries = [_Diff(*self.roots, self.retired).node(branch, b, where) for b in new_branches]
            if all(tries):
                best = min(tries, key=len)
                found.append(f"{where or '(root)'}: branch {number} no longer accepted: {best[0]}")
        return found

    def union(self, old: Json, new: Json, where: str) -> list[str]:
        """Each event type of `old` (a discriminated union, or one event model) against the
        same type in `new`."""
        new_map: Json = new["discriminator"]["mapping"]
        if "discriminator" in old:
            old_types: Json = {t: {"$ref": r} for t, r in old["discriminator"]["mapping"].items()}
        else:  # one event model, now one of several
            old_types = {old.get("properties", {}).get("type", {}).get("const"): old}
        found = []
        for tag, schema in old_types.items():
            if tag in new_map:
                found += self.node(schema, {"$ref": new_map[tag]}, _join(where, str(tag)))
            elif tag not in self.retired:
                found.append(f"{_join(where, str(tag))}: event type no longer accepted")
        return found

    def others(self, old: Json, new: Json, at: str) -> list[str]:
        found = []
        for word in sorted(set(new) - _ANNOTATIONS - _HANDLED):
            if word not in old:
                found.append(f"{at}: {word} added")
            elif _canonical(self, old[word], 0) != _canonical(self, new[word], 1):
                found.append(f"{at}: {word} changed")
        return found


def _branched(schema: Json) -> bool:
    return "anyOf" in schema or "oneOf" in schema


def _core(schema: Json) -> Json:
    """A schema without its own branches: what an `anyOf` of one branch would hold."""
    return {k: v for k, v in schema.items() if k not in {"anyOf", "oneOf", "$defs"}}


def _type_set(value: str | list[str]) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def _allowed(schema: Json) -> list[Any] | None:
    if "const" in schema:
        return [schema["const"]]
    enum: list[Any] | None = schema.get("enum")
    return enum


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _canonical(diff: _Diff, schema: Any, side: int) -> str:
    """A subschema as text with its `$ref`s replaced by what they point at (to 8 levels),
    so a renamed definition with the same rules compares equal."""

    def expand(node: Any, level: int) -> Any:
        if isinstance(node, list):
            return [expand(item, level) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node and level < 8:
            node, _ref = diff.resolve(node, side)
            level += 1
        return {
            k: expand(v, level) for k, v in node.items() if k not in _ANNOTATIONS and k != "$ref"
        }

    return _key(expand(schema, 0))
