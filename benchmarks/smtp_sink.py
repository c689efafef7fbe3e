"""The local SMTP server the notifier scenario sends email into, in its own process.

Two real SMTP servers, one interface (`port`, `received()` after the run):
- Postfix's `smtp-sink` (Debian package `postfix`; its daemon need not run): the SMTP test
  server Postfix is benchmarked with, written in C, so on a 2-core machine it leaves the CPU to
  the notifier, as a production relay on its own host would. Used when it is installed.
- MailCatcher (aiosmtpd, the demo's server): Python, so it competes with the notifier for the
  same two cores; used otherwise, or when asked for.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from couples_nudge.embedded.valkey import free_port

__all__ = ["SmtpSink", "available"]

Kind = Literal["smtp-sink", "mailcatcher"]
_REPO = Path(__file__).resolve().parents[1]
_MAILCATCHER = """
import sys
from couples_nudge.embedded.mailcatcher import MailCatcher
with MailCatcher() as mail:
    print(mail.port, flush=True)
    sys.stdin.readline()
    print(mail.count, flush=True)
"""
_COUNT = re.compile(rb"mesg=(\d+)")


def _smtp_sink_binary() -> str | None:
    return shutil.which("smtp-sink") or next(
        (p for p in ("/usr/sbin/smtp-sink", "/usr/lib/postfix/smtp-sink") if os.access(p, os.X_OK)),
        None,
    )


def available() -> Kind:
    """The server the scenario uses by default: smtp-sink when installed, else MailCatcher."""
    return "smtp-sink" if _smtp_sink_binary() else "mailcatcher"


class SmtpSink:
    def __init__(self, kind: Kind) -> None:
        self.kind = kind
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  (closed in __exit__)

    @property
    def label(self) -> str:
        return "Postfix smtp-sink" if self.kind == "smtp-sink" else "MailCatcher"

    def __enter__(self) -> Self:
        if self.kind == "smtp-sink":
            binary = _smtp_sink_binary()
            if binary is None:
                raise RuntimeError("smtp-sink is not installed (Debian: apt-get install postfix)")
            self.port = free_port()
            user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it refuses to run as root
            # -c: counters on stdout ("mesg=N"), read when the run is over.
            self._proc = subprocess.Popen(
                [binary, "-c", *user, f"127.0.0.1:{self.port}", "512"],
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            _wait_listening(self.port)
        else:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _MAILCATCHER],
                cwd=_REPO,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
            )
            assert self._proc.stdout is not None
            self.port = int(self._proc.stdout.readline())
        return self

    def received(self) -> int:
        """Emails the server accepted so far (stops it: call once, after the run)."""
        assert self._proc is not None
        if self.kind == "mailcatcher":
            assert self._proc.stdin is not None
            assert self._proc.stdout is not None
            self._proc.stdin.write(b"\n")
            self._proc.stdin.flush()
            return int(self._proc.stdout.readline())
        time.sleep(0.2)  # its counter line is written as the last message completes
        self._proc.terminate()
        self._proc.wait(timeout=10)
        self._log.seek(0)
        counts = _COUNT.findall(self._log.read())
        return int(counts[-1]) if counts else 0

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
        if self._proc is not None:
            self._proc.wait(timeout=60)
        self._log.close()


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"no SMTP server listening on port {port}")
