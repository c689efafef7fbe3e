"""Service processes for fault tests: started, killed (SIGKILL) and stopped (SIGTERM) for real;
optionally as PID 1 of a PID namespace of their own, as a container's entry point runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from tests.support.events import REPO

# `unshare` (util-linux) runs the command as PID 1 of a new PID namespace (needs root), and
# SIGKILLs it when unshare itself is killed.
PID_ONE: tuple[str, ...] = ("unshare", "--fork", "--pid", "--mount-proc", "--kill-child")


def pid_one_available() -> bool:
    """This machine can start a process as PID 1 of its own namespace (root and util-linux)."""
    try:
        done = subprocess.run([*PID_ONE, "true"], capture_output=True, timeout=30, check=False)
    except FileNotFoundError:
        return False
    return done.returncode == 0


def _status(pid: int, field: str) -> list[str]:
    """The values of one line of /proc/PID/status (`SigCgt`, `NSpid`...)."""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    (values,) = (line.split()[1:] for line in lines if line.startswith(f"{field}:"))
    return values


def catches(pid: int, signum: int) -> bool:
    """Process `pid` has a handler for `signum` (its SigCgt mask)."""
    return bool(int(_status(pid, "SigCgt")[0], 16) >> (signum - 1) & 1)


def pid_inside(pid: int) -> int:
    """Process `pid`'s id in its innermost PID namespace (1: it is that namespace's init)."""
    return int(_status(pid, "NSpid")[-1])


class ServiceProcess:
    """`python -m couples_nudge <role>` with its own environment; output goes to a log file."""

    def __init__(
        self, role: str, env: dict[str, str], log_dir: Path, name: str, *, pid_one: bool = False
    ) -> None:
        self.role = role
        self.pid_one = pid_one
        self.env = {**os.environ, "NUDGE_LOG_LEVEL": "warning", **env}
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self._log = self.log_path.open("ab")
        self._proc = subprocess.Popen(
            [*(PID_ONE if self.pid_one else ()), sys.executable, "-m", "couples_nudge", self.role],
            env=self.env,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        return self

    @property
    def pid(self) -> int:
        """The service's process id (seen from here): with `pid_one`, unshare's child, once it
        runs Python."""
        assert self._proc is not None
        if not self.pid_one:
            return self._proc.pid
        children = Path(f"/proc/{self._proc.pid}/task/{self._proc.pid}/children")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for child in children.read_text().split():
                if b"couples_nudge" in Path(f"/proc/{child}/cmdline").read_bytes():
                    return int(child)
            time.sleep(0.001)
        raise AssertionError("unshare started no service process")

    def kill(self) -> None:
        """kill -9: no shutdown code runs, in-flight work is abandoned mid-way."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGKILL)
        self._proc.wait(timeout=10)
        self._close()

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait: returns the exit code (0 for a graceful shutdown)."""
        assert self._proc is not None
        if self._proc.poll() is None:  # stopped already (a second call): its code, as before
            os.kill(self.pid, signal.SIGTERM)
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
