"""Upgrading from an older release: what it left behind is recovered.

The fixtures are written directly, field for field as daad069 (main of 2026-12-05, the first
development round) wrote them: the rejected entries its scheduler wrote when it read, during a
rolling upgrade, events only the newer schema knows; the send records and sightings its
notifier wrote without an expiry. Running that release inside a test would need its tree
beside this one; the experiments that ran it (stopped, killed, and side by side with this
release on one server) are in docs/operations.md, "Upgrading".
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner, Result

from couples_nudge.cli import app
from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import Keys
from couples_nudge.common.streams import RAW_LIMIT, read_entries
from couples_nudge.notifier.record_expiry import RecordExpiry
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from tests.support.events import envelope, example, preferences
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

NOW = datetime(2027, 3, 24, 12, tzinfo=UTC)
DAY_MS = 86_400_000
OCCURRED = datetime(2027, 3, 24, 11, tzinfo=UTC)


def _listening(couple_id: str) -> bytes:
    """A preferences.set with a field daad069's schema did not have."""
    return preferences(couple_id, revision=2, occurred_at=OCCURRED, listening=True)


def _daily(couple_id: str) -> bytes:
    """A preferences.set with a cadence daad069's schema did not have."""
    nudges = example()["data"]["nudges"]
    nudges["check_in"] = {"cadence": {"repeat": "daily", "at": "09:15"}}
    return preferences(couple_id, revision=2, occurred_at=OCCURRED, nudges=nudges)


async def _rejected_by_the_old_scheduler(
    redis: aioredis.Redis, keys: Keys, raw: bytes, reason: str, couple_id: str, n: int
) -> None:
    """One entry of the rejected stream as daad069's scheduler wrote it."""
    await redis.xadd(
        keys.rejected,
        {
            "couple_id": couple_id,
            "source": keys.preferences,
            "entry_id": f"1796694241655-{n}",
            "service": "scheduler",
            "reason": reason,
            "raw": raw[:RAW_LIMIT],
            "truncated": "1" if len(raw) > RAW_LIMIT else "0",
            "at": "2026-12-08T01:44:01.666206+00:00",
        },
    )


class TestEventsAnOlderSchedulerRefused:
    async def test_requeued_once_this_version_reads_them_and_applied(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """`nudge dlq requeue-rejected` puts back on the preferences stream what this version
        reads (an older scheduler refused it mid-roll), and a scheduler applies it; what this
        version refuses too, or was cut at the rejected stream's limit, stays rejected."""
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("NUDGE_KEY_PREFIX", key_prefix)
        settings = scheduler_settings(redis_url, key_prefix)
        keys = settings.keys
        scheduler = SchedulerService(settings, ManualClock(NOW))
        await scheduler.start()
        try:
            for couple in ("lena", "kai"):
                await redis.xadd(keys.preferences, {"__data__": preferences(couple)})
            both = (keys.couple("lena"), keys.couple("kai"))
            await eventually(lambda: redis.exists(*both), until=lambda n: n == 2)
            extra = "preferences.set.v1.data.listening: Extra inputs are not permitted"
            tag = "preferences.set.v1.data.nudges.check_in.cadence: Input tag 'daily' found"
            await _rejected_by_the_old_scheduler(redis, keys, _listening("lena"), extra, "lena", 0)
            await _rejected_by_the_old_scheduler(redis, keys, _daily("kai"), tag, "kai", 1)
            broken = b'{"type": "preferences.set.v1", "data": '
            await _rejected_by_the_old_scheduler(redis, keys, broken, "not JSON", "", 2)
            huge = _listening("ana").replace(b'"tests"', b'"' + b"x" * RAW_LIMIT + b'"')
            await _rejected_by_the_old_scheduler(redis, keys, huge, "too large", "ana", 3)
            unknown = envelope("couple.renamed.v9", {"couple_id": "lena"}, OCCURRED)
            await _rejected_by_the_old_scheduler(redis, keys, unknown, "unknown", "lena", 4)

            def nudge(*args: str) -> Result:
                return CliRunner().invoke(app, list(args))

            done = await asyncio.to_thread(nudge, "dlq", "requeue-rejected", "--yes")
            assert done.exit_code == 0, done.output
            assert "requeued 2 rejected preference event(s); 3 kept" in done.output
            await eventually(lambda: redis.hget(keys.couple("lena"), "ln"), until=bool)
            await eventually(lambda: redis.hget(keys.couple("kai"), "ci"), until=bool)
            assert await redis.hget(keys.couple("lena"), "rev") == b"2"
            kept = [f[b"reason"] for _, f in await read_entries(redis, keys.rejected)]
            assert kept == [b"not JSON", b"too large", b"unknown"]
        finally:
            await scheduler.stop()


async def _written_by_the_old_notifier(redis: aioredis.Redis, keys: Keys, couple_id: str) -> None:
    """A couple's send records and sightings as daad069's RECORD_SENT left them: no expiry."""
    sent_ms = 1805751000123
    await redis.zadd(keys.sent(couple_id), {f"{couple_id}/c/both@1805751000|p1|email": sent_ms})
    await redis.zadd(keys.seen(couple_id), {"ci-q-grateful-today": 1805751000000})


class TestRecordsWrittenWithoutAnExpiry:
    async def test_a_starting_notifier_gives_them_the_expiry_a_send_gives(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The sent and seen sets of a couple sent nothing more since the upgrade (paused for
        good) get the expiry RECORD_SENT gives (retention, repeat window, and a day); a set
        that has one keeps it."""
        keys = Keys(prefix=key_prefix)
        await _written_by_the_old_notifier(redis, keys, "lena")
        await redis.zadd(keys.sent("kai"), {"kai/a/kai@1805751000|kai|email": 1805751000123})
        await redis.pexpire(keys.sent("kai"), DAY_MS)
        notifier = NotifierService(notifier_settings(redis_url, key_prefix), ManualClock(NOW))
        await notifier.start()
        try:
            sent = await eventually(lambda: redis.pttl(keys.sent("lena")), until=lambda t: t > 0)
            seen = await eventually(lambda: redis.pttl(keys.seen("lena")), until=lambda t: t > 0)
        finally:
            await notifier.stop()
        assert 14 * DAY_MS < sent <= 15 * DAY_MS  # NUDGE_IDEMPOTENCY_RETENTION 14 days
        assert 90 * DAY_MS < seen <= 91 * DAY_MS  # NUDGE_REPEAT_WINDOW 90 days
        assert await redis.pttl(keys.sent("kai")) <= DAY_MS

    async def test_sweeps_until_none_is_left_then_never_again(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A sweep that gave expiries is repeated (an older notifier may still be writing);
        the first that finds none marks the keyspace swept, and no later start sweeps."""
        keys = Keys(prefix=key_prefix)
        await _written_by_the_old_notifier(redis, keys, "lena")

        def expiry() -> RecordExpiry:
            week = timedelta(days=7)
            return RecordExpiry(redis, keys, retention=week, repeat_window=week, again_after_s=0)

        await asyncio.wait_for(expiry().run(asyncio.Event()), timeout=10)
        assert await redis.get(keys.records_swept) == b"1"
        assert 7 * DAY_MS < await redis.pttl(keys.seen("lena")) <= 8 * DAY_MS
        await _written_by_the_old_notifier(redis, keys, "kai")  # after the marker: not swept
        await asyncio.wait_for(expiry().run(asyncio.Event()), timeout=10)
        assert await redis.pttl(keys.sent("kai")) == -1
