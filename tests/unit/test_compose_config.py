"""The compose files as Docker Compose itself reads them (`docker compose config`), where a
compose binary exists: the Docker CLI's plugin or a standalone docker-compose (Debian's
`docker-compose` reads them without a Docker engine; .ci/run installs it and requires it)."""

from __future__ import annotations

import os
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


# What an operator's .env must give (the notifier refuses to start the stack without it).
DOT_ENV = {"NUDGE_UNSUBSCRIBE_SECRETS": "k1:" + "x" * 32}


def _config(path: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*compose(), "-f", str(REPO / path), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if k not in DOT_ENV} | env,
    )


@pytest.mark.parametrize("path", COMPOSE_FILES)
def test_compose_accepts_the_file(path: str) -> None:
    """`docker compose -f FILE config --quiet` exits 0 with the .env an operator writes."""
    done = _config(path, DOT_ENV)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("path", COMPOSE_FILES)
def test_compose_asks_for_the_unsubscribe_secret(path: str) -> None:
    """Without NUDGE_UNSUBSCRIBE_SECRETS, compose stops and says what to set."""
    done = _config(path, {})
    assert done.returncode != 0
    assert "NUDGE_UNSUBSCRIBE_SECRETS" in done.stderr
