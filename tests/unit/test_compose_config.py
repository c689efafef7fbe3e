"""The compose files as Docker Compose itself reads them (`docker compose config`), where a
compose binary exists: the Docker CLI's plugin or a standalone docker-compose. CI has neither,
so there these tests are skipped (loudly: the run's "checks not run" summary lists them)."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.support.events import REPO
from tests.support.tools import require_tool

COMPOSE_FILES = ["docker-compose.yml", "deploy/cluster/docker-compose.yml"]


def compose() -> list[str]:
    """`docker compose` when the plugin answers, else docker-compose, else skip."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = subprocess.run(
            [docker, "compose", "version"], capture_output=True, timeout=30, check=False
        )
        if probe.returncode == 0:
            return [docker, "compose"]
    return [require_tool("docker-compose")]


@pytest.mark.parametrize("path", COMPOSE_FILES)
def test_compose_accepts_the_file(path: str) -> None:
    """`docker compose -f FILE config --quiet` exits 0: the file is valid Compose."""
    done = subprocess.run(
        [*compose(), "-f", str(REPO / path), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
