"""deploy/: the Prometheus alert rules and the Grafana dashboard are valid and use real metrics.

promtool (Debian's `prometheus` package, installed by .ci/run) checks the rules' syntax and runs
their unit tests (deploy/prometheus/alerts.test.yml); every metric a rule or a panel names must
exist in the services' registry.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from couples_nudge.common.keys import Keys
from couples_nudge.common.metrics import Metrics
from tests.support.tools import require_tool

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "deploy/prometheus/alerts.yml"
RULE_TESTS = REPO / "deploy/prometheus/alerts.test.yml"
DASHBOARD = REPO / "deploy/grafana/nudges-dashboard.json"
METRIC = re.compile(r"\bnudge_[a-z0-9_]+")
SERIES = re.compile(r"\b(?:nudge|process|python)_[a-z0-9_]+")  # ours and the standard ones
FILTERS = ('job=~"$job"', 'namespace=~"$namespace"')
SELECTOR = re.compile(r"\{([^}]*)\}")
OPERATIONS = REPO / "docs/operations.md"
REQUIRED_ALERTS = {
    "NudgeConsumerLagHigh",
    "NudgeOldestPendingTooOld",
    "NudgeDeadLettersGrowing",
    "NudgeFiringLatenessHigh",
    "NudgeSchedulerNotFiring",
}


def promtool() -> str:
    return require_tool("promtool")


def rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(RULES.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


def github_anchors(markdown: str) -> set[str]:
    """The anchors GitHub gives a document's headings: lower case, punctuation dropped, spaces
    as hyphens, a repeated one suffixed -1, -2, ..."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", markdown, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


def known_series() -> set[str]:
    return Metrics("any", Keys()).sample_names()


class TestAlertRules:
    def test_promtool_accepts_the_rules(self) -> None:
        """`promtool check rules` parses every expression and template."""
        result = subprocess.run(
            [promtool(), "check", "rules", str(RULES)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_the_rules_fire_as_their_unit_tests_say(self) -> None:
        """`promtool test rules`: lag, pending age, dead letters and a stalled scheduler."""
        result = subprocess.run(
            [promtool(), "test", "rules", RULE_TESTS.name],
            capture_output=True,
            text=True,
            cwd=RULE_TESTS.parent,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_the_alerts_operators_asked_for_exist(self) -> None:
        """Consumer lag, oldest pending age, dead letters, firing lateness, scheduler stalled."""
        assert {rule["alert"] for rule in rules()} >= REQUIRED_ALERTS

    def test_every_metric_a_rule_uses_exists(self) -> None:
        """A renamed metric would silently disable an alert: names are checked here."""
        used = {name for rule in rules() for name in METRIC.findall(rule["expr"])}
        assert used
        assert used - known_series() == set()

    def test_every_alert_says_how_bad_and_what_to_do(self) -> None:
        """Each rule has a severity label, a summary and a description."""
        for rule in rules():
            assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
            assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]

    def test_every_alert_links_its_runbook_in_the_operations_guide(self) -> None:
        """runbook_url is docs/operations.md#<alert in lower case>, and that heading exists."""
        anchors = github_anchors(OPERATIONS.read_text())
        for rule in rules():
            url = rule["annotations"].get("runbook_url", "")
            assert url == f"docs/operations.md#{rule['alert'].lower()}", rule["alert"]
            assert url.split("#", 1)[1] in anchors, rule["alert"]


class TestGrafanaDashboard:
    def test_every_metric_a_panel_uses_exists(self) -> None:
        """Panels query only series the services export."""
        used = {name for expr in dashboard_expressions() for name in SERIES.findall(expr)}
        assert used
        assert used - known_series() == set()

    def test_job_and_namespace_are_variables_of_the_dashboard(self) -> None:
        """Both are multi-value query variables over nudge_build_info, "All" matching any."""
        variables = {v["name"]: v for v in json.loads(DASHBOARD.read_text())["templating"]["list"]}
        for name in ("job", "namespace"):
            variable = variables[name]
            assert variable["type"] == "query"
            assert variable["datasource"]["uid"] == "${datasource}"
            assert variable["definition"].startswith("label_values(nudge_build_info")
            assert variable["definition"].endswith(f", {name})")
            assert (variable["includeAll"], variable["multi"], variable["allValue"]) == (
                True,
                True,
                ".*",  # also matches a series without the label (no Kubernetes namespace)
            )

    def test_every_query_is_filtered_by_job_and_namespace(self) -> None:
        """Each series a panel selects carries both filters, so no panel mixes deployments."""
        unfiltered = [
            (name, expr)
            for expr in dashboard_expressions()
            for match in SERIES.finditer(expr)
            for selector in [SELECTOR.match(expr, match.end())]
            if selector is None
            or not set(FILTERS) <= {m.strip() for m in selector.group(1).split(",")}
            for name in [match.group()]
        ]
        assert dashboard_expressions()
        assert unfiltered == []

    def test_every_query_parses_as_promql(self, tmp_path: Path) -> None:
        """`promtool check rules` on the panels' queries (variables as their "All" value)."""
        rules = [
            {
                "record": f"panel:query_{i}",
                "expr": expr.replace("$job", ".*").replace("$namespace", ".*"),
            }
            for i, expr in enumerate(dashboard_expressions())
        ]
        file = tmp_path / "dashboard-queries.yml"
        file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        result = subprocess.run(
            [promtool(), "check", "rules", str(file)], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def test_every_metric_family_is_on_the_dashboard(self) -> None:
        """Nothing the services measure is left off the dashboard."""
        text = " ".join(dashboard_expressions())
        families = {name for name in known_series() if not name.endswith("_created")}
        shown = {
            name
            for name in families
            if re.search(rf"\b{name}\b", text)
            or re.search(rf"\b{re.sub(r'_(total|bucket|count|sum)$', '', name)}_", text)
        }
        assert families - shown == set()

    def test_panels_have_unique_ids_and_a_prometheus_datasource(self) -> None:
        """Grafana imports the file as is; the datasource is chosen with a variable."""
        document = json.loads(DASHBOARD.read_text())
        ids = [panel["id"] for panel in document["panels"]]
        assert len(ids) == len(set(ids))
        assert document["templating"]["list"][0]["query"] == "prometheus"
        assert all(p["datasource"]["uid"] == "${datasource}" for p in document["panels"])
