"""The contracts as publishers see them: the exported JSON Schemas under a standard validator
(Draft 2020-12, formats asserted) and the service's own parsers, side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from couples_nudge.scheduler.entries import read_payload
from couples_nudge_schemas import EventRejected, parse_due, parse_outcomes_entry

__all__ = [
    "BASELINE",
    "EXAMPLES",
    "PUBLISHED",
    "STREAM_STEMS",
    "Refused",
    "Verdict",
    "event_types",
    "form_of",
    "refused_corpus",
    "stem_of",
    "valid_examples",
    "validator",
    "verdict",
]

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
PUBLISHED = REPO / "schemas" / "json"
# The JSON Schemas of v1 as first published: what the oldest service still supported reads.
BASELINE = REPO / "tests" / "contracts" / "v1"
Json = dict[str, Any]


@cache
def validator(stem: str, folder: Path = PUBLISHED) -> Draft202012Validator:
    """A standard validator of <folder>/<stem>.schema.json (the published schemas/json, or
    the v1 baseline BASELINE), asserting formats."""
    schema = json.loads((folder / f"{stem}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def event_types(stem: str) -> set[str]:
    """The versioned types a schema's discriminated union admits."""
    schema = json.loads((REPO / "schemas/json" / f"{stem}.schema.json").read_text())
    if "discriminator" in schema:
        return set(schema["discriminator"]["mapping"])
    return {schema["properties"]["type"]["const"]}


def stem_of(event_type: str) -> str:
    """Which exported schema (and stream) an event type belongs to."""
    for stem in ("preference-event", "nudge-due", "outcome-event"):
        if event_type in event_types(stem):
            return stem
    raise LookupError(f"no exported schema has the type {event_type!r}")


STREAM_STEMS = {"preferences": "preference-event", "due": "nudge-due", "outcomes": "outcome-event"}


def _service(stem: str, raw: bytes) -> str | None:
    """None when the service accepts the event, else its reason (its own parser per stream:
    the scheduler's entry reader for preferences, the notifier's for NudgeDue)."""
    try:
        if stem == "preference-event":
            _payload, read = read_payload(raw)
            if isinstance(read, EventRejected):
                raise read
        elif stem == "nudge-due":
            parse_due(raw)
        else:
            parse_outcomes_entry(raw)
    except EventRejected as exc:
        return exc.reason
    return None


@dataclass(frozen=True, slots=True)
class Verdict:
    service_reason: str | None  # None: accepted
    schema_errors: tuple[str, ...]  # empty: accepted

    @property
    def service_accepts(self) -> bool:
        return self.service_reason is None

    @property
    def schema_accepts(self) -> bool:
        return not self.schema_errors


def form_of(event: Any) -> str:
    """The exported schema an event is checked against: its stream's, or the CloudEvents
    form's for a preferences entry naming `specversion`."""
    stem = stem_of(event["type"])
    if stem == "preference-event" and "specversion" in event:
        return "preference-cloudevent"
    return stem


def verdict(stem: str, event: Any) -> Verdict:
    """What the service and the exported JSON Schema each make of one event. A preferences
    entry naming `specversion` is a CloudEvent: the service reads it as one, and it is
    checked against the CloudEvents form's schema."""
    form = stem
    if stem == "preference-event" and isinstance(event, dict) and "specversion" in event:
        form = "preference-cloudevent"
    errors = tuple(
        f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:120]}"
        for e in validator(form).iter_errors(event)
    )
    return Verdict(_service(stem, json.dumps(event).encode()), errors)


@dataclass(frozen=True, slots=True)
class Refused:
    name: str
    stream: str  # preferences, due or outcomes
    refused_because: str
    reason: str  # part of the service's reason
    json_schema: str  # "refuses", or "accepts" where JSON Schema cannot say it
    event: Json
    why_the_json_schema_cannot: str | None = None


def refused_corpus() -> list[Refused]:
    """examples/refused/*.json: events the service refuses, and why."""
    return [
        Refused(name=path.stem, **json.loads(path.read_text()))
        for path in sorted((EXAMPLES / "refused").glob("*.json"))
    ]


def valid_examples() -> list[tuple[str, Any]]:
    """Every valid event the repository shows: couples, jars, one per event type and the
    CloudEvents form."""
    found: list[tuple[str, Any]] = []
    for path in sorted((EXAMPLES / "couples").glob("*.json")):
        found.append((path.name, json.loads(path.read_text())))
    for path in sorted((EXAMPLES / "couples").glob("*/*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found.append((f"{path.name}:{number}", json.loads(line)))
    for folder in ("events", "cloudevents"):
        for path in sorted((EXAMPLES / folder).glob("*.json")):
            found.append((f"{folder}/{path.name}", json.loads(path.read_text())))
    return found
