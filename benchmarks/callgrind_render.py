"""Rendering alone: the instructions of `render_email_bytes` per email, under callgrind.

    python -m benchmarks.callgrind_render --capture /tmp/emails.pickle --n 500 [--links]
    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.%p \
        .venv/bin/python -m benchmarks.callgrind_render --emails /tmp/emails.pickle --count 1000

`--capture` drains N NudgeDue of the notifier scenario's backlog in process (as
benchmarks/callgrind_notifier.py: the real NotifierService, counting channel) and pickles the
arguments of every `render_email_bytes` call: the benchmark's emails, or with `--links` those of
a production sender (public URL and a key: signed Message-ID, provider headers,
List-Unsubscribe, four one-tap answers and the manage link). `--emails` renders the first
COUNT of them with instrumentation on around the loop alone (callgrind's client requests):
run it with --count 200 and --count 1000, the difference / 800 is an email's instructions
(imports, unpickling and the first plans cancel). `--warm 200` renders the first 200
uninstrumented: a profile of the steady state alone (callgrind_annotate). The process token
and serials of mime.py are fixed, so `--digest` prints one SHA-256 over all the bytes: equal
across two trees means byte-identical emails. Not part of `make bench` nor of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import pickle
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvloop
from pydantic import SecretStr

from benchmarks.callgrind_notifier import (
    QUIET,
    START_INSTRUMENTATION,
    STOP_INSTRUMENTATION,
    ClientRequests,
    _backlog_apart,
    _drain,
)
from benchmarks.harness import PREFIX, private_server, quiet_logs
from benchmarks.notifier_proc import LINKS, CountingChannel
from couples_nudge.common.clock import ManualClock
from couples_nudge.notifier import delivery, mime
from couples_nudge.notifier.service import NotifierService
from couples_nudge.notifier.settings import NotifierSettings


def _capture(path: Path, n: int, links: bool) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    real: Callable[..., bytes] = getattr(delivery, "render_email_bytes")  # noqa: B009

    def recorded(view: Any, **kwargs: Any) -> bytes:
        calls.append((view, kwargs))
        return real(view, **kwargs)

    setattr(delivery, "render_email_bytes", recorded)  # noqa: B010 - not re-exported
    with private_server() as url:
        instant = _backlog_apart(url, n)
        settings = NotifierSettings(
            redis_url=SecretStr(url),
            key_prefix=PREFIX,
            max_in_flight=256,
            batch_size=200,
            retry_poll_seconds=QUIET,
            state_check_seconds=60.0,
            metrics_refresh_seconds=QUIET,
            reclaim_idle=timedelta(seconds=QUIET),
            **(LINKS if links else {}),  # type: ignore[arg-type]
        )
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        clock = ManualClock(instant + timedelta(seconds=5))
        service = NotifierService(settings, clock, {"email": CountingChannel()})
        loop.run_until_complete(_drain(service, n))
        loop.run_until_complete(service.stop())
        loop.close()
    path.write_bytes(pickle.dumps(calls))
    print(f"{len(calls)} emails captured")


def _render(path: Path, count: int, digest: bool, warm: int = 0) -> None:
    from couples_nudge.notifier.render import render_email_bytes

    calls = pickle.loads(path.read_bytes())[:count]  # noqa: S301 - our own capture
    mime._PROCESS_TOKEN = "0123456789abcdef"  # type: ignore[misc]  # noqa: S105 - a boundary
    mime._SERIALS = itertools.count(1 << 40)  # type: ignore[misc]
    requests = ClientRequests()
    out = [render_email_bytes(view, **kwargs) for view, kwargs in calls[:warm]]
    requests.request(START_INSTRUMENTATION)
    for view, kwargs in calls[warm:]:
        out.append(render_email_bytes(view, **kwargs))
    requests.request(STOP_INSTRUMENTATION)
    if digest:
        print(hashlib.sha256(b"\0".join(out)).hexdigest(), len(out))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callgrind_render")
    parser.add_argument("--capture", type=Path, help="drain and pickle the emails' arguments")
    parser.add_argument("--links", action="store_true", help="sign links as production does")
    parser.add_argument("--n", type=int, default=500, help="NudgeDue to drain (--capture)")
    parser.add_argument("--emails", type=Path, help="render a capture")
    parser.add_argument("--count", type=int, default=1000, help="emails to render (--emails)")
    parser.add_argument(
        "--warm", type=int, default=0, help="render the first WARM uninstrumented (a profile)"
    )
    parser.add_argument("--digest", action="store_true", help="print a SHA-256 of the bytes")
    a = parser.parse_args()
    quiet_logs()
    if a.capture:
        _capture(a.capture, a.n, a.links)
    elif a.emails:
        _render(a.emails, a.count, a.digest, a.warm)
    else:
        parser.error("--capture or --emails")


if __name__ == "__main__":
    main()
