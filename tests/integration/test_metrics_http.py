"""/metrics on both services: what happened (counters, histograms) and how Redis stands (gauges)."""

from __future__ import annotations

import platform
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import NOTIFIER_GROUP, Keys
from couples_nudge.common.metrics import Metrics
from couples_nudge.common.streams import DATA_FIELD
from couples_nudge.notifier.channels.base import RecordingChannel
from couples_nudge.notifier.service import NotifierService
from couples_nudge.operator.refresher import GaugeRefresher
from couples_nudge.scheduler.service import SchedulerService
from tests.support.events import preferences
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

# Tuesday 1 December 2026; maya-and-sam's date night is Fridays 19:00 Europe/Berlin (18:00Z).
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FIRST_DATE_NIGHT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(url: str) -> Samples:
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): float(sample.value)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def registry_samples(metrics: Metrics) -> Samples:
    """Samples straight from a registry (no HTTP side needed)."""
    return {
        (sample.name, frozenset(sample.labels.items())): float(sample.value)
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
    }


class TestSchedulerMetrics:
    async def test_consumed_rejected_fired_and_lateness_are_exported(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A good and a bad event, then a date night 30 s late: counters and the histogram."""
        clock = ManualClock(START)
        service = SchedulerService(
            scheduler_settings(
                redis_url, key_prefix, http_port=0, max_poll_seconds=0.02,
                metrics_refresh_seconds=0.05,
            ),
            clock,
        )  # fmt: skip
        await service.start()
        try:
            assert service.http is not None
            url = service.http.url
            await redis.xadd(service.keys.preferences, {DATA_FIELD: preferences("maya-sam")})
            await redis.xadd(service.keys.preferences, {DATA_FIELD: b"{not json"})
            rejected = "nudge_events_rejected_total"
            await eventually(
                lambda: scrape(url), until=lambda s: get(s, rejected, stream="preferences") == 1
            )
            clock.set(FIRST_DATE_NIGHT + timedelta(seconds=30))
            emitted = "nudge_due_emitted_total"
            samples = await eventually(
                lambda: scrape(url), until=lambda s: get(s, emitted, kind="date_night") == 1
            )
            assert get(samples, "nudge_events_consumed_total", stream="preferences") == 2
            lateness = "nudge_firing_lateness_seconds"
            assert get(samples, f"{lateness}_sum", kind="date_night") == 30
            assert get(samples, f"{lateness}_bucket", kind="date_night", le="10.0") == 0
            assert get(samples, f"{lateness}_bucket", kind="date_night", le="30.0") == 1
            assert (get(samples, "nudge_timer_loop_last_pass_timestamp_seconds") or 0) > 0
        finally:
            await service.stop()

    async def test_timer_gauges_come_from_the_periodic_refresh(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """After preferences are applied, the refresher reports armed timers and the streams."""
        service = SchedulerService(
            scheduler_settings(redis_url, key_prefix, http_port=0, metrics_refresh_seconds=0.05),
            ManualClock(START),
        )
        await service.start()
        try:
            assert service.http is not None
            url = service.http.url
            await redis.xadd(service.keys.preferences, {DATA_FIELD: preferences("maya-sam")})
            samples = await eventually(
                lambda: scrape(url), until=lambda s: (get(s, "nudge_timers") or 0) > 0
            )
            assert get(samples, "nudge_timers_overdue") == 0
            assert get(samples, "nudge_dead_letters") == 0
            group = {"stream": "preferences", "group": "scheduler"}
            assert get(samples, "nudge_stream_group_consumers", **group) == 1
        finally:
            await service.stop()


class TestNotifierMetrics:
    async def test_pending_lag_and_dead_letters_of_the_due_stream_are_exported(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The notifier's scrape shows the due stream's group and the dead-letter depth."""
        service = NotifierService(
            notifier_settings(redis_url, key_prefix, http_port=0, metrics_refresh_seconds=0.05),
            ManualClock(START),
            channels={"email": RecordingChannel()},
        )
        await service.start()
        try:
            assert service.http is not None
            url = service.http.url
            await redis.xadd(service.keys.dead, {"reason": "gave up"})
            await redis.xadd(service.keys.dead, {"reason": "gave up"})
            samples = await eventually(
                lambda: scrape(url), until=lambda s: get(s, "nudge_dead_letters") == 2
            )
            group = {"stream": "due:{s00}", "group": NOTIFIER_GROUP}
            assert get(samples, "nudge_stream_group_pending", **group) == 0
            assert get(samples, "nudge_stream_group_lag", **group) == 0
            assert get(samples, "nudge_stream_length", stream="dead") == 2
            assert (get(samples, "nudge_status_refresh_timestamp_seconds") or 0) > 0
        finally:
            await service.stop()


def own_start_time() -> float:
    """When this process started (Linux: its /proc entry's creation time)."""
    return Path("/proc/self").stat().st_ctime


class TestProcessAndBuildMetrics:
    async def test_both_services_export_process_series_and_their_build(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Each /metrics has process_* (CPU, memory, files, start), python_info and one
        nudge_build_info = 1 whose labels are the installed versions."""
        scheduler = SchedulerService(
            scheduler_settings(redis_url, key_prefix, http_port=0), ManualClock(START)
        )
        notifier = NotifierService(
            notifier_settings(redis_url, key_prefix, http_port=0),
            ManualClock(START),
            channels={"email": RecordingChannel()},
        )
        await scheduler.start()
        await notifier.start()
        try:
            for service in (scheduler, notifier):
                assert service.http is not None
                samples = await scrape(service.http.url)
                names = {name for name, _ in samples}
                assert {
                    "process_cpu_seconds_total",
                    "process_resident_memory_bytes",
                    "process_virtual_memory_bytes",
                    "process_open_fds",
                    "process_max_fds",
                    "process_start_time_seconds",
                    "python_info",
                } <= names
                assert (get(samples, "process_open_fds") or 0) > 0  # this very process's
                started = get(samples, "process_start_time_seconds") or 0
                assert abs(started - own_start_time()) < 120
                build = [
                    (labels, v) for (n, labels), v in samples.items() if n == "nudge_build_info"
                ]
                assert build == [
                    (
                        frozenset(
                            {
                                ("version", version("couples-nudge")),
                                ("python", platform.python_version()),
                                ("redis_py", version("redis")),
                                ("faststream", version("faststream")),
                                ("tzdata", version("tzdata")),
                            }
                        ),
                        1.0,
                    )
                ]
        finally:
            await notifier.stop()
            await scheduler.stop()


class TestGaugeRefresher:
    async def test_an_unreachable_redis_is_counted_not_raised(self, key_prefix: str) -> None:
        """The refresher keeps running through Redis outages; failures are a counter."""
        unreachable = aioredis.Redis.from_url("redis://127.0.0.1:1/0")
        metrics = Metrics("notifier", Keys(prefix=key_prefix))
        refresher = GaugeRefresher(unreachable, metrics, ManualClock(START), interval=0.01)
        refresher.start()
        try:

            async def errors() -> float | None:
                return get(registry_samples(metrics), "nudge_status_refresh_errors_total")

            await eventually(errors, until=lambda n: (n or 0) >= 2)
        finally:
            await refresher.stop()
            await unreachable.aclose()
