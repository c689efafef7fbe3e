"""While Redis refuses writes nothing is sent, a send it refuses to record is not forgotten
(issue #15, item 2), and an event refused as malformed is not lost either.

Each test runs its own valkey-server, because it changes the server's configuration:
`maxmemory` with `noeviction` (OOM, as in the incident) or `min-replicas-to-write` on a
server without replicas (NOREPLICAS: every write refused, scripts with allow-oom too).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple, cast

import pytest
import redis.asyncio as aioredis
from redis import Redis as SyncRedis
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError
from structlog.testing import capture_logs

from couples_nudge.common import dead_letters, streams
from couples_nudge.common.clock import ManualClock
from couples_nudge.common.keys import SCHEDULER_GROUP
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.embedded.valkey import EmbeddedValkey
from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.email import SmtpChannel
from couples_nudge.notifier.delivery import Delivery
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.state import idempotency_key
from couples_nudge.scheduler.feedback import FeedbackStore
from couples_nudge.scheduler.firing import Decision
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.planning import Schedule
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import (
    CadenceAdjusted,
    NudgeDue,
    NudgeFeedback,
    NudgeFeedbackData,
    parse_due,
    parse_outcome,
    parse_outcomes_entry,
    parse_preference,
)
from tests.support.events import envelope, example, preferences
from tests.support.notifier import delivery, due, plant
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
COUPLE = "maya-sam"


@pytest.fixture
async def own_redis() -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """A private server (its configuration is changed) and a client for it."""
    with EmbeddedValkey() as server:
        client = aioredis.Redis.from_url(server.url)
        try:
            yield client, server.url
        finally:
            await client.aclose()


class RecordRefusedAfterSend:
    """The real SMTP channel; right after its send, the server starts refusing every write
    (NOREPLICAS) for `seconds`: the record after the send meets the refusal."""

    name: Literal["email"] = "email"

    def __init__(self, smtp: SmtpChannel, admin: aioredis.Redis, seconds: float) -> None:
        self.smtp, self.admin, self.seconds = smtp, admin, seconds
        self.restored: asyncio.Task[Any] | None = None

    async def send(self, message: Outgoing) -> None:
        await self.smtp.send(message)
        await self.admin.config_set("min-replicas-to-write", 1)
        self.restored = asyncio.create_task(self._restore())

    async def _restore(self) -> None:
        await asyncio.sleep(self.seconds)
        await self.admin.config_set("min-replicas-to-write", 0)

    async def close(self) -> None:
        await self.smtp.close()


class TestOutOfMemory:
    async def test_a_held_slot_does_not_let_a_send_through_under_oom(
        self, own_redis: tuple[aioredis.Redis, str], mail: MailCatcher
    ) -> None:
        """The first attempt takes the cap slot and fails transiently (SMTP 451); the retry
        comes while Redis is out of memory: it raises before sending (before, RESERVE found
        its slot by reading alone, the email went out and its record failed). Once memory is
        freed the retry sends it, once."""
        redis, url = own_redis
        settings = notifier_settings(url, "nudges", smtp_port=mail.port)
        [sid, *_] = await plant(redis, settings, example()["data"], NOW)
        nudge = due(COUPLE, sid, "date_night", ["maya"], NOW)
        smtp = SmtpChannel(host="127.0.0.1", port=mail.port)
        deliverer = delivery(redis, settings, {"email": smtp}, ManualClock(NOW))
        try:
            mail.refuse_next(1)
            assert [r.error.detail for r in (await deliverer.deliver(nudge)).retry] == ["SMTP 451"]
            await redis.config_set("maxmemory-policy", "noeviction")
            await redis.config_set("maxmemory", 1)
            with pytest.raises(OutOfMemoryError):
                await deliverer.deliver(nudge)
            assert mail.count == 0
            await redis.config_set("maxmemory", 0)
            sent = await deliverer.deliver(nudge)
        finally:
            await smtp.close()
        assert [(o.type, o.data.partner_id) for o in sent.outcomes] == [("nudge.sent.v1", "maya")]
        assert mail.count == 1


class _RefusedRecord(NamedTuple):
    """A planted couple's date night, and a deliverer whose email channel makes Redis refuse
    every write for a while right after its send."""

    nudge: NudgeDue
    deliverer: Delivery
    settings: NotifierSettings


@contextlib.asynccontextmanager
async def refused_record(
    own_redis: tuple[aioredis.Redis, str], mail: MailCatcher, seconds: float, **settings: Any
) -> AsyncIterator[_RefusedRecord]:
    redis, url = own_redis
    notifier = notifier_settings(url, "nudges", smtp_port=mail.port, **settings)
    [sid, *_] = await plant(redis, notifier, example()["data"], NOW)
    channel = RecordRefusedAfterSend(
        SmtpChannel(host="127.0.0.1", port=mail.port), redis, seconds=seconds
    )
    deliverer = delivery(redis, notifier, {"email": channel}, ManualClock(NOW))
    try:
        yield _RefusedRecord(due(COUPLE, sid, "date_night", ["maya"], NOW), deliverer, notifier)
    finally:
        await channel.close()
        if channel.restored is not None:
            await channel.restored


class TestRecordRefusedAfterSend:
    async def test_the_record_is_retried_until_redis_takes_it(
        self, own_redis: tuple[aioredis.Redis, str], mail: MailCatcher
    ) -> None:
        """Redis refuses every write for a second right after the email went out: delivery
        keeps the fact and retries the record with backoff until it is taken, then returns
        the sent outcome; the email went out once and the record and outbox entry exist."""
        redis, _url = own_redis
        async with refused_record(own_redis, mail, 1.0) as (nudge, deliverer, settings):
            with capture_logs() as logs:
                result = await deliverer.deliver(nudge)
        refusals = [e for e in logs if e["event"] == "send_not_recorded_yet"]
        print(f"record refused {len(refusals)} times, then taken")
        assert refusals
        assert all(e["error"] == "ResponseError" for e in refusals)
        assert [(o.type, o.data.partner_id) for o in result.outcomes] == [("nudge.sent.v1", "maya")]
        key = idempotency_key(nudge.data.occurrence_id, "maya", "email")
        assert await redis.zscore(settings.keys.sent(COUPLE), key) is not None
        assert await redis.hexists(settings.keys.outbox(COUPLE), key)
        assert mail.count == 1
        assert (await deliverer.deliver(nudge)).retry == []
        assert mail.count == 1

    async def test_a_stop_keeps_trying_the_record_within_its_budget(
        self, own_redis: tuple[aioredis.Redis, str], mail: MailCatcher
    ) -> None:
        """The service is stopping (a deploy) while Redis refuses a sent email's record for a
        second (a failover): the record is still tried until taken, inside the shutdown
        budget, so a redelivery finds it and sends nothing. Before, a stop gave up on the
        record at once: the redelivery sent the email again."""
        async with refused_record(own_redis, mail, 1.0) as (nudge, deliverer, _settings):
            deliverer.stopping.set()
            result = await deliverer.deliver(nudge)
        assert [(o.type, o.data.partner_id) for o in result.outcomes] == [("nudge.sent.v1", "maya")]
        assert (await deliverer.deliver(nudge)).retry == []
        assert mail.count == 1

    async def test_a_stop_gives_the_record_up_at_the_end_of_its_budget(
        self, own_redis: tuple[aioredis.Redis, str], mail: MailCatcher
    ) -> None:
        """Redis refuses the record for longer than the shutdown budget: the stop does not
        wait past it (the error is raised, the entry stays pending)."""
        budget = timedelta(seconds=0.5)
        async with refused_record(own_redis, mail, 3.0, shutdown_timeout=budget) as refused:
            refused.deliverer.stopping.set()
            started = time.monotonic()
            with pytest.raises(RedisError):
                await refused.deliverer.deliver(refused.nudge)
            waited = time.monotonic() - started
        print(f"gave the record up after {waited:.2f} s (budget 0.5 s)")
        assert waited < 2.5


_Entries = list[tuple[bytes, dict[bytes, bytes]]]
# Refused by the schema (not JSON; no envelope), so their handling writes only rejections.
MALFORMED = (b"not json", b'{"type": "preferences.set.v1"}')


@pytest.fixture
async def scheduler(own_redis: tuple[aioredis.Redis, str]) -> AsyncIterator[SchedulerService]:
    service = SchedulerService(scheduler_settings(own_redis[1], "nudges"), ManualClock(NOW))
    await service.before_start()  # the consumer group
    try:
        yield service
    finally:
        await service.redis.aclose()


async def _read(redis: aioredis.Redis, service: SchedulerService) -> _Entries:
    """The malformed entries published and read by the service's consumer (pending)."""
    stream = service.keys.preferences
    for raw in MALFORMED:
        await redis.xadd(stream, {DATA_FIELD: raw})
    reply: Any = await redis.xreadgroup(SCHEDULER_GROUP, service.consumer, {stream: ">"})
    return cast("_Entries", reply[0][1])


async def _kept(redis: aioredis.Redis, service: SchedulerService) -> tuple[int, int, int]:
    """(entries in the preferences stream, pending there, entries in the rejected stream)."""
    stream = service.keys.preferences
    pending = await redis.xpending(stream, SCHEDULER_GROUP)
    return await redis.xlen(stream), pending["pending"], await redis.xlen(service.keys.rejected)


class TestRejectionRefused:
    """Under `maxmemory` Redis refuses a rejection's XADD but still runs an XDEL or XACK
    queued after it in the same pipeline (they need no memory): the refused event then
    vanished from both streams. It must stay in the preferences stream, pending, until its
    rejection is written; the scheduler waits for Redis meanwhile (refusals.py) and then
    writes it."""

    async def test_a_batch_keeps_its_refused_entries_until_their_rejections_are_written(
        self, own_redis: tuple[aioredis.Redis, str], scheduler: SchedulerService
    ) -> None:
        redis, _url = own_redis
        entries = await _read(redis, scheduler)
        await redis.config_set("maxmemory-policy", "noeviction")
        await redis.config_set("maxmemory", 1)
        with capture_logs() as logs:
            batch = asyncio.create_task(scheduler.handle_fields(entries))
            await asyncio.sleep(0.5)
            kept = await _kept(redis, scheduler)
            await redis.config_set("maxmemory", 0)
            await asyncio.wait_for(batch, timeout=10)
        waits = [e["error"] for e in logs if e["event"] == "redis_refused_backing_off"]
        print(f"rejections refused {len(waits)} times, then written")
        assert not batch.exception()
        assert kept == (2, 2, 0)
        assert waits
        assert set(waits) == {"OutOfMemoryError"}
        assert await _kept(redis, scheduler) == (0, 0, 2)

    async def test_one_entry_is_kept_until_its_rejection_is_written(
        self, own_redis: tuple[aioredis.Redis, str], scheduler: SchedulerService
    ) -> None:
        redis, _url = own_redis
        [(entry, fields), *_] = await _read(redis, scheduler)
        await redis.config_set("maxmemory-policy", "noeviction")
        await redis.config_set("maxmemory", 1)
        one = asyncio.create_task(scheduler.handle_entry(entry.decode(), fields))  # Reclaimer's
        await asyncio.sleep(0.5)
        kept = await _kept(redis, scheduler)
        await redis.config_set("maxmemory", 0)
        await asyncio.wait_for(one, timeout=10)
        assert kept == (2, 2, 0)
        # Rejected and deleted; its acknowledgement is the Reclaimer's, after this returns.
        assert await _kept(redis, scheduler) == (1, 2, 1)


class TestSchedulerWaitsOutRefusals:
    async def test_an_outage_longer_than_the_reclaim_cap_dead_letters_no_preference(
        self, own_redis: tuple[aioredis.Redis, str]
    ) -> None:
        """A preferences.set read just before Redis runs out of memory, for 10x the reclaim
        idle time: the scheduler waits Redis out and then applies it. Before, the batch
        failed and was left to the Reclaimer, which counted a delivery per try and
        dead-lettered the event after `max_deliveries`: a couple's new schedule, gone to the
        dead letters for an outage that was not its fault."""
        redis, url = own_redis
        settings = scheduler_settings(
            url, "nudges", reclaim_idle=timedelta(milliseconds=200), max_deliveries=2
        )
        service = SchedulerService(settings, ManualClock(NOW))
        await service.start()
        try:
            # Redis hands the entry to the waiting XREADGROUP right after the XADD, before
            # the next command of the pipeline: the batch meets the refusal.
            async with redis.pipeline(transaction=False) as pipe:
                pipe.config_set("maxmemory-policy", "noeviction")
                pipe.xadd(settings.keys.preferences, {DATA_FIELD: preferences(COUPLE, 1, NOW)})
                pipe.config_set("maxmemory", 1)
                await pipe.execute()
            await asyncio.sleep(2.0)
            refused = await redis.hget(settings.keys.couple(COUPLE), "rev")
            await redis.config_set("maxmemory", 0)
            await eventually(
                lambda: redis.hget(settings.keys.couple(COUPLE), "rev"),
                until=lambda rev: rev == b"1",
            )
            await eventually(
                lambda: redis.xpending(settings.keys.preferences, SCHEDULER_GROUP),
                until=lambda p: p["pending"] == 0,
            )
        finally:
            await service.stop()
        assert refused is None  # it did meet the refusal
        assert not await redis.exists(settings.keys.dead)
        assert await redis.xlen(settings.keys.preferences) == 0


class TestReplayRefused:
    async def test_a_dead_letter_stays_until_its_copy_is_back_on_its_stream(
        self, own_redis: tuple[aioredis.Redis, str]
    ) -> None:
        """`nudge dead-letters replay` under `maxmemory`: the copies are refused, so the letters
        stay in the dead stream (before, the XDEL after each refused XADD ran: both gone)."""
        redis, _url = own_redis
        dead, source = "nudges:dead", "nudges:due:0"
        for n in range(2):
            await dead_letters.bury(
                redis,
                dead,
                source=source,
                entry_id=f"{n + 1}-0",
                reason="test",
                attempts=5,
                data=b"{}",
                maxlen=100,
            )
        await redis.config_set("maxmemory-policy", "noeviction")
        await redis.config_set("maxmemory", 1)
        with pytest.raises(OutOfMemoryError):
            await dead_letters.replay(redis, dead)
        await redis.config_set("maxmemory", 0)
        assert (await redis.xlen(dead), await redis.exists(source)) == (2, 0)
        assert await dead_letters.replay(redis, dead) == 2
        assert (await redis.xlen(dead), await redis.xlen(source)) == (0, 2)


class TestMissedOutcomesRefused:
    async def test_missed_outcomes_refused_after_fire_are_published_on_the_next_pass(
        self, own_redis: tuple[aioredis.Redis, str]
    ) -> None:
        """A daily check-in three days behind: FIRE re-arms the timer and publishes the late
        one, then Redis starts refusing writes (NOREPLICAS, set from `on_fired`, which runs
        between FIRE and the outcomes) before the three missed outcomes go out. They stay
        with the loop and the next pass publishes them; before, they were lost (the timer had
        moved on, so nothing would ever report those occurrences)."""
        redis, url = own_redis
        settings = scheduler_settings(url, "nudges")
        clock = ManualClock(datetime(2026, 12, 6, 12, tzinfo=UTC))
        store = ScheduleStore(redis, settings.keys, due_maxlen=100_000)
        data = example()["data"]
        data["nudges"] = {
            "check_in": {"cadence": {"repeat": "daily", "at": "08:00"}, "timing": "together"}
        }
        await PreferenceIngest(store, clock, settings).apply(
            parse_preference(envelope("preferences.set.v1", data, clock.now()))
        )
        admin = SyncRedis.from_url(url)

        def refuse_writes(_decision: Decision, _schedule: Schedule) -> None:
            admin.config_set("min-replicas-to-write", 1)

        loop = TimerLoop(store, clock, settings, on_fired=refuse_writes)
        clock.set(datetime(2026, 12, 10, 9, 0, tzinfo=UTC))  # 08:00 Berlin was 07:00Z
        try:
            with pytest.raises(ResponseError, match="NOREPLICAS"):
                await loop.tick(0)
            refused = await redis.xlen(settings.keys.outcomes)
            admin.config_set("min-replicas-to-write", 0)
            loop.on_fired = None
            while await loop.tick(0):  # nothing is due: the pass publishes what it kept
                pass
        finally:
            admin.config_set("min-replicas-to-write", 0)
            admin.close()
        missed = await read_events(redis, settings.keys.outcomes, parse_outcome)
        assert refused == 0
        assert sorted(o.data.scheduled_at.day for o in missed) == [7, 8, 9]
        assert {getattr(o.data, "reason", None) for o in missed} == {"missed"}
        assert len(await read_events(redis, settings.keys.due(0), parse_due)) == 1


class TestCadenceNoticeRefused:
    async def test_a_notice_refused_after_the_level_is_published_on_redelivery(
        self, own_redis: tuple[aioredis.Redis, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Maya ignored her appreciation nudges: her level moves down a step (compare-and-set),
        then Redis starts refusing writes (NOREPLICAS) just as cadence.adjusted.v1 goes out.
        The redelivered answer finds the level set ("stale"): it publishes the notice kept
        with the level, once. Before, the notice was never written."""
        redis, url = own_redis
        settings, answers = await _listening_couple(redis, url)
        ignored = _answer("ignored", NOW)
        real_publish = streams.publish  # what feedback.py calls

        async def refused_publish(*args: Any, **kwargs: Any) -> list[bytes]:
            await redis.config_set("min-replicas-to-write", 1)
            return await real_publish(*args, **kwargs)

        monkeypatch.setattr("couples_nudge.scheduler.feedback.publish", refused_publish)
        try:
            with pytest.raises(ResponseError, match="NOREPLICAS"):
                await answers.apply(ignored)
        finally:
            await redis.config_set("min-replicas-to-write", 0)
        monkeypatch.undo()
        couple = settings.keys.couple(COUPLE)
        level = await redis.hget(couple, "lvl:maya:appreciation")
        refused = await redis.xlen(settings.keys.outcomes)
        again = [await answers.apply(ignored) for _ in range(2)]  # redelivered twice
        notices = await _notices(redis, settings)
        assert (level is not None, refused) == (True, 0)
        assert again == ["stale", "stale"]
        assert [
            (n.data.direction, n.data.previous_level, n.data.level, n.data.kept, n.data.out_of)
            for n in notices
        ] == [("lowered", 0, 1, 2, 3)]
        assert not await redis.hexists(couple, "adj:maya:appreciation")

    async def test_answers_applied_again_move_the_level_once_each(
        self, own_redis: tuple[aioredis.Redis, str]
    ) -> None:
        """Events are applied at least once: "ignored" then "I did it" from Maya, each applied
        twice in the order a batch tried again gives them (A, B, A, B). The level goes down
        and back up once, with one notice each; before, the second A moved it down again
        (its key was no longer the last one) and the second B up again: four notices."""
        redis, url = own_redis
        settings, answers = await _listening_couple(redis, url)
        ignored = _answer("ignored", NOW, sent_s=1796000000)
        done = _answer("done", NOW + timedelta(hours=1), sent_s=1796003600)
        results = [await answers.apply(a) for a in (ignored, done, ignored, done)]
        notices = await _notices(redis, settings)
        assert results == ["applied", "applied", "stale", "stale"]
        assert [(n.data.direction, n.data.level) for n in notices] == [
            ("lowered", 1),
            ("raised", 0),
        ]


async def _listening_couple(
    redis: aioredis.Redis, url: str
) -> tuple[SchedulerSettings, FeedbackStore]:
    """Maya and Sam with the listening cadence on, appreciation 3 times a week; the store
    that applies their answers."""
    settings = scheduler_settings(url, "nudges")
    store = ScheduleStore(redis, settings.keys, due_maxlen=100_000)
    data = example()["data"]
    data |= {"listening": True}
    data["nudges"] = {
        "appreciation": {
            "cadence": {
                "repeat": "times_per_week",
                "times": 3,
                "between": {"start": "09:00", "end": "21:00"},
            }
        }
    }
    await PreferenceIngest(store, ManualClock(NOW), settings).apply(
        parse_preference(envelope("preferences.set.v1", data, NOW))
    )
    return settings, FeedbackStore(redis, settings.keys, outcomes_maxlen=1000)


def _answer(
    signal: Literal["done", "skip", "more", "ignored"], at: datetime, sent_s: int = 1796000000
) -> NudgeFeedback:
    """Maya's answer to her appreciation nudge sent at `sent_s` (epoch seconds)."""
    return NudgeFeedback(
        type="nudge.feedback.v1",
        event_id=uuid.uuid4(),
        occurred_at=at,
        producer="test",
        data=NudgeFeedbackData(
            couple_id=COUPLE,
            partner_id="maya",
            kind="appreciation",
            occurrence_id=f"{COUPLE}/a/maya@{sent_s}",
            signal=signal,
        ),
    )


async def _notices(redis: aioredis.Redis, settings: SchedulerSettings) -> list[CadenceAdjusted]:
    """The cadence.adjusted.v1 events on the outcomes stream, in order."""
    return [
        e
        for e in await read_events(redis, settings.keys.outcomes, parse_outcomes_entry)
        if isinstance(e, CadenceAdjusted)
    ]
