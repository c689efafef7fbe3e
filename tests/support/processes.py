"""Service processes for fault tests: started, killed (SIGKILL) and stopped (SIGTERM) for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from tests.support.events import REPO


class ServiceProcess:
    """`python -m couples_nudge <role>` with its own environment; output goes to a log file."""

    def __init__(self, role: str, env: dict[str, str], log_dir: Path, name: str) -> None:
        self.role = role
        self.env = {**os.environ, "NUDGE_LOG_LEVEL": "warning", **env}
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "couples_nudge", self.role],
            env=self.env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    def kill(self) -> None:
        """kill -9: no shutdown code runs, in-flight work is abandoned mid-way."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=10)
        self._close()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait: returns the exit code (0 for a graceful shutdown)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        code = self._proc.wait(timeout=timeout)
        self._close()
        return code

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.alive():
            self.kill()
