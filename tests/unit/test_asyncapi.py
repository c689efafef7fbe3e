"""The AsyncAPI documents in docs/asyncapi/ are generated from the code, never drift from it,
say what the streams really are, and pass the official AsyncAPI parser."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from couples_nudge.asyncapi import SERVICES, document, due_address, resolve
from couples_nudge.common.keys import Keys
from couples_nudge_schemas import json_schemas
from tests.support.tools import require_node_packages

REPO = Path(__file__).resolve().parents[2]
PARSER = REPO / "tests/tools/asyncapi"
Json = dict[str, Any]


def committed(service: str) -> Json:
    loaded: Json = json.loads((REPO / f"docs/asyncapi/{service}.json").read_text())
    return loaded


def event_types(schema: Json) -> set[str]:
    """Every `type` constant in a JSON Schema (the versioned event names)."""
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            const = node.get("properties", {}).get("type", {}).get("const")
            if isinstance(const, str):
                found.add(const)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def parse(*documents: Path) -> list[Json]:
    """What the official parser (@asyncapi/parser) says of each document."""
    node = require_node_packages(PARSER, REPO)
    run = subprocess.run(
        [node, str(PARSER / "validate.mjs"), *map(str, documents)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.stdout, run.stderr[-2000:]
    return [json.loads(line) for line in run.stdout.splitlines()]


def errors(report: Json) -> list[str]:
    return [
        f"{d['code']} at {'/'.join(map(str, d['path']))}: {d['message']}"
        for d in report["diagnostics"]
        if d["severity"] == 0
    ]


class TestGenerated:
    @pytest.mark.parametrize("service", sorted(SERVICES))
    def test_committed_document_matches_the_code(self, service: str) -> None:
        """Regenerate with `nudge schema asyncapi docs/asyncapi` (or `make schema`)."""
        assert committed(service) == document(service)

    def test_the_documented_command_writes_the_same_documents(self, tmp_path: Path) -> None:
        """`nudge schema asyncapi DIR`, as docs/publishers.md tells people to run it."""
        subprocess.run(
            [sys.executable, "-m", "couples_nudge", "schema", "asyncapi", str(tmp_path)],
            check=True, cwd=REPO, capture_output=True, timeout=120,
        )  # fmt: skip
        for service in SERVICES:
            assert json.loads((tmp_path / f"{service}.json").read_text()) == committed(service)


class TestWhatTheDocumentsSay:
    def test_every_stream_a_service_touches_is_a_channel(self) -> None:
        """Preferences, due, outcomes, rejected and dead, with the default key names (the
        notifier publishes unsubscribes on the preferences stream)."""
        expected = {
            "nudges:preferences",
            "nudges:due:{shard}",
            "nudges:outcomes",
            "nudges:rejected",
            "nudges:dead",
        }
        for service in SERVICES:
            assert {c["address"] for c in committed(service)["channels"].values()} == expected

    @pytest.mark.parametrize("service", sorted(SERVICES))
    def test_the_due_streams_are_one_channel_with_a_shard_parameter(self, service: str) -> None:
        """`nudges:due:{shard}`: each example of the parameter gives a shard's real stream
        name, as the services build it (not just shard 00)."""
        (due,) = [
            c for c in committed(service)["channels"].values() if "shard" in c.get("parameters", {})
        ]
        assert due["address"] == due_address() == "nudges:due:{shard}"
        assert due["bindings"]["redis"]["channel"] == due["address"]
        examples = due["parameters"]["shard"]["examples"]
        keys = Keys(shards=16)
        names = {due["address"].replace("{shard}", tag) for tag in examples}
        assert names <= set(keys.all_due())
        assert len(names) == len(examples) > 1

    @pytest.mark.parametrize("service", sorted(SERVICES))
    def test_correlation_ids_point_at_a_field_every_payload_has(self, service: str) -> None:
        """Entries carry no headers (one `__data__` field): a correlation id names a payload
        field that every variant of the message's payload requires (`event_id`, or a
        rejected or dead entry's `entry_id`)."""
        doc = committed(service)
        checked = 0
        for name, message in doc["components"]["messages"].items():
            location = message["correlationId"]["location"]
            assert location.startswith("$message.payload#/"), (name, location)
            field = location.removeprefix("$message.payload#/")
            variants = _objects(doc, message["payload"])
            assert variants, name
            for variant in variants:
                assert field in variant["properties"], (name, field)
                assert field in variant.get("required", ()), (name, field)
                checked += 1
        print(f"\n{service}: {len(doc['components']['messages'])} messages, {checked} payloads")

    def test_every_event_type_of_the_json_schemas_is_described(self) -> None:
        """Publishers find each versioned event of schemas/json/ in the AsyncAPI documents."""
        expected = set().union(*(event_types(s) for s in json_schemas().values()))
        described = event_types(committed("scheduler")) | event_types(committed("notifier"))
        assert expected
        assert described == expected

    def test_consumer_groups_are_named_in_the_bindings(self) -> None:
        """The scheduler reads preferences as group `scheduler`, the notifier due as `notifier`."""
        bindings = {
            (c["address"], c["bindings"]["redis"].get("groupName"))
            for service in SERVICES
            for c in committed(service)["channels"].values()
            if c["bindings"]["redis"]["method"] == "xreadgroup"
        }
        assert bindings == {("nudges:preferences", "scheduler"), ("nudges:due:{shard}", "notifier")}


class TestOfficialParser:
    def test_the_documents_are_valid_asyncapi(self) -> None:
        """@asyncapi/parser (the AsyncAPI 3.0 JSON Schema and its rules) finds no error."""
        reports = parse(*(REPO / f"docs/asyncapi/{s}.json" for s in sorted(SERVICES)))
        for report in reports:
            print(f"\n{report['file']}: {len(report['diagnostics'])} diagnostics, none errors")
            assert report["parsed"]
            assert errors(report) == []

    def test_the_parser_refuses_what_we_fixed(self, tmp_path: Path) -> None:
        """The check is live: an undeclared address parameter and a correlation id that is
        no runtime expression are errors to it."""
        broken = copy.deepcopy(committed("notifier"))
        due = broken["channels"]["due"]
        due["address"] = "nudges:due:{s00}:{slot}"
        message = next(iter(broken["components"]["messages"].values()))
        message["correlationId"]["location"] = "payload.event_id"
        path = tmp_path / "broken.json"
        path.write_text(json.dumps(broken))
        (report,) = parse(path)
        codes = {line.split(" at ")[0] for line in errors(report)}
        assert {"asyncapi3-channel-parameters", "asyncapi-document-resolved"} <= codes


def _objects(doc: Json, schema: Json) -> list[Json]:
    if "$ref" in schema:
        return _objects(doc, resolve(doc, schema["$ref"]))
    for union in ("oneOf", "anyOf"):
        if union in schema:
            return [v for s in schema[union] for v in _objects(doc, s)]
    return [schema] if schema.get("type") == "object" else []
