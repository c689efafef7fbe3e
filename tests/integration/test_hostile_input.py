"""Hostile input never stalls a consumer, never delays its neighbours, never reaches the logs.

Real services on a real Redis-protocol server: megabytes of hostile text, entries of any bytes,
personal text in every place a careless publisher could put it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

import httpx
import pytest
import redis.asyncio as aioredis
import structlog

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import NOTIFIER_GROUP, SCHEDULER_GROUP
from couples_nudge.common.logging import configure_logging
from couples_nudge.common.streams import DATA_FIELD, read_entries
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.entries import NOT_TEXT
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import REASON_LIMIT
from tests.support.hostile import PERSONAL, Fields, valid_entry
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

NOW = datetime(2026, 12, 1, tzinfo=UTC)
DATA = DATA_FIELD.encode()
PROMPT_S = 2.0  # generous: an event behind hostile ones is applied within this
# Pieces of PERSONAL that must appear nowhere in logs or reasons.
SECRETS = ("lena.private", "Lena", "Secret-Name", "example.test")


class Probe:
    """Measures, while hostile input is handled, how long the event loop stalls and how long
    /healthz takes to answer (both run on the service's own event loop)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stalls: list[float] = [0.0]
        self.health: list[float] = []
        self.statuses: set[int] = set()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def _ticks(self) -> None:
        while not self._stop.is_set():
            before = time.monotonic()
            await asyncio.sleep(0.01)
            self.stalls.append(time.monotonic() - before - 0.01)

    async def _healthz(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            while not self._stop.is_set():
                before = time.monotonic()
                response = await client.get(f"{self.url}/healthz")
                self.health.append(time.monotonic() - before)
                self.statuses.add(response.status_code)
                await asyncio.sleep(0.05)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._ticks()), asyncio.create_task(self._healthz())]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


async def _rev(redis: aioredis.Redis, service: SchedulerService, couple: str) -> bytes | None:
    return cast("bytes | None", await redis.hget(service.keys.couple(couple), "rev"))


async def _pending(redis: aioredis.Redis, stream: str, group: str) -> int:
    groups = await redis.xinfo_groups(stream)
    return sum(int(g["pending"]) for g in groups if g["name"] == group.encode())


class TestResponsiveness:
    async def test_a_valid_event_behind_megabytes_of_hostile_text_is_applied_promptly(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Sixteen 60,000-character event types, a megabyte payload and a megabyte binary field
        name (2.9 MB of hostile text): the valid event published right after them is applied
        within 2 s, and /healthz keeps answering meanwhile."""
        settings = scheduler_settings(redis_url, key_prefix, http_port=0)
        service = SchedulerService(settings, ManualClock(NOW))
        hostile: list[Fields] = [
            {DATA: json.dumps({"type": "x" * 60_000}).encode()} for _ in range(16)
        ]
        hostile += [{DATA: b"x" * 1_000_000}, {b"\xff" * 1_000_000: b"x"}]
        await service.start()
        assert service.http is not None
        probe = Probe(service.http.url)
        probe.start()
        try:
            await asyncio.sleep(0.2)  # the probe's first answers, before the hostile input
            published = time.monotonic()
            async with redis.pipeline(transaction=False) as pipe:
                for fields in hostile:
                    pipe.xadd(settings.keys.preferences, fields)  # type: ignore[arg-type]
                pipe.xadd(settings.keys.preferences, valid_entry("after"))  # type: ignore[arg-type]
                await pipe.execute()
            await eventually(
                lambda: _rev(redis, service, "after"), until=lambda r: r == b"1", within=60
            )
            applied = time.monotonic() - published
            await asyncio.sleep(0.2)
        finally:
            await probe.stop()
            await service.stop()
        print(
            f"\nhostile text: {sum(len(k) + len(v) for f in hostile for k, v in f.items()):,} "
            f"bytes; valid event applied after {applied:.3f} s; longest event-loop stall "
            f"{max(probe.stalls):.3f} s; /healthz answered {len(probe.health)} times, slowest "
            f"{max(probe.health):.3f} s"
        )
        assert await redis.xlen(settings.keys.rejected) == len(hostile)
        assert applied < PROMPT_S
        assert probe.statuses == {200}
        assert max(probe.health) < PROMPT_S
        assert max(probe.stalls) < PROMPT_S


class TestEntriesOfAnyBytes:
    async def test_binary_field_names_and_values_never_delay_their_neighbours(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A backlog read as one batch: entries with binary field names or values are rejected
        one by one with a reason; the valid events around them are applied at once."""
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(NOW))
        await service.before_start()
        bad: list[Fields] = [
            {b"\xff": b"x"},
            {DATA: b"", b"\xff": b"\x00"},
            {b"k": b"\xfe\xff"},
            {b"\xc3": b"\x28", b"name": PERSONAL.encode()},
            {b"\xff" * 10_000: b"\xfe" * 10_000},
        ]
        binary_payload: Fields = {DATA: b"\xff\xfe{"}
        entries = [
            valid_entry("before"),
            *bad,
            binary_payload,
            {**valid_entry("extra-field"), b"\xff": b"ignored"},  # __data__ is the payload
            valid_entry("after"),
        ]
        for fields in entries:
            await redis.xadd(settings.keys.preferences, fields)  # type: ignore[arg-type]
        started = time.monotonic()
        await service.start()
        try:
            for couple in ("before", "extra-field", "after"):
                await eventually(
                    lambda c=couple: _rev(redis, service, c),  # type: ignore[misc]
                    until=lambda r: r == b"1",
                    within=60,
                )
            applied = time.monotonic() - started
            await eventually(
                lambda: _pending(redis, settings.keys.preferences, SCHEDULER_GROUP),
                until=lambda n: n == 0,
            )
        finally:
            await service.stop()
        print(f"\nbatch with {len(bad) + 1} binary entries: neighbours applied in {applied:.3f} s")
        rejected = [fields for _, fields in await read_entries(redis, settings.keys.rejected)]
        assert [f[b"reason"].decode() for f in rejected] == [NOT_TEXT] * len(bad) + [
            "event: not valid JSON"
        ]
        assert all(b"\\xff" in f[b"raw"] or b"\\xc3" in f[b"raw"] for f in rejected[:2])
        assert rejected[-1][b"raw"] == binary_payload[DATA]
        assert await redis.xlen(settings.keys.preferences) == 0
        assert applied < PROMPT_S


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Logging configured as in production (JSON, at debug level) into a buffer."""
    buffer = io.StringIO()
    configure_logging("hostile", "json", "debug", stream=buffer, cache_loggers=False)
    yield buffer
    structlog.reset_defaults()
    logging.getLogger().handlers = []


def _personal_preferences() -> list[Fields]:
    """Preference entries with personal text everywhere a careless publisher could put it."""
    valid = json.loads(valid_entry("c1")[DATA])
    partner = valid["data"]["partners"][0]
    cadence = valid["data"]["nudges"]["check_in"]
    events = [
        {"type": PERSONAL},
        {"type": f"{PERSONAL} " + "x" * 50_000},
        valid | {PERSONAL: 1},
        valid | {"producer": PERSONAL},
        valid | {"event_id": PERSONAL},
        valid | {"occurred_at": PERSONAL},
        {**valid, "data": {**valid["data"], "couple_id": PERSONAL}},
        {**valid, "data": {**valid["data"], PERSONAL * 100: 1}},
        {**valid, "data": {**valid["data"], "partners": [partner | {"name": PERSONAL}] * 2}},
        {**valid, "data": {**valid["data"], "partners": [partner | {"timezone": PERSONAL}] * 2}},
        {**valid, "data": {**valid["data"], "partners": [partner | {"email": PERSONAL}] * 2}},
        {
            **valid,
            "data": {
                **valid["data"],
                "nudges": {"check_in": cadence | {"cadence": {"repeat": "cron", "cron": PERSONAL}}},
            },
        },
    ]
    entries: list[Fields] = [{DATA: json.dumps(e).encode()} for e in events]
    entries += [
        {b"name": PERSONAL.encode(), b"\xff": PERSONAL.encode()},
        {PERSONAL.encode(): b"1"},
        {DATA: PERSONAL.encode()},
    ]
    return entries


def _personal_dues() -> list[Fields]:
    """NudgeDue entries with personal text in their type, ids, recipients and fields."""
    due: dict[str, Any] = {
        "type": "nudge.due.v1",
        "event_id": "0b6e2b1c-3c1e-4d4a-9f5e-1a2b3c4d5e6f",
        "occurred_at": "2026-12-01T10:00:00Z",
        "producer": "nudge-scheduler",
        "data": {
            "occurrence_id": "c1/c/both@1796000000",
            "couple_id": "c1",
            "schedule_id": "c1/c/both",
            "kind": "check_in",
            "recipients": ["maya"],
            "sequence": 0,
            "scheduled_at": "2026-12-01T10:00:00Z",
            "revision": 1,
        },
    }
    events = [
        due | {"type": PERSONAL},
        due | {"data": due["data"] | {"recipients": [PERSONAL]}},
        due | {"data": due["data"] | {"schedule_id": PERSONAL, "note": PERSONAL}},
        due | {"data": due["data"] | {PERSONAL: 1}},
        due | {"data": due["data"] | {"recipients": ["lena", "lena"]}},
    ]
    entries: list[Fields] = [{DATA: json.dumps(e).encode()} for e in events]
    entries += [{DATA: json.dumps(due).encode(), b"attempt": PERSONAL.encode()}]
    return entries


class TestLogsOfHostileInput:
    async def test_no_name_or_address_from_hostile_input_is_logged_or_kept_as_a_reason(
        self,
        json_logs: io.StringIO,
        capsys: pytest.CaptureFixture[str],
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        mail: MailCatcher,
    ) -> None:
        """Personal text in types, keys, values and fields of both services' input: rejected,
        and neither the logs nor the rejection reasons hold a piece of it."""
        scheduler = SchedulerService(scheduler_settings(redis_url, key_prefix), ManualClock(NOW))
        notifier = NotifierService(
            notifier_settings(redis_url, key_prefix, smtp_port=mail.port), ManualClock(NOW)
        )
        preferences, dues = _personal_preferences(), _personal_dues()
        await scheduler.start()
        await notifier.start()
        try:
            for fields in preferences:
                await redis.xadd(scheduler.keys.preferences, fields)  # type: ignore[arg-type]
            for fields in dues:
                await redis.xadd(scheduler.keys.due(0), fields)  # type: ignore[arg-type]
            await eventually(
                lambda: redis.xlen(scheduler.keys.rejected),
                until=lambda n: n >= len(preferences) + len(dues),
            )
            await eventually(
                lambda: _pending(redis, scheduler.keys.due(0), NOTIFIER_GROUP),
                until=lambda n: n == 0,
            )
        finally:
            await notifier.stop()
            await scheduler.stop()

        rejected = await read_entries(redis, scheduler.keys.rejected)
        reasons = [fields[b"reason"].decode() for _, fields in rejected]
        captured = capsys.readouterr()
        logs = json_logs.getvalue()
        lines = [json.loads(line) for line in logs.splitlines()]
        print(
            f"\npersonal text in {len(preferences)} preference and {len(dues)} due entries: "
            f"{len(rejected)} rejected, {len(lines)} log lines searched"
        )
        assert len(rejected) == len(preferences) + len(dues)
        assert sum(line["event"].endswith("_rejected") for line in lines) == len(rejected)
        assert all(len(r) <= REASON_LIMIT for r in reasons)
        everything = logs + captured.out + captured.err + "\n".join(reasons)
        assert [secret for secret in SECRETS if secret in everything] == []
        assert mail.messages == []
