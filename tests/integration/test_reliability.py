"""Nothing lost, nothing doubled: retries, dead letters, reclaim, erasure of raw input."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
import redis.asyncio as aioredis
from typer.testing import CliRunner, Result

from couples_nudge.cli import app
from couples_nudge.common import dead_letters
from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import NOTIFIER_GROUP
from couples_nudge.common.streams import DATA_FIELD, read_entries, read_events, reject
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import NudgeDue, parse_due, parse_outcome, parse_preference
from tests.support.events import envelope, preferences
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

START = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # Friday; maya-sam date night 18:00Z
DATE_NIGHT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


async def _due_date_night(redis: aioredis.Redis, redis_url: str, prefix: str) -> NudgeDue:
    """Plan maya-sam and fire its Friday date night onto the due stream; return it."""
    settings = scheduler_settings(redis_url, prefix)
    clock = ManualClock(START)
    store = ScheduleStore(redis, settings.keys, due_maxlen=10_000)
    await PreferenceIngest(store, clock, settings).apply(parse_preference(preferences("maya-sam")))
    clock.set(DATE_NIGHT + timedelta(seconds=5))
    await TimerLoop(store, clock, settings).tick(0)
    dues = list(await read_events(redis, settings.keys.due(0), parse_due))
    [date_night] = [d for d in dues if d.data.kind == "date_night"]
    return date_night


async def _outcomes(redis: aioredis.Redis, stream: str) -> list[tuple[str, str | None, bool]]:
    events = await read_events(redis, stream, parse_outcome)
    return [
        (e.type, e.data.partner_id, getattr(e.data, "permanent", False))
        for e in events
        if e.data.kind == "date_night"
    ]


class TestTransientFailures:
    async def test_smtp_4xx_is_retried_later_and_delivered_once(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """Maya's first send gets 451: Sam's goes out now, Maya's after the backoff, once each."""
        await _due_date_night(redis, redis_url, key_prefix)
        clock = ManualClock(DATE_NIGHT + timedelta(seconds=10))
        settings = notifier_settings(
            redis_url, key_prefix, smtp_port=mail.port, retry_poll_seconds=0.05
        )
        notifier = NotifierService(settings, clock)
        mail.refuse_next(1)
        await notifier.start()
        try:
            await eventually(lambda: _retries(redis, notifier), until=lambda n: n == 1)
            assert len(mail.messages) == 1  # the partner whose send was accepted
            clock.advance(timedelta(minutes=2))  # past the first backoff (30 s +- 20%)
            await eventually(lambda: _count(mail), until=lambda n: n == 2)
            outcomes = await eventually(
                lambda: _outcomes(redis, notifier.keys.outcomes), until=lambda o: len(o) == 2
            )
            assert sorted(outcomes) == [
                ("nudge.sent.v1", "maya", False),
                ("nudge.sent.v1", "sam", False),
            ]
            assert sorted(str(m["To"]).split()[0] for m in mail.messages) == ["Maya", "Sam"]
            assert await redis.zcard(notifier.keys.retries(0)) == 0
        finally:
            await notifier.stop()

    async def test_an_occurrence_twice_in_one_batch_is_sent_once(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """The same NudgeDue twice on the stream (a replayed dead letter beside its original,
        a publisher's double write), read in one batch and delivered concurrently: one email
        a partner and one sent outcome each (it was two of each: both copies found nothing
        sent, and the slot each reserved was the other's)."""
        due = await _due_date_night(redis, redis_url, key_prefix)
        settings = notifier_settings(redis_url, key_prefix, smtp_port=mail.port)
        await redis.xadd(settings.keys.due(0), {DATA_FIELD: due.model_dump_json().encode()})
        notifier = NotifierService(settings, ManualClock(DATE_NIGHT + timedelta(seconds=10)))
        mail.stall(0.3)  # both copies in flight together
        await notifier.start()
        try:
            await eventually(
                lambda: _outcomes(redis, settings.keys.outcomes), until=lambda o: len(o) >= 2
            )
            await eventually(
                lambda: _group(redis, settings.keys.due(0)), until=lambda g: g["pending"] == 0
            )
            await asyncio.sleep(0.5)  # a twin's sends, had they gone, are in by now
        finally:
            await notifier.stop()
        outcomes = await _outcomes(redis, settings.keys.outcomes)
        sent = [o for o in outcomes if o[0] == "nudge.sent.v1"]
        print(f"one occurrence twice: {len(mail.messages)} emails, {len(sent)} sent outcomes")
        assert sorted(str(m["To"]).split()[0] for m in mail.messages) == ["Maya", "Sam"]
        assert sorted(sent) == [("nudge.sent.v1", "maya", False), ("nudge.sent.v1", "sam", False)]

    async def test_exhausted_retries_go_to_dead_letters_and_can_be_replayed(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """After max attempts: a failed (transient) outcome and a dead letter; replay delivers."""
        await _due_date_night(redis, redis_url, key_prefix)
        clock = ManualClock(DATE_NIGHT + timedelta(seconds=10))
        settings = notifier_settings(
            redis_url, key_prefix, smtp_port=mail.port, retry_poll_seconds=0.05, max_attempts=2
        )
        notifier = NotifierService(settings, clock)
        mail.refuse_next(4)  # both partners, two attempts each
        await notifier.start()
        try:
            await eventually(lambda: _retries(redis, notifier), until=lambda n: n == 1)
            clock.advance(timedelta(minutes=2))
            letters = await eventually(
                lambda: dead_letters.list_dead(redis, notifier.keys.dead),
                until=lambda found: len(found) == 1,
            )
            assert letters[0].attempts == 2
            assert letters[0].reason.startswith("gave up after 2 attempts: SMTP 451")
            assert letters[0].couple_id == "maya-sam"
            # The dead letter is written before the outcomes (same handling, no ack between).
            failed = await eventually(
                lambda: _outcomes(redis, notifier.keys.outcomes), until=lambda o: len(o) == 2
            )
            assert sorted(failed) == [
                ("nudge.failed.v1", "maya", False),
                ("nudge.failed.v1", "sam", False),
            ]
            assert mail.messages == []

            assert await dead_letters.replay(redis, notifier.keys.dead) == 1
            await eventually(lambda: _count(mail), until=lambda n: n == 2)
            assert await dead_letters.list_dead(redis, notifier.keys.dead) == []
        finally:
            await notifier.stop()


class TestPermanentFailures:
    async def test_rejected_recipient_is_not_retried_and_the_channel_is_marked_dead(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """SMTP 550 for a recipient: a permanent failure, no retry, the channel is marked dead."""
        await _due_date_night(redis, redis_url, key_prefix)
        settings = notifier_settings(redis_url, key_prefix, smtp_port=mail.port)
        notifier = NotifierService(settings, ManualClock(DATE_NIGHT))
        mail.refuse_recipient("maya@example.test")
        await notifier.start()
        try:
            outcomes = await eventually(
                lambda: _outcomes(redis, notifier.keys.outcomes), until=lambda o: len(o) == 2
            )
        finally:
            await notifier.stop()
        assert sorted(outcomes) == [
            ("nudge.failed.v1", "maya", True),
            ("nudge.sent.v1", "sam", False),
        ]
        assert await redis.zcard(notifier.keys.retries(0)) == 0
        fields = cast("list[bytes]", await redis.hkeys(notifier.keys.couple("maya-sam")))
        assert [f for f in fields if f.startswith(b"dead:")] == [b"dead:maya:email"]


class TestMalformedDue:
    async def test_bad_entries_in_a_batch_are_rejected_and_the_good_one_delivered(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """Bytes that are not UTF-8 and text that is not JSON, read in one batch with a good
        NudgeDue: each bad entry is rejected with its reason, the good one is delivered, and
        nothing is left pending."""
        due = await _due_date_night(redis, redis_url, key_prefix)
        settings = notifier_settings(redis_url, key_prefix, smtp_port=mail.port)
        stream = settings.keys.due(0)
        await redis.xtrim(stream, maxlen=0)
        for raw in (b"\xff\xfe not UTF-8", b"{not json", due.model_dump_json().encode()):
            await redis.xadd(stream, {DATA_FIELD: raw})
        notifier = NotifierService(settings, ManualClock(DATE_NIGHT))
        await notifier.start()
        try:
            await eventually(lambda: _count(mail), until=lambda n: n == 2)
            await eventually(lambda: _group(redis, stream), until=lambda g: g["pending"] == 0)
        finally:
            await notifier.stop()
        rejected = [fields for _, fields in await read_entries(redis, settings.keys.rejected)]
        assert [f[b"raw"] for f in rejected] == [b"\xff\xfe not UTF-8", b"{not json"]
        assert all(f[b"reason"] for f in rejected)
        assert await dead_letters.list_dead(redis, settings.keys.dead) == []


class TestReclaim:
    async def test_a_crashed_consumers_message_is_claimed_and_delivered(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """A NudgeDue read by a consumer that died unacknowledged is delivered by a live one."""
        await _due_date_night(redis, redis_url, key_prefix)
        settings = notifier_settings(
            redis_url, key_prefix, smtp_port=mail.port, reclaim_idle=timedelta(milliseconds=200)
        )
        due_stream = settings.keys.due(0)
        await redis.xgroup_create(due_stream, NOTIFIER_GROUP, id="0")
        # The dead consumer read everything and never acknowledged it.
        await redis.xreadgroup(NOTIFIER_GROUP, "crashed-1", {due_stream: ">"}, count=100)
        notifier = NotifierService(settings, ManualClock(DATE_NIGHT))
        await notifier.start()
        try:
            await eventually(lambda: _count(mail), until=lambda n: n >= 2)
            group = await eventually(
                lambda: _group(redis, due_stream), until=lambda g: g["pending"] == 0
            )
            assert group["pending"] == 0
            assert sum(r.reclaimed for r in notifier.reclaimers) >= 1
        finally:
            await notifier.stop()
        date_nights = [m for m in mail.messages if "Date night" in str(m)]
        assert len(date_nights) == 2

    async def test_poison_message_is_dead_lettered_after_max_deliveries(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """A message whose handling keeps crashing ends in dead letters; others flow on."""
        settings = notifier_settings(
            redis_url,
            key_prefix,
            smtp_port=mail.port,
            reclaim_idle=timedelta(milliseconds=100),
            max_deliveries=3,
        )
        notifier = NotifierService(settings, ManualClock(DATE_NIGHT))

        async def crash(*_args: object, **_kwargs: object) -> None:
            raise RuntimeError("a bug in handling this message")

        await notifier.start()
        notifier.handle = crash  # type: ignore[method-assign]
        try:
            await redis.xadd(settings.keys.due(0), {DATA_FIELD: b'{"type":"nudge.due.v1"}'})
            letters = await eventually(
                lambda: dead_letters.list_dead(redis, settings.keys.dead),
                until=lambda found: len(found) == 1,
            )
        finally:
            await notifier.stop()
        assert letters[0].reason == "3 deliveries, none handled to the end"
        assert letters[0].data == b'{"type":"nudge.due.v1"}'
        assert (await _group(redis, settings.keys.due(0)))["pending"] == 0


class TestErasureOfRawInput:
    async def test_erasing_a_couple_removes_its_rejected_and_dead_entries(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Rejected or dead-lettered raw input of an erased couple is deleted; others remain."""
        settings = scheduler_settings(redis_url, key_prefix)
        keys = settings.keys
        bad = preferences("gone").replace(b'"Europe/Berlin"', b'"Mars/Base"')
        for raw in (bad, preferences("kept").replace(b'"Europe/Berlin"', b'"Mars/Base"')):
            await reject(
                redis,
                keys.rejected,
                source=keys.preferences,
                entry_id="1-0",
                raw=raw,
                reason="test",
                service="test",
                maxlen=1000,
            )
        await dead_letters.bury(
            redis,
            keys.dead,
            source="x",
            entry_id="2-0",
            reason="r",
            attempts=1,
            data=b"{}",
            couple_id="gone",
            maxlen=1000,
        )
        store = ScheduleStore(redis, keys, due_maxlen=1000)
        erase = envelope("couple.erased.v1", {"couple_id": "gone"})
        await PreferenceIngest(store, ManualClock(START), settings).apply(parse_preference(erase))
        remaining = await read_entries(redis, keys.rejected)
        assert [f[b"couple_id"] for _, f in remaining] == [b"kept"]
        assert await read_entries(redis, keys.dead) == []


class TestDlqCommands:
    async def test_list_replay_and_purge_from_the_command_line(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """`nudge dlq list/replay/purge` show, move back and delete dead letters."""
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("NUDGE_KEY_PREFIX", key_prefix)
        keys = scheduler_settings(redis_url, key_prefix).keys
        for n in range(3):
            await dead_letters.bury(
                redis,
                keys.dead,
                source=keys.due(0),
                entry_id=f"{n}-0",
                reason=f"reason {n}",
                attempts=6,
                data=b'{"type": "nudge.due.v1", "event_id": "e"}',  # as json.dumps writes it
                couple_id=f"c{n}",
                maxlen=1000,
            )

        def nudge(*args: str, stdin: str | None = None) -> Result:
            # The command runs its own event loop: give it a thread without one.
            return CliRunner().invoke(app, list(args), input=stdin)

        listed = await asyncio.to_thread(nudge, "dlq", "list", "--json")
        assert listed.exit_code == 0, listed.output
        rows = [line for line in listed.output.splitlines() if line.startswith("{")]
        assert len(rows) == 3
        assert '"type": "nudge.due.v1"' in rows[0]
        first_id = (await dead_letters.list_dead(redis, keys.dead))[0].id
        assert (await asyncio.to_thread(nudge, "dlq", "replay", first_id)).exit_code == 0
        assert len(await read_entries(redis, keys.due(0))) == 1
        # The same id again (now replayed) and a mistyped one: said, and not a success.
        second_id = (await dead_letters.list_dead(redis, keys.dead))[0].id
        again = await asyncio.to_thread(nudge, "dlq", "replay", second_id, first_id, "1-2")
        assert again.exit_code == 2
        assert "replayed 1 dead letter(s)" in again.output
        assert f"not on the dead-letter stream: {first_id}, 1-2 (" in again.output
        assert len(await read_entries(redis, keys.due(0))) == 2
        refused = await asyncio.to_thread(nudge, "dlq", "purge", stdin="y\n")
        assert refused.exit_code == 2  # no terminal to ask on: --yes is the way to confirm
        assert "add --yes" in refused.output
        assert len(await dead_letters.list_dead(redis, keys.dead)) == 1
        assert (await asyncio.to_thread(nudge, "dlq", "purge", "--yes")).exit_code == 0
        assert await dead_letters.list_dead(redis, keys.dead) == []


async def _count(mail: MailCatcher) -> int:
    return len(mail.messages)


async def _retries(redis: aioredis.Redis, notifier: NotifierService) -> int:
    return int(await redis.zcard(notifier.keys.retries(0)))


async def _group(redis: aioredis.Redis, stream: str) -> dict[str, int]:
    groups = await redis.xinfo_groups(stream)
    group = next(g for g in groups if g["name"] == NOTIFIER_GROUP.encode())
    return {"pending": int(group["pending"])}
