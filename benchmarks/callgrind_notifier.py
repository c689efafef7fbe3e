"""The notifier's instructions per message: an in-process drain to run under callgrind.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.%p \
        .venv/bin/python -m benchmarks.callgrind_notifier --n 500

N NudgeDue (the notifier scenario's backlog: benchmarks/notifier.py, burst mix, two partners
with email; written by a child process, which valgrind does not follow) are drained by the real
NotifierService into the scenario's counting channel, 256 in flight, batches of 200, the heap
settled first (as benchmarks/notifier_proc.py). Only the drain is instrumented, switched on and
off by callgrind's client requests (`ClientRequests`): from `service.start()` until the last
NudgeDue is handled and its acknowledgement answered; imports, the backlog and `stop()` are not
counted. Run it with --n 500 and --n 1500: the difference / 2,000 messages is a message's
instructions (start-up cancels). The retry, state-check and gauge loops get their longest
periods: with the defaults, how often they poll depends on the drain's wall time under valgrind
(set by the machine's load) and moves a message's count by thousands between runs.

--stub-render hands every send one cached message per partner role and channel (locating the
cost outside rendering only; the scenario's figures are with the real render). Without
valgrind it runs as well and prints the drain's wall and CPU time. It prints counts and times
only. Not part of `make bench` nor of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import mmap
import platform
import subprocess
import sys
import time
from datetime import datetime, timedelta
from typing import Any, Final

import uvloop
from pydantic import SecretStr

from benchmarks.harness import PREFIX, private_server, quiet_logs
from benchmarks.notifier import _backlog
from benchmarks.notifier_proc import CountingChannel
from couples_nudge.common.clock import ManualClock
from couples_nudge.common.runtime import settle_heap
from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.delivery import Delivery
from couples_nudge.notifier.service import NotifierService
from couples_nudge.notifier.settings import NotifierSettings

QUIET = 3600.0  # seconds between polls of the background loops (state checks: their maximum)
# callgrind.h: VG_USERREQ_TOOL_BASE('C', 'T') + 4 and + 5.
START_INSTRUMENTATION: Final = 0x4354_0004
STOP_INSTRUMENTATION: Final = 0x4354_0005
# valgrind.h's client request on amd64, as a function of the request's 6-word block (rdi):
# rax = block, rdx = 0 (the answer outside valgrind), the rotations of rdi by 128 bits in all
# (valgrind's marker: a no-op on a CPU), xchg rbx, rbx (the request), return rdx.
_REQUEST_CODE: Final = bytes.fromhex("4889f831d248c1c70348c1c70d48c1c73d48c1c7334887db4889d0c3")


class ClientRequests:
    """callgrind's START/STOP_INSTRUMENTATION from Python (x86-64 Linux): the machine code of
    valgrind.h's macro in an executable page, called through ctypes. Outside valgrind the
    sequence does nothing and answers 0."""

    def __init__(self) -> None:
        if platform.machine() not in ("x86_64", "AMD64"):
            raise SystemExit("callgrind client requests: x86-64 only (use --toggle-collect)")
        prot = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
        self._page = mmap.mmap(-1, mmap.PAGESIZE, prot=prot)
        self._page.write(_REQUEST_CODE)
        address = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        call = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.POINTER(ctypes.c_uint64))
        self._call = call(address)

    def request(self, code: int) -> int:
        block = (ctypes.c_uint64 * 6)(code, 0, 0, 0, 0, 0)
        return int(self._call(block))


def _stub_render() -> None:
    """Delivery._render answers from a cache keyed by the partner's place in the couple and
    the channel: one message each, rendered once."""
    real = Delivery._render
    cache: dict[tuple[bool, str], Outgoing] = {}

    def cached(self: Delivery, nudge: Any, couple: Any, partner: Any, item: Any, send: Any,
               now: Any, jar_idea: str | None = None) -> Outgoing:  # fmt: skip
        key = (partner.partner_id == couple.profile.partners[0].partner_id, send.channel)
        found = cache.get(key)
        if found is None:
            found = cache[key] = real(self, nudge, couple, partner, item, send, now, jar_idea)
        return found

    Delivery._render = cached  # type: ignore[method-assign]


async def _drain(service: NotifierService, n: int) -> None:
    """Start the service; return once N NudgeDue are handled and acknowledged."""
    await service.start()
    while service.delivered < n:  # noqa: ASYNC110 - the service has no event for "N handled"
        await asyncio.sleep(0.005)
    await service.pipe.drain()


def _backlog_apart(url: str, n: int) -> datetime:
    """The backlog, written by a child process (valgrind does not follow it: faster)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.callgrind_notifier", "--backlog", url, "--n", str(n)],
        check=True,
        capture_output=True,
        text=True,
    )
    return datetime.fromisoformat(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind_notifier")
    parser.add_argument("--n", type=int, default=500, help="NudgeDue to drain (2 messages each)")
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--stub-render", action="store_true", help="one message per partner")
    parser.add_argument("--backlog", metavar="URL", help=argparse.SUPPRESS)  # _backlog_apart
    a = parser.parse_args()
    quiet_logs()
    if a.backlog:
        print(asyncio.run(_backlog(a.backlog, a.n)).isoformat())
        return
    if a.stub_render:
        _stub_render()
    with private_server() as url:
        instant = _backlog_apart(url, a.n)
        settings = NotifierSettings(
            redis_url=SecretStr(url),
            key_prefix=PREFIX,
            max_in_flight=a.in_flight,
            batch_size=200,
            retry_poll_seconds=QUIET,
            state_check_seconds=60.0,
            metrics_refresh_seconds=QUIET,
            reclaim_idle=timedelta(seconds=QUIET),
        )
        counter = CountingChannel()
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        clock = ManualClock(instant + timedelta(seconds=5))
        service = NotifierService(settings, clock, {"email": counter})
        requests = ClientRequests()
        settle_heap()  # as `nudge notifier` and benchmarks/notifier_proc.py do before start
        wall, cpu = time.perf_counter(), time.process_time()
        requests.request(START_INSTRUMENTATION)
        loop.run_until_complete(_drain(service, a.n))
        requests.request(STOP_INSTRUMENTATION)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        loop.run_until_complete(service.stop())
        loop.close()
    print(
        f"nudges {service.delivered} messages {counter.count} wall {wall:.3f} s "
        f"cpu {cpu:.3f} s ({cpu / max(1, counter.count) * 1e6:.1f} us a message)"
    )


if __name__ == "__main__":
    main()
