"""One notifier process for the benchmarks: the real NotifierService, in its own interpreter.

Run by the notifier scenario as a subprocess:
    python -m benchmarks.notifier_proc URL --now-ms MS [--smtp-port PORT]
It builds the service (a counting channel for email, or real SMTP to PORT), prints "ready",
starts consuming when it reads "go", stops when it reads "stop" (stop() lets deliveries in
flight finish), then prints one JSON line: messages it handed to the channel, CPU seconds (user
and system), peak RSS growth. Several of these share one consumer group, as replicas do in
production.

With BENCH_PROFILE_DIR set, each process profiles its drain with pyinstrument (the `bench`
extra) and writes `notifier-<pid>.txt` there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from pydantic import SecretStr

from benchmarks.harness import PREFIX, quiet_logs
from couples_nudge.common.clock import ManualClock
from couples_nudge.common.runtime import settle_heap
from couples_nudge.notifier.channels.base import Outgoing, RecordingChannel
from couples_nudge.notifier.service import NotifierService
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.runner import run


class CountingChannel(RecordingChannel):
    """A RecordingChannel that keeps a count, not the messages: memory stays the notifier's."""

    count: int = 0

    async def send(self, message: Outgoing) -> None:
        self.count += 1


def _profiler() -> Any:
    if not os.environ.get("BENCH_PROFILE_DIR"):
        return None
    import pyinstrument

    profiler = pyinstrument.Profiler(interval=0.0005)
    profiler.start()
    return profiler


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --links: what a production notifier signs into every email (a Message-ID, the unsubscribe
# link, four one-tap answers and the manage link), with a made-up key of the minimum length.
LINKS: Final = {
    "public_url": "https://nudges.example",
    "unsubscribe_secrets": [SecretStr("bench:" + "k" * 32)],
}


async def main(
    url: str, now_ms: int, smtp_port: int | None, in_flight: int, links: bool = False
) -> None:
    quiet_logs()
    settings = NotifierSettings(
        redis_url=SecretStr(url),
        key_prefix=PREFIX,
        smtp_port=smtp_port or 1025,
        smtp_concurrency=16,  # notifier.SMTP_CONCURRENCY
        max_in_flight=in_flight,
        batch_size=200,
        **(LINKS if links else {}),  # type: ignore[arg-type]
    )
    counter = CountingChannel()
    channels = None if smtp_port else {"email": counter}
    clock = ManualClock(datetime.fromtimestamp(now_ms / 1000, UTC))
    service = NotifierService(settings, clock, channels)  # type: ignore[arg-type]
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)  # "go"
    rss0, peak = rss_kib(), 0
    settle_heap()  # as `nudge notifier` does before it starts (services/runner.py)
    profiler = _profiler()
    cpu0 = time.process_time()
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    await service.start()
    line = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))  # "stop"
    while not line.done():
        peak = max(peak, rss_kib() - rss0)
        await asyncio.sleep(0.1)
    await service.stop()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    if profiler is not None:
        profiler.stop()
        out = Path(os.environ["BENCH_PROFILE_DIR"]) / f"notifier-{os.getpid()}.txt"
        out.write_text(profiler.output_text(unicode=False, color=False))
    result = {
        "handled": service.delivered,
        "counted": counter.count,
        "cpu_s": time.process_time() - cpu0,
        # The kernel's share (socket writes to Redis): a pipeline's bytes cost system time.
        "sys_s": usage.ru_stime - usage0.ru_stime,
        "user_s": usage.ru_utime - usage0.ru_utime,
        "peak_rss_growth_mib": peak / 1024,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--now-ms", type=int, required=True)
    parser.add_argument("--smtp-port", type=int)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--links", action="store_true", help="sign links as production does")
    a = parser.parse_args()
    run(main(a.url, a.now_ms, a.smtp_port, a.in_flight, a.links))
