"""A process held to a small CPU share, as a container's CPU quota holds it (cgroup CFS).

The kernel's CFS bandwidth control lets a throttled container run for its quota in each
100 ms period and then stops it until the next one. `CpuQuota` does the same to one process
with SIGSTOP and SIGCONT from a thread: it runs for `share` of every `period`, then is stopped
for the rest. Fault tests use it to make a scheduler's batch last several
`NUDGE_RECLAIM_IDLE` periods honestly, the way a starved pod's would, instead of relying on
some input being slow to plan.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time

__all__ = ["CpuQuota"]


class CpuQuota:
    def __init__(self, pid: int, *, share: float, period: float = 0.1) -> None:
        if not 0 < share < 1:
            raise ValueError("share is the fraction of each period the process may run")
        self.pid = pid
        self.period = period
        self.share = share  # may be changed while it runs: read at every period
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._cycle, name=f"cpu-quota-{pid}", daemon=True)
        self.periods = 0

    def _signal(self, sig: signal.Signals) -> bool:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:  # the process ended: nothing left to throttle
            return False
        return True

    def _cycle(self) -> None:
        try:
            while not self._done.is_set():
                running_for = self.period * self.share
                if not self._signal(signal.SIGSTOP):
                    return
                self._done.wait(self.period - running_for)
                if not self._signal(signal.SIGCONT):
                    return
                self.periods += 1
                time.sleep(running_for)
        finally:
            self._signal(signal.SIGCONT)  # never leave the process stopped

    def __enter__(self) -> CpuQuota:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join(timeout=5)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGCONT)
