"""Logs: JSON lines with service and ids, and never a sample couple's personal data or texts.

The end-to-end test runs the scheduler and the notifier on every couple in examples/couples/
through a simulated week with real SMTP, captures everything logged (structlog, the standard
library's loggers, and anything printed) and searches it for the couples' addresses, display
names and every text of the content catalog.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
import structlog

from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.common.keys import NOTIFIER_GROUP
from couples_nudge.common.logging import configure_logging, redact
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import NudgeSent, parse_outcome
from tests.support.events import EXAMPLES
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
STEP = timedelta(hours=2)  # shorter than every grace window: each occurrence fires, none missed


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Logging configured as in production (JSON, here at debug level) into a buffer."""
    buffer = io.StringIO()
    root = logging.getLogger()
    faststream = logging.getLogger("faststream")
    saved = (root.handlers[:], root.level, faststream.handlers[:], faststream.level)
    configure_logging("e2e", "json", "debug", stream=buffer, cache_loggers=False)
    try:
        yield buffer
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
        root.handlers, root.level = saved[0], saved[1]
        faststream.handlers, faststream.level = saved[2], saved[3]


def jar_events() -> list[bytes]:
    """The sample couples' date-jar events (examples/couples/jars/*.jsonl, one a line)."""
    return [
        line.encode()
        for path in sorted(EXAMPLES.glob("jars/*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def personal_data() -> dict[str, re.Pattern[str]]:
    """What must never be logged: addresses, display names, every catalog title and text."""
    secrets: dict[str, re.Pattern[str]] = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        for partner in json.loads(path.read_text())["data"]["partners"]:
            secrets[partner["email"]] = re.compile(re.escape(partner["email"]), re.IGNORECASE)
            secrets[partner["name"]] = re.compile(rf"\b{re.escape(partner['name'])}\b")
    for event in jar_events():  # the couples' own date-jar ideas
        text = json.loads(event)["data"]["text"]
        secrets[text] = re.compile(re.escape(text))
    catalog = load_catalog()
    for locale in catalog.locales:
        for kind in ("date_night", "check_in", "appreciation"):
            for item in catalog.items(kind, locale):
                for text in (item.title, item.body, item.detail):
                    if len(text) >= 12:  # long enough to be a text, not a word
                        secrets[text] = re.compile(re.escape(text))
    return secrets


async def settle(redis: aioredis.Redis, scheduler: SchedulerService, now: datetime) -> None:
    """Wait until nothing is due any more and the notifier acknowledged everything it read."""
    keys = scheduler.keys

    async def backlog() -> tuple[int, int]:
        due = int(await redis.zcount(keys.timers(0), "-inf", epoch_ms(now)))
        groups = await redis.xinfo_groups(keys.due(0))
        waiting = sum(int(g["pending"]) + int(g["lag"] or 0) for g in groups)
        return due, waiting

    await eventually(backlog, until=lambda b: b == (0, 0))


class TestLogsOfARun:
    async def test_a_week_of_nudges_logs_ids_but_no_addresses_names_or_texts(
        self,
        json_logs: io.StringIO,
        capsys: pytest.CaptureFixture[str],
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        mail: MailCatcher,
    ) -> None:
        """Every couple gets email; the logs carry ids and hold none of their personal data."""
        clock = ManualClock(START)
        scheduler = SchedulerService(
            scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.02), clock
        )
        notifier = NotifierService(
            notifier_settings(redis_url, key_prefix, smtp_port=mail.port), clock
        )
        await scheduler.start()
        await notifier.start()
        try:
            for path in sorted(EXAMPLES.glob("*.json")):
                await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: path.read_bytes()})
            for event in jar_events():
                await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: event})
            await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: b'{"to": "x@example.test"}'})
            await eventually(lambda: redis.zcard(scheduler.keys.timers(0)), until=lambda n: n >= 9)
            now = START
            while now < START + timedelta(days=7):
                now += STEP
                clock.set(now)
                await settle(redis, scheduler, now)
        finally:
            await notifier.stop()
            await scheduler.stop()

        outcomes = await read_events(redis, scheduler.keys.outcomes, parse_outcome)
        couples_served = {o.data.couple_id for o in outcomes if isinstance(o, NudgeSent)}
        assert couples_served == {
            json.loads(path.read_bytes())["data"]["couple_id"] for path in EXAMPLES.glob("*.json")
        }
        assert any(
            o.data.content_id.startswith("jar:") for o in outcomes if isinstance(o, NudgeSent)
        )
        assert mail.messages, "the run must really render and send emails"

        captured = capsys.readouterr()
        everything = json_logs.getvalue() + captured.out + captured.err
        leaks = [label for label, found in personal_data().items() if found.search(everything)]
        assert leaks == []

        lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
        assert lines, "the run must log"
        assert all(line["service"] == "e2e" and "level" in line for line in lines)
        published = [line for line in lines if line["event"] == "nudge_due_published"]
        assert published
        assert all({"event_type", "event_id", "occurrence_id"} <= set(line) for line in published)
        applied = [line for line in lines if line["event"] == "preference_applied"]
        assert all({"event_type", "event_id"} <= set(line) for line in applied)
        assert len(applied) == len(list(EXAMPLES.glob("*.json"))) + len(jar_events())
        groups = await redis.xinfo_groups(scheduler.keys.due(0))
        assert [int(g["pending"]) for g in groups if g["name"].decode() == NOTIFIER_GROUP] == [0]


class TestRedaction:
    def test_addresses_and_urls_are_scrubbed_anywhere_in_a_value(self) -> None:
        """Inside strings, lists and dicts alike: `[email]` and `[url]` stand in."""
        event: dict[str, Any] = {
            "event": "x",
            "reason": "550 for <maya@example.test>",
            "errors": ["see https://push.example/abc?token=1"],
            "context": {"hint": "sam@example.test"},
        }
        assert redact(None, "info", event) == {
            "event": "x",
            "reason": "550 for <[email]>",
            "errors": ["see [url]"],
            "context": {"hint": "[email]"},
        }

    @pytest.mark.parametrize("field", ["body", "email", "name", "title", "token", "endpoint"])
    def test_fields_named_like_personal_data_are_dropped(self, field: str) -> None:
        """A value bound under such a name never reaches the output, whatever it holds."""
        assert redact(None, "info", {field: "Maya"})[field] == "[redacted]"

    def test_standard_library_loggers_write_the_same_redacted_json(
        self, json_logs: io.StringIO
    ) -> None:
        """FastStream and other libraries log through `logging`: JSON and scrubbed too."""
        logging.getLogger("faststream").warning("could not reach sam@example.test")
        logging.getLogger("aiosmtplib").error("bad request from https://x.example/?t=1")
        first, second = (json.loads(line) for line in json_logs.getvalue().splitlines())
        assert (first["event"], first["service"]) == ("could not reach [email]", "e2e")
        assert second["event"] == "bad request from [url]"
