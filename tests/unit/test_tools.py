"""Checks that need a system tool skip loudly without it, and fail when tools are required."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import tools
from tests.support.events import REPO
from tests.support.tools import REQUIRE_ENV, require_node_packages, require_tool


@pytest.fixture
def bare_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds one empty folder: no tool is found; skips are not counted for this run."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(tools, "_NOT_RUN", {})
    return tmp_path


class TestRequireTool:
    def test_a_missing_tool_skips_with_the_tool_and_how_to_install_it(
        self, bare_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Without NUDGE_REQUIRE_TOOLS: a skip naming the tool, the package and the switch."""
        monkeypatch.delenv(REQUIRE_ENV, raising=False)
        with pytest.raises(pytest.skip.Exception) as skipped:
            require_tool("promtool")
        reason = str(skipped.value)
        assert "promtool is not installed" in reason
        assert "apt-get install -y prometheus" in reason
        assert REQUIRE_ENV in reason
        assert tools.not_run() == [
            "promtool: the Prometheus alert rules and their tests (1 tests skipped); "
            "`sudo apt-get install -y prometheus` runs them"
        ]

    def test_a_missing_tool_fails_when_tools_are_required(
        self, bare_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With NUDGE_REQUIRE_TOOLS=1 (CI) a missing tool fails the test."""
        monkeypatch.setenv(REQUIRE_ENV, "1")
        with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
            require_tool("chromium")
        assert tools.not_run() == []

    def test_a_tool_on_path_is_used(self, bare_path: Path) -> None:
        """The first of the tool's commands found on PATH is returned."""
        browser = bare_path / "chromium-browser"
        browser.write_text("#!/bin/sh\n")
        browser.chmod(0o755)
        assert require_tool("chromium") == str(browser)


class TestRequireNodePackages:
    @pytest.fixture
    def node(self, bare_path: Path) -> Path:
        """A `node` on PATH (the packages, not node, are what is missing here)."""
        found = bare_path / "node"
        found.write_text("#!/bin/sh\n")
        found.chmod(0o755)
        return found

    def test_missing_packages_skip_with_the_npm_command(
        self, node: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """node without the folder's node_modules: a skip saying which `npm ci` to run."""
        monkeypatch.delenv(REQUIRE_ENV, raising=False)
        folder = tmp_path / "tests/tools/asyncapi"
        folder.mkdir(parents=True)
        with pytest.raises(pytest.skip.Exception) as skipped:
            require_node_packages(folder, tmp_path)
        assert "npm ci --ignore-scripts --prefix tests/tools/asyncapi" in str(skipped.value)
        assert tools.not_run()[0].startswith("node: the AsyncAPI documents")

    def test_missing_packages_fail_when_tools_are_required(
        self, node: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With NUDGE_REQUIRE_TOOLS=1 (CI) missing packages fail the test."""
        monkeypatch.setenv(REQUIRE_ENV, "1")
        with pytest.raises(pytest.fail.Exception, match="npm packages of"):
            require_node_packages(tmp_path / "tools", tmp_path)

    def test_installed_packages_give_node(self, node: Path, tmp_path: Path) -> None:
        """With node_modules in place, the node found on PATH is returned."""
        (tmp_path / "tools/node_modules").mkdir(parents=True)
        assert require_node_packages(tmp_path / "tools", tmp_path) == str(node)


class TestRunWithoutTools:
    def test_the_suite_passes_without_promtool_and_says_what_it_did_not_check(
        self, tmp_path: Path
    ) -> None:
        """A pytest run without promtool on PATH passes, with the summary of checks not run;
        the same run with NUDGE_REQUIRE_TOOLS=1 fails."""
        env = {k: v for k, v in os.environ.items() if k != REQUIRE_ENV}
        env["PATH"] = str(tmp_path)
        args = [sys.executable, "-m", "pytest", "-q", "tests/unit/test_deploy.py"]
        relaxed = subprocess.run(
            args, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        print(relaxed.stdout[-600:])
        assert relaxed.returncode == 0, relaxed.stdout[-2000:]
        assert "checks not run: missing tools" in relaxed.stdout
        assert "promtool: the Prometheus alert rules" in relaxed.stdout
        assert "3 skipped" in relaxed.stdout  # the rules, their tests, the dashboard queries

        strict = subprocess.run(
            args,
            cwd=REPO,
            env={**env, REQUIRE_ENV: "1"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert strict.returncode == 1, strict.stdout[-2000:]
        assert "3 failed" in strict.stdout
