"""The `nudge` console script and `python -m couples_nudge`: the command line, started so that
a container's SIGTERM is never lost.

In a container the entry point is PID 1, and the kernel delivers to PID 1 only the signals it
has a handler for: the default action (terminate) does not apply. The services' handler is the
event loop's (services/runner.py), installed once the imports and the settings are done, about
a second after start. A SIGTERM in that second (a rollout that replaces a pod just started,
`docker stop` right after `docker start`) was dropped: the service then ran on, and the runtime
killed it after its grace period. So, as PID 1, this module installs a handler before anything
else is imported; it exits at once (code 0: nothing has started, so nothing is in flight) until
the event loop's handler takes over. This module imports nothing heavy on purpose.
"""

from __future__ import annotations

import os
import signal
from types import FrameType
from typing import NoReturn

__all__ = ["main", "stop_before_start"]


def stop_before_start(signum: int, frame: FrameType | None) -> NoReturn:
    """SIGTERM before the service started: exit now, as a process that is not PID 1 would."""
    raise SystemExit(0)


def main() -> None:
    if os.getpid() == 1:
        signal.signal(signal.SIGTERM, stop_before_start)
    from couples_nudge.cli import app

    app(prog_name="nudge")
