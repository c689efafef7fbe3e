"""The `nudge` command line run for real: a subprocess, its exit code, stdout and stderr."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass

from tests.support.events import REPO

# Settings a developer may have exported; every CLI test states its own environment.
AMBIENT = ("REDIS_URL", "NUDGE_REDIS_URL", "NUDGE_KEY_PREFIX", "NUDGE_SHARDS", "NUDGE_DEBUG")


@dataclass(frozen=True, slots=True)
class Ran:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def cli_env(**settings: str) -> dict[str, str]:
    """The test process's environment without ambient NUDGE_* settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if k not in AMBIENT}
    return {**env, "NUDGE_LOG_LEVEL": "warning", "COLUMNS": "100", **settings}


def nudge(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> Ran:
    """`python -m couples_nudge ARGS` with stdin closed (not a terminal), as in a script or CI."""
    done = subprocess.run(
        [sys.executable, "-m", "couples_nudge", *args],
        cwd=REPO,
        env=cli_env() if env is None else env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
