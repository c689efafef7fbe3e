"""What we publish for others stays true: JSON Schemas match the code, the README the settings."""

from __future__ import annotations

import ast
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import get_args

import pytest
from pydantic import BaseModel, TypeAdapter
from typer.testing import CliRunner

from couples_nudge.cli import app
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge_schemas import (
    NudgeFailedData,
    NudgeSentData,
    NudgeSuppressedData,
    SuppressionReason,
    json_schemas,
)
from tests.support import config_table

REPO = Path(__file__).resolve().parents[2]


class TestJsonSchemas:
    @pytest.mark.parametrize("stem", sorted(json_schemas()))
    def test_committed_schema_matches_the_code(self, stem: str) -> None:
        """schemas/json/ is regenerated (`make schema`) whenever an event model changes."""
        committed = json.loads((REPO / "schemas/json" / f"{stem}.schema.json").read_text())
        assert committed == json_schemas()[stem]

    def test_export_command_writes_every_schema(self, tmp_path: Path) -> None:
        """`nudge schema export DIR` writes one file per stream contract."""
        result = CliRunner().invoke(app, ["schema", "export", str(tmp_path)])
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            f"{stem}.schema.json" for stem in json_schemas()
        )


class TestReadme:
    @pytest.mark.parametrize(
        "name",
        sorted(set(SchedulerSettings.model_fields) | set(NotifierSettings.model_fields)),
    )
    def test_every_setting_is_documented(self, name: str) -> None:
        """The configuration table names every environment variable the services read."""
        variable = "REDIS_URL" if name == "redis_url" else f"NUDGE_{name.upper()}"
        assert f"`{variable}`" in (REPO / "README.md").read_text()

    def test_every_row_of_the_configuration_table_is_a_setting(self) -> None:
        """No row names a variable its scope's settings do not read (a renamed or removed
        setting, or one put under the wrong service)."""
        for row in config_table.rows(REPO / "README.md"):
            known = {config_table.variable(n) for n in config_table.own_fields(row.scope)}
            for variable in row.variables:
                assert variable in known | config_table.CLI_ONLY, (row.scope, variable)

    @pytest.mark.parametrize(
        ("scope", "name"),
        [(s, n) for s in config_table.SCOPES for n in config_table.own_fields(s)],
    )
    def test_each_setting_has_its_row_default_and_range(self, scope: str, name: str) -> None:
        """The configuration table gives each setting, under its service, with the default and
        the bounds the code has."""
        field = config_table.own_fields(scope)[name]
        variable = config_table.variable(name)
        [row] = [
            r
            for r in config_table.rows(REPO / "README.md")
            if r.scope == scope and variable in r.variables
        ]
        assert row.range == config_table.bounds_text(field)
        default = field.get_default(call_default_factory=True)
        if default is None or default == []:
            assert not row.default.startswith("`") or "<" in row.default, row.default
            return
        written = row.default.strip("`")
        if hasattr(default, "get_secret_value"):
            default = default.get_secret_value()
        if isinstance(default, bool):
            assert written == str(default).lower()
        elif isinstance(default, int | float | timedelta):
            assert TypeAdapter(type(default)).validate_python(written) == default
        else:
            assert written == default

    def test_opens_with_the_two_commands(self) -> None:
        """A newcomer finds `make demo` and `make test` before anything else to run."""
        text = (REPO / "README.md").read_text()
        first_block = text.split("```sh", 1)[1].split("```", 1)[0]
        assert "make demo" in first_block
        assert "make test" in first_block

    def test_ci_runs_the_readme_test_command(self) -> None:
        """CI calls exactly the test command the README gives."""
        assert "make test" in (REPO / ".ci/run").read_text()


class TestReliabilityPromises:
    def test_every_test_named_in_the_reliability_doc_exists(self) -> None:
        """docs/reliability.md names the test behind each promise: each name is a real test
        (file, class, function), so the table cannot drift from the suite."""
        doc = (REPO / "docs" / "reliability.md").read_text(encoding="utf-8")
        named = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)::(\w+)`", doc))
        assert len(named) >= 20
        missing = []
        for path, cls, func in sorted(named):
            tree = ast.parse((REPO / path).read_text(encoding="utf-8"))
            methods = {
                node.name: {
                    f.name
                    for f in node.body
                    if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                }
                for node in tree.body
                if isinstance(node, ast.ClassDef)
            }
            if func not in methods.get(cls, set()):
                missing.append(f"{path}::{cls}::{func}")
        assert missing == []


class TestOutcomesAsConsumersReadThem:
    """docs/publishers.md, "Reading outcomes": what a consumer of nudges:outcomes meets."""

    @staticmethod
    def section() -> str:
        doc = (REPO / "docs" / "publishers.md").read_text(encoding="utf-8")
        return doc.split("## Reading outcomes", 1)[1].split("\n## ", 1)[0]

    def test_every_suppression_reason_has_its_row(self) -> None:
        """Each value the code can give `reason` is explained in the table, and no other
        (the list ended in "..." and lacked `no_channel`)."""
        rows = set(re.findall(r"^\| `(\w+)` \|", self.section(), re.MULTILINE))
        assert rows - {"reason"} == set(get_args(SuppressionReason))  # but the header

    @pytest.mark.parametrize("model", [NudgeSentData, NudgeFailedData, NudgeSuppressedData])
    def test_every_field_of_an_outcome_is_named(self, model: type[BaseModel]) -> None:
        """A consumer meets every field of the three outcomes: each is named there."""
        named = set(re.findall(r"`(\w+)`", self.section()))
        assert set(model.model_fields) - named == set()
