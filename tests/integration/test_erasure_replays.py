"""An erasure stays an erasure: what was published before it never comes back (real server).

docs/publishers.md: after couple.erased.v1, older events of that couple are ignored for
NUDGE_TOMBSTONE_RETENTION, and a newer preferences.set starts afresh. The couple may well be
created again inside that time; an app's outbox replaying, or a redelivery, then brings the
events from before the erasure. Until 2026-12-07 the new couple's APPLY_PLAN removed the
tombstone, and the old events wrote the erased partners' names, addresses and jar ideas back.
Also here: a bad event rejected in the same batch as its couple's erasure, a nudge given up
while its couple was being erased, and dead letters whose JSON spaces its colons, are
scrubbed like the others.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.dead_letters import bury, list_dead
from couples_nudge.common.keys import couple_digest
from couples_nudge.common.streams import read_entries
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import parse_preference
from tests.support.events import envelope, example
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

EVENTS = Path(__file__).resolve().parents[2] / "examples" / "events"
COUPLE = "maya-sam"
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ERASED_AT = T0 + timedelta(days=1)
AGAIN_AT = T0 + timedelta(days=2)
SECRET = "The clinic on Tuesday at five"


def _set(revision: int, at: datetime, name: str = "Maya") -> bytes:
    data = example()["data"]
    data.update(couple_id=COUPLE, revision=revision)
    data["partners"][0]["name"] = name
    return envelope("preferences.set.v1", data, at)


def _example(type_: str, at: datetime, **overrides: Any) -> bytes:
    """The example event of `type_` for the couple (partners maya and sam)."""
    data = json.loads((EVENTS / f"{type_}.json").read_text())["data"]
    data.update(couple_id=COUPLE, **overrides)
    return envelope(type_, data, at)


# Every kind of event that writes a couple's state, each through its own script.
def _before_the_erasure() -> dict[str, bytes]:
    return {
        "preferences.set": _set(7, T0),
        "idea added": _example(
            "datejar.idea_added.v1", T0, idea_id="clinic", text=SECRET, added_by="maya"
        ),
        "paused": _example("preferences.paused.v1", T0, until=None),
        "resumed": _example("preferences.resumed.v1", T0),
        "unsubscribed": _example("preferences.unsubscribed.v1", T0),
        "snoozed": _example("preferences.snoozed.v1", T0),
        "complained": _example("channel.complained.v1", T0),
        "hard bounce": _example("channel.bounced.v1", T0),
        "soft bounce": _example("channel.bounced.v1", T0, bounce="soft", status="4.2.2"),
        "resubscribed": _example("preferences.resubscribed.v1", T0),
        "not this week": _example("nudge.feedback.v1", T0, sequence=0),
        "done": _example("nudge.feedback.v1", T0, signal="done", sequence=None),
    }


def _ingest(redis: aioredis.Redis, settings: SchedulerSettings) -> PreferenceIngest:
    store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
    return PreferenceIngest(store, ManualClock(AGAIN_AT), settings)


async def _state(redis: aioredis.Redis, settings: SchedulerSettings) -> dict[str, Any]:
    keys = settings.keys
    return {
        "couple": await redis.hgetall(keys.couple(COUPLE)),
        "jar": await redis.hgetall(keys.jar(COUPLE)),
        "timers": await redis.zrange(keys.timers(keys.shard_of(COUPLE)), 0, -1, withscores=True),
    }


class TestACoupleCreatedAgain:
    async def test_events_from_before_its_erasure_change_nothing(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Each kind of event from before the erasure, applied after the couple was created
        again, answers "erased" and leaves the new couple's hash, jar and timers as they were;
        the tombstone stays. (Before: "applied", with the old name and the jar idea back.)"""
        settings = scheduler_settings(redis_url, key_prefix)
        ingest = _ingest(redis, settings)
        old = _before_the_erasure()
        assert await ingest.apply(parse_preference(old["preferences.set"])) == "applied"
        assert await ingest.apply(parse_preference(old["idea added"])) == "added"
        erase = envelope("couple.erased.v1", {"couple_id": COUPLE}, ERASED_AT)
        assert await ingest.apply(parse_preference(erase)) == "erased"
        assert await ingest.apply(parse_preference(_set(1, AGAIN_AT, "Mia"))) == "applied"
        fresh = await _state(redis, settings)
        assert fresh["couple"]
        assert not fresh["jar"]

        results = {name: await ingest.apply(parse_preference(raw)) for name, raw in old.items()}

        assert results == dict.fromkeys(old, "erased")
        assert await _state(redis, settings) == fresh
        tombstone = await redis.zscore(
            settings.keys.tombstones(settings.keys.shard_of(COUPLE)), couple_digest(COUPLE)
        )
        assert tombstone == ERASED_AT.timestamp() * 1000

    async def test_its_own_events_apply(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The guard is no wider than the erasure: events after it apply to the new couple."""
        settings = scheduler_settings(redis_url, key_prefix)
        ingest = _ingest(redis, settings)
        erase = envelope("couple.erased.v1", {"couple_id": COUPLE}, ERASED_AT)
        later = AGAIN_AT + timedelta(minutes=1)
        events = [
            (_set(1, AGAIN_AT, "Mia"), "applied"),
            (_example("preferences.paused.v1", later, until=None), "applied"),
            (_example("channel.bounced.v1", later, bounce="soft", status="4.2.2"), "counted"),
            (_example("preferences.resubscribed.v1", later), "applied"),
        ]
        assert await ingest.apply(parse_preference(_set(7, T0))) == "applied"
        assert await ingest.apply(parse_preference(erase)) == "erased"
        assert [await ingest.apply(parse_preference(raw)) for raw, _ in events] == [
            expected for _, expected in events
        ]
        couple = cast("dict[bytes, bytes]", await redis.hgetall(settings.keys.couple(COUPLE)))
        assert couple[b"rev"] == b"1"
        assert b"pause:sam" in couple


class TestTombstonesExpire:
    async def test_the_timer_loop_forgets_erasures_past_the_retention(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """NUDGE_TOMBSTONE_RETENTION is how long an erasure is remembered: a running scheduler
        drops the tombstones older than that and keeps the younger ones. ERASE trimmed only
        its own shard's tombstones, when another couple of it was erased, so the last erasures
        of a shard were kept (and kept blocking their couple's events) for ever: in a soak of a
        year the last two erasures were 83 days old, 53 past the 30-day retention, with no
        later erasure to trim them."""
        settings = scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.05)
        now = T0 + timedelta(days=40)
        clock = ManualClock(now)
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        ingest = PreferenceIngest(store, clock, settings)
        old, young = "old-couple", "young-couple"
        for couple, at in ((old, T0), (young, T0 + timedelta(days=20))):
            erase = envelope("couple.erased.v1", {"couple_id": couple}, at)
            assert await ingest.apply(parse_preference(erase)) == "erased"
        tombstones = settings.keys.tombstones(0)
        assert await redis.zcard(tombstones) == 2  # the later erasure trimmed nothing: 20 < 30
        stop = asyncio.Event()
        run = asyncio.create_task(TimerLoop(store, clock, settings).run(stop))
        try:
            gone = await eventually(
                lambda: redis.zscore(tombstones, couple_digest(old)),
                until=lambda score: score is None,
                within=5,
            )
        finally:
            stop.set()
            await run
        assert gone is None
        assert await redis.zrange(tombstones, 0, -1) == [couple_digest(young).encode()]


@pytest.mark.usefixtures("redis")
class TestScrubbedWithTheErasure:
    async def test_a_bad_event_in_the_erasures_batch_is_not_kept(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A refused event of the couple, read in the same batch as its erasure, is not left
        on the rejected stream (the erasure's scrub ran before the batch's rejections were
        written: one entry with the partners' names was left)."""
        settings = scheduler_settings(redis_url, key_prefix)
        service = SchedulerService(settings, ManualClock(T0))
        await service.before_start()
        try:
            await service.handle_batch([("1-1", _set(1, T0))])
            bad = json.loads(_set(2, T0 + timedelta(minutes=1)))
            bad["data"]["partners"][0]["timezone"] = "Europe/Berln"
            other = json.loads(_set(1, T0))
            other["data"]["couple_id"] = "other-couple"
            other["data"]["partners"][0]["timezone"] = "Europe/Berln"
            erase = envelope("couple.erased.v1", {"couple_id": COUPLE}, ERASED_AT)
            batch = [
                ("2-1", json.dumps(bad).encode()),
                ("2-2", json.dumps(other).encode()),
                ("2-3", erase),
            ]
            assert await service.handle_batch(batch) == ["2-1", "2-2", "2-3"]
            rejected = await read_entries(redis, settings.keys.rejected)
            assert [fields[b"couple_id"] for _, fields in rejected] == [b"other-couple"]
        finally:
            await service.redis.aclose()

    async def test_dead_letters_however_their_json_is_spaced(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A dead letter buried without a couple id (the Reclaimer's), whose JSON puts spaces
        or line breaks around its colon (Jackson's pretty printer, an indent), goes with the
        erasure (2 of 4 were left)."""
        settings = scheduler_settings(redis_url, key_prefix)
        keys = settings.keys
        event = json.loads(_set(1, T0))
        spellings = [
            json.dumps(event).encode(),
            json.dumps(event, separators=(",", ":")).encode(),
            json.dumps(event, indent="\t").encode(),
            json.dumps(event, separators=(",", " : ")).encode(),
        ]
        for n, data in enumerate(spellings):
            await bury(
                redis,
                keys.dead,
                source=keys.preferences,
                entry_id=f"1-{n}",
                reason="2 deliveries, none handled to the end",
                attempts=2,
                data=data,
                maxlen=1000,
            )
        letters = await read_entries(redis, keys.dead)
        assert [fields[b"couple_id"] for _, fields in letters] == [COUPLE.encode()] * 4
        ingest = _ingest(redis, settings)
        erase = envelope("couple.erased.v1", {"couple_id": COUPLE}, ERASED_AT)
        assert await ingest.apply(parse_preference(erase)) == "erased"
        assert await read_entries(redis, keys.dead) == []

    async def test_a_nudge_given_up_while_its_couple_is_erased_leaves_no_letter(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """The couple is erased while its nudge's last attempt waits for the SMTP server,
        which then answers 451: the dead letter, written after the erasure's scrub, is taken
        back (it was left, naming the couple)."""
        friday = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # maya-sam's date night
        scheduling = scheduler_settings(redis_url, key_prefix)
        clock = ManualClock(friday - timedelta(hours=1))
        store = ScheduleStore(redis, scheduling.keys, due_maxlen=1000)
        ingest = PreferenceIngest(store, clock, scheduling)
        assert await ingest.apply(parse_preference(_set(1, clock.now()))) == "applied"
        clock.set(friday + timedelta(seconds=5))
        await TimerLoop(store, clock, scheduling).tick(0)
        settings = notifier_settings(redis_url, key_prefix, smtp_port=mail.port, max_attempts=1)
        notifier = NotifierService(settings, clock)
        mail.stall(2.0)
        mail.refuse_next(2)  # both partners' emails: 451, after the stall
        await notifier.start()
        try:
            # Reserved: the sends are on their way to the stalled server.
            await eventually(lambda: redis.exists(settings.keys.sent(COUPLE)), until=bool)
            erase = envelope("couple.erased.v1", {"couple_id": COUPLE}, clock.now())
            assert await ingest.apply(parse_preference(erase)) == "erased"
            await eventually(lambda: redis.xlen(settings.keys.outcomes), until=lambda n: n >= 2)
            assert await list_dead(redis, settings.keys.dead) == []
        finally:
            await notifier.stop()

    async def test_a_refused_nudge_due_leaves_the_due_stream_and_goes_with_the_erasure(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """A malformed NudgeDue naming the couple (an address where partner ids go) is copied
        to the rejected stream and deleted from the due stream, so the erasure's scrub of the
        rejected stream takes the last copy (it was only acknowledged: the address stayed on
        the due stream, which the erasure does not scrub, until a million entries trimmed it)."""
        settings = notifier_settings(redis_url, key_prefix, smtp_port=mail.port)
        keys = settings.keys
        bad = json.loads((EVENTS / "nudge.due.v1.json").read_text())
        bad["data"].update(couple_id=COUPLE, recipients=["maya@example.test"])
        notifier = NotifierService(settings, ManualClock(T0))
        await notifier.start()
        try:
            await redis.xadd(keys.due(0), {"__data__": json.dumps(bad)})
            await eventually(lambda: redis.xlen(keys.rejected), until=lambda n: n == 1)
            await eventually(lambda: redis.xlen(keys.due(0)), until=lambda n: n == 0)
        finally:
            await notifier.stop()
        erase = envelope("couple.erased.v1", {"couple_id": COUPLE}, ERASED_AT)
        ingest = _ingest(redis, scheduler_settings(redis_url, key_prefix))
        assert await ingest.apply(parse_preference(erase)) == "erased"
        left = [await read_entries(redis, stream) for stream in (keys.due(0), keys.rejected)]
        assert left == [[], []]

    async def test_a_dead_lettered_preference_leaves_the_stream_and_goes_with_the_erasure(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A preference event whose handling keeps failing is dead-lettered and deleted from
        the preferences stream (it was only acknowledged: a copy with names and addresses
        stayed on a stream the erasure does not scrub); the letter goes with the erasure."""
        settings = scheduler_settings(
            redis_url, key_prefix, reclaim_idle=timedelta(milliseconds=100), max_deliveries=2
        )
        keys = settings.keys
        service = SchedulerService(settings, ManualClock(T0))

        async def failing(*_args: object, **_kwargs: object) -> Any:
            raise RuntimeError("a bug in applying this event")

        service.ingest.apply = failing  # type: ignore[method-assign]
        service.ingest.apply_many = failing  # type: ignore[method-assign]
        await service.start()
        try:
            await redis.xadd(keys.preferences, {"__data__": _set(1, T0)})
            letters = await eventually(
                lambda: list_dead(redis, keys.dead), until=lambda found: len(found) == 1
            )
            assert letters[0].couple_id == COUPLE
            assert await redis.xlen(keys.preferences) == 0
        finally:
            await service.stop()
        ingest = _ingest(redis, settings)
        erase = envelope("couple.erased.v1", {"couple_id": COUPLE}, ERASED_AT)
        assert await ingest.apply(parse_preference(erase)) == "erased"
        assert await list_dead(redis, keys.dead) == []
