"""Instructions an event and a message, ours against the code issue 20 started from (callgrind).

    python -m benchmarks.callgrind_reference [--warm 1000] [--n 4000] [--nudges 500 1500]

Why: `reference` compares rates in the same minutes, which cancels the machine's load but not
the machine. The same two trees gave ingestion ratios of 1.45-1.98x on one 2-core AMD machine
and 1.43-1.49x on another (docs/performance.md): each machine runs some instructions faster
than others, and the two trees are made of different instructions. An instruction count is
the same on every x86-64 machine, whatever it is doing; so the ratio of counts tells what the
code's work is, apart from how a machine runs it.

How: each tree's own `SchedulerService.handle_batch` (both trees have it: entry id and stored
payload, validated, applied with `apply_many`, XDEL + XACK) gets batches of 500 realistic
events, read ahead from the stream by its own `benchmarks.burst._enqueue`; `--warm` events
first (memo and caches warm), then `--n` with callgrind's instrumentation on around those
batches alone (`callgrind_control -i on/off`, as `benchmarks.callgrind_ingest` does). Each tree
runs in a process of this interpreter under `valgrind --tool=callgrind --instr-atstart=no`,
with its cwd and PYTHONPATH as `reference.probe` sets them, on a private server of its own;
the two run at once (a count does not depend on load). Instructions per event = callgrind's
total / N. What it leaves out: FastStream's XREADGROUP and the subscriber's loop (the same
library in both trees), and Redis's own work.

The notifier likewise, as `benchmarks.callgrind_notifier` counts ours: each tree's own
scheduler writes a backlog of NudgeDue (its `notifier._backlog`, burst mix, two emails each)
from a child process (valgrind does not follow it), then its own `NotifierService` drains it
into its own counting channel on uvloop, instrumented from `start()` until the last NudgeDue
is handled and its acknowledgement answered. The background loops get their longest periods
where the tree has the setting. Two sizes (`--nudges`, 500 and 1,500) cancel the start-up: a
message is the difference of the two counts over the difference of the messages.

Python runs ~50x slower under valgrind: ~100 s at the default sizes on a 2-core machine, all
six processes at once. `make bench`'s `reference` scenario ends with these counts
(`reference.instruction_rows`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Final, NamedTuple

from benchmarks.reference import (
    INGEST_ISSUE,
    LABEL,
    NOTIFIER_ISSUE,
    IssueFigure,
    ReferenceTree,
    ours,
    reference_tree,
)

__all__ = ["Count", "count_both", "count_notifiers", "totals"]

# Run by `python -c` in the tree measured (cwd), under callgrind: its own benchmarks and
# services. The moving clock is `burst.moving_clock` here and `burst._moving_clock` there.
DRIVER: Final = """
import asyncio, json, os, subprocess, sys
import couples_nudge
from benchmarks import burst
from benchmarks.harness import couple_event, private_server, quiet_logs, scheduler_settings
from couples_nudge.common.runtime import settle_heap
from couples_nudge.scheduler.service import SchedulerService
quiet_logs()
warm, n = int(sys.argv[1]), int(sys.argv[2])
clock = getattr(burst, "moving_clock", None) or getattr(burst, "_moving_clock")
def instrument(on):
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   check=False, capture_output=True)
async def drain(url):
    settings = scheduler_settings(url)
    service = SchedulerService(settings, clock())
    await service.before_start()
    stream = settings.keys.preferences
    raws = [couple_event(i, mix="realistic", occurred=burst.START) for i in range(warm + n)]
    first = await burst._enqueue(service.redis, stream, raws[:warm], read=True)
    for i in range(0, len(first), 500):
        await service.handle_batch(first[i:i + 500])
    rest = await burst._enqueue(service.redis, stream, raws[warm:], read=True)
    settle_heap()
    instrument(True)
    for i in range(0, len(rest), 500):
        await service.handle_batch(rest[i:i + 500])
    instrument(False)
    left = await service.redis.xlen(stream)
    await service.redis.aclose()
    return left
with private_server() as url:
    left = asyncio.run(drain(url))
assert left == 0, left
print(json.dumps({"code": couples_nudge.__file__, "events": n}))
"""

# The notifier's drain, run likewise (argument: NudgeDue). The backlog is written by a child
# process in the same tree; settings the tree does not have are left out.
NOTIFIER_DRIVER: Final = """
import asyncio, json, os, subprocess, sys
from datetime import datetime, timedelta
import uvloop
from pydantic import SecretStr
import couples_nudge
from benchmarks.harness import PREFIX, private_server, quiet_logs
from benchmarks.notifier_proc import CountingChannel
from couples_nudge.common.clock import ManualClock
from couples_nudge.common.runtime import settle_heap
from couples_nudge.notifier.service import NotifierService
from couples_nudge.notifier.settings import NotifierSettings
quiet_logs()
n = int(sys.argv[1])
BACKLOG = (
    "import asyncio, sys\\n"
    "from benchmarks.harness import quiet_logs\\n"
    "from benchmarks.notifier import _backlog\\n"
    "quiet_logs()\\n"
    "print(asyncio.run(_backlog(sys.argv[1], int(sys.argv[2]))).isoformat())\\n"
)
QUIET = 3600.0
def instrument(on):
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())],
                   check=False, capture_output=True)
async def drain(service):
    await service.start()
    while service.delivered < n:
        await asyncio.sleep(0.005)
    await service.pipe.drain()
with private_server() as url:
    done = subprocess.run([sys.executable, "-c", BACKLOG, url, str(n)],
                          check=True, capture_output=True, text=True)
    instant = datetime.fromisoformat(done.stdout.strip().splitlines()[-1])
    wanted = dict(redis_url=SecretStr(url), key_prefix=PREFIX, max_in_flight=256,
                  batch_size=200, retry_poll_seconds=QUIET, state_check_seconds=60.0,
                  metrics_refresh_seconds=QUIET, reclaim_idle=timedelta(seconds=QUIET))
    settings = NotifierSettings(
        **{k: v for k, v in wanted.items() if k in NotifierSettings.model_fields})
    counter = CountingChannel()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    service = NotifierService(settings, ManualClock(instant + timedelta(seconds=5)),
                              {"email": counter})
    settle_heap()
    instrument(True)
    loop.run_until_complete(drain(service))
    instrument(False)
    loop.run_until_complete(service.stop())
    loop.close()
assert counter.count == 2 * n, (counter.count, n)
print(json.dumps({"code": couples_nudge.__file__, "events": counter.count}))
"""

# callgrind writes "summary:" near the top and "totals:" at the end; with instrumentation off
# at the start, its summary reads 0 and only the totals hold the count.
_TOTALS: Final = re.compile(rb"^totals:\s*(\d+)", re.MULTILINE)


class Count(NamedTuple):
    """What callgrind counted for one tree."""

    instructions: int  # while instrumentation was on: the counted batches alone
    events: int  # realistic events, or the notifier's messages
    code: str  # the file `couples_nudge` was imported from: the tree really measured

    @property
    def per_event(self) -> float:
        return self.instructions / self.events


def totals(out: bytes) -> int:
    """The instruction total in a callgrind output file (its "totals:" line)."""
    found = _TOTALS.search(out)
    if found is None:
        raise ValueError("no totals line in the callgrind output")
    return int(found.group(1))


def _start(tree: ReferenceTree, driver: str, args: list[int], out: Path) -> subprocess.Popen[str]:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-c",
        driver,
        *map(str, args),
    ]
    env = {**os.environ, "PYTHONPATH": tree.pythonpath}
    return subprocess.Popen(
        command,
        cwd=tree.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen[str], out: Path, what: str) -> Count:
    stdout, stderr = process.communicate(timeout=1800)
    if process.returncode != 0:
        raise RuntimeError(f"{what} under callgrind failed: {stderr.strip()[-400:]}")
    found = json.loads(stdout.strip().splitlines()[-1])
    return Count(totals(out.read_bytes()), int(found["events"]), str(found["code"]))


def _finish_all(running: list[tuple[subprocess.Popen[str], Path, str]]) -> list[Count]:
    """Each process's count, in order; if one fails, the others are killed, not left running."""
    try:
        return [_finish(process, out, what) for process, out, what in running]
    finally:
        for process, _out, _what in running:
            if process.poll() is None:
                process.kill()
                process.wait()


def _need_valgrind() -> None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise RuntimeError("valgrind is not installed: `sudo apt-get install -y valgrind`")


def count_both(reference: ReferenceTree, warm: int, n: int) -> tuple[Count, Count]:
    """(ours, theirs): each tree's instructions over `n` realistic events, counted at once."""
    _need_valgrind()
    with tempfile.TemporaryDirectory() as tmp:
        outs = (Path(tmp) / "ours.out", Path(tmp) / "theirs.out")
        trees = ((ours(), "ours"), (reference, LABEL))
        mine, theirs = _finish_all(
            [
                (_start(tree, DRIVER, [warm, n], out), out, what)
                for (tree, what), out in zip(trees, outs, strict=True)
            ]
        )
    return mine, theirs


def count_notifiers(reference: ReferenceTree, small: int, large: int) -> tuple[Count, Count]:
    """(ours, theirs): each tree's instructions a message, from its drains of `small` and
    `large` NudgeDue (the difference: start-up cancels), all four counted at once."""
    _need_valgrind()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [
            (tree, size, Path(tmp) / f"{name}-{size}.out")
            for name, tree in (("ours", ours()), ("theirs", reference))
            for size in (small, large)
        ]
        counts = _finish_all(
            [
                (
                    _start(tree, NOTIFIER_DRIVER, [size], out),
                    out,
                    f"the notifier of {tree.root.name}, {size} NudgeDue",
                )
                for tree, size, out in runs
            ]
        )
    mine = Count(
        counts[1].instructions - counts[0].instructions,
        counts[1].events - counts[0].events,
        counts[0].code,
    )
    theirs = Count(
        counts[3].instructions - counts[2].instructions,
        counts[3].events - counts[2].events,
        counts[2].code,
    )
    return mine, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--warm", type=int, default=1000, help="events drained uncounted first")
    parser.add_argument("--n", type=int, default=4000, help="events counted")
    parser.add_argument(
        "--nudges", type=int, nargs=2, default=(500, 1500), help="the two notifier drains"
    )
    parser.add_argument("--no-notifier", action="store_true", help="ingestion alone")
    args = parser.parse_args()
    reference = reference_tree()
    if isinstance(reference, str):
        sys.exit(f"the reference tree cannot be made here: {reference}")
    mine, theirs = count_both(reference, args.warm, args.n)
    _print(
        f"a realistic event ({args.n:,} counted after {args.warm:,})", mine, theirs, INGEST_ISSUE
    )
    if not args.no_notifier:
        small, large = args.nudges
        mine, theirs = count_notifiers(reference, small, large)
        _print(
            f"a notifier message ({large:,} NudgeDue less {small:,})", mine, theirs, NOTIFIER_ISSUE
        )


def _print(what: str, mine: Count, theirs: Count, issue: IssueFigure) -> None:
    print(f"instructions in {what}:")
    print(f"  ours                        {mine.per_event / 1000:8.1f}k  ({mine.code})")
    print(f"  {LABEL:<27} {theirs.per_event / 1000:8.1f}k  ({theirs.code})")
    target = issue.target / issue.measured
    ratio = theirs.per_event / mine.per_event
    print(f"  theirs / ours               {ratio:8.2f}x  (the target as a ratio: {target:.2f}x)")


if __name__ == "__main__":
    main()
