"""The AsyncAPI documents in docs/asyncapi/ are generated from the code and never drift from it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from faststream import FastStream

from schemas import json_schemas
from services.notifier.app import app as notifier_app
from services.scheduler.app import app as scheduler_app

REPO = Path(__file__).resolve().parents[2]
APPS = {"scheduler": scheduler_app, "notifier": notifier_app}


def generated(app: FastStream) -> dict[str, Any]:
    assert app.schema is not None
    document: dict[str, Any] = app.schema.to_specification().to_jsonable()
    return document


def committed(service: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REPO / f"docs/asyncapi/{service}.json").read_text())
    return document


def event_types(schema: dict[str, Any]) -> set[str]:
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


class TestAsyncApi:
    @pytest.mark.parametrize("service", sorted(APPS))
    def test_committed_document_matches_the_code(self, service: str) -> None:
        """Regenerate with `faststream docs gen services.<svc>.app:app --out <that file>`."""
        assert committed(service) == generated(APPS[service])

    def test_the_documented_command_writes_the_same_document(self, tmp_path: Path) -> None:
        """`faststream docs gen` itself, as docs/publishers.md tells people to run it."""
        out = tmp_path / "scheduler.json"
        subprocess.run(
            [sys.executable, "-m", "faststream", "docs", "gen", "services.scheduler.app:app",
             "--out", str(out)],
            check=True,
            cwd=REPO,
            capture_output=True,
        )  # fmt: skip
        assert json.loads(out.read_text()) == committed("scheduler")

    def test_every_stream_a_service_touches_is_a_channel(self) -> None:
        """Preferences, due, outcomes, rejected and dead, with the default key names (the
        notifier publishes unsubscribes on the preferences stream)."""
        addresses = {
            service: {c["address"] for c in committed(service)["channels"].values()}
            for service in APPS
        }
        assert addresses["scheduler"] == {
            "nudges:preferences",
            "nudges:due:{s00}",
            "nudges:outcomes",
            "nudges:rejected",
            "nudges:dead",
        }
        assert addresses["notifier"] == {
            "nudges:preferences",  # one-click unsubscribes are published there
            "nudges:due:{s00}",
            "nudges:outcomes",
            "nudges:rejected",
            "nudges:dead",
        }

    def test_every_event_type_of_the_json_schemas_is_described(self) -> None:
        """Publishers find each versioned event of schemas/json/ in the AsyncAPI documents too."""
        expected = set().union(*(event_types(s) for s in json_schemas().values()))
        described = event_types(committed("scheduler")) | event_types(committed("notifier"))
        assert expected
        assert described == expected

    def test_consumer_groups_are_named_in_the_bindings(self) -> None:
        """The scheduler reads preferences as group `scheduler`, the notifier due as `notifier`."""
        bindings = {
            (c["address"], c["bindings"]["redis"].get("groupName"))
            for service in APPS
            for c in committed(service)["channels"].values()
            if c["bindings"]["redis"]["method"] == "xreadgroup"
        }
        assert bindings == {("nudges:preferences", "scheduler"), ("nudges:due:{s00}", "notifier")}
