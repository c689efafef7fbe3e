"""System tools some checks need (Debian packages), and what happens when one is missing.

On a machine with only Python and make, a check whose tool is missing is skipped with a
reason naming the tool and how to install it, and the run ends with a summary of the checks
not run (tests/conftest.py). With NUDGE_REQUIRE_TOOLS=1 (set by .ci/run, which installs the
tools) a missing tool fails the test instead: CI never skips these checks quietly.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NoReturn

import pytest

__all__ = ["REQUIRE_ENV", "TOOLS", "Tool", "not_run", "require_node_packages", "require_tool"]

REQUIRE_ENV: Final = "NUDGE_REQUIRE_TOOLS"


@dataclass(frozen=True, slots=True)
class Tool:
    commands: tuple[str, ...]  # the first one found on PATH is used
    package: str  # Debian package
    checks: str  # what is not checked without it


TOOLS: Final = {
    "chromium": Tool(
        ("chromium", "chromium-browser"),
        "chromium",
        "the status page and the demo calendar in a real browser",
    ),
    "promtool": Tool(("promtool",), "prometheus", "the Prometheus alert rules and their tests"),
    "redis-server": Tool(("redis-server",), "redis-server", "Redis over TLS with an ACL user"),
    "node": Tool(
        ("node", "nodejs"),
        "nodejs npm",
        "the AsyncAPI documents against the official AsyncAPI parser (npm @asyncapi/parser)",
    ),
    "valgrind": Tool(
        ("valgrind",),
        "valgrind",
        "instruction counts of ours against the code issue 20 started from (callgrind)",
    ),
    "spamassassin": Tool(
        ("spamassassin",),
        "spamassassin",
        "the emails' SpamAssassin scores (local tests, no network rules)",
    ),
    "docker-compose": Tool(
        ("docker-compose",),
        "docker-compose",
        "the compose files (`docker compose config`)",
    ),
}

_NOT_RUN: dict[str, int] = {}  # tool -> tests skipped for want of it, this run


def require_tool(name: str) -> str:
    """The path of tool `name`; else skip the test (or fail it with NUDGE_REQUIRE_TOOLS=1)."""
    tool = TOOLS[name]
    for command in tool.commands:
        if found := shutil.which(command):
            return found
    reason = (
        f"{name} is not installed, so {tool.checks} are not checked: install it with "
        f"`sudo apt-get install -y {tool.package}` (Debian/Ubuntu); .ci/run does, and sets "
        f"{REQUIRE_ENV}=1 so that it is required there"
    )
    return _missing(name, reason)


def require_node_packages(folder: Path, repo: Path) -> str:
    """node, with the npm packages of `folder` (a package.json and its lock) installed; else
    skip (or fail with NUDGE_REQUIRE_TOOLS=1) saying how to install them."""
    node = require_tool("node")
    if (folder / "node_modules").is_dir():
        return node
    where = folder.relative_to(repo)
    reason = (
        f"the npm packages of {where} are not installed, so "
        f"{TOOLS['node'].checks} are not checked: run "
        f"`npm ci --ignore-scripts --prefix {where}`; .ci/run does, and sets {REQUIRE_ENV}=1"
    )
    return _missing("node", reason)


def _missing(name: str, reason: str) -> NoReturn:
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(reason)
    _NOT_RUN[name] = _NOT_RUN.get(name, 0) + 1
    pytest.skip(reason)


def not_run() -> list[str]:
    """One line per missing tool: the checks not run, how many tests, how to enable them."""
    return [
        f"{name}: {TOOLS[name].checks} ({count} tests skipped); "
        f"`sudo apt-get install -y {TOOLS[name].package}` runs them"
        for name, count in sorted(_NOT_RUN.items())
    ]
