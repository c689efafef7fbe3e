"""The scheduler's Redis state against a real server: revisions, erasure, compare-and-set."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.common.streams import read_events
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import Fire, Fired, ScheduleStore, TimerRow
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import Nudges, PreferencesSetData, parse_due, parse_preference
from tests.support.events import envelope, preferences
from tests.support.settings import scheduler_settings

START = datetime(2026, 12, 1, tzinfo=UTC)
LATER = 2**62  # a `now` after every timer


async def _members(redis: aioredis.Redis, key: str) -> set[str]:
    return {m.decode() for m in cast("list[bytes]", await redis.zrange(key, 0, -1))}


async def _mentions(redis: aioredis.Redis, pattern: str, needle: str) -> list[str]:
    """Every key, zset member or hash field/value matching `pattern` that contains `needle`."""
    found: list[str] = []
    async for raw_key in redis.scan_iter(match=pattern, count=1000):
        key = cast("bytes", raw_key).decode()
        texts = [key]
        kind = cast("bytes", await redis.type(key))
        if kind == b"zset":
            texts += list(await _members(redis, key))
        elif kind == b"hash":
            fields = cast("dict[bytes, bytes]", await redis.hgetall(key))
            texts += [(f + b"=" + v).decode() for f, v in fields.items()]
        found += [t for t in texts if needle in t]
    return found


def _settings(redis_url: str, prefix: str) -> SchedulerSettings:
    return scheduler_settings(redis_url, prefix)


def _ingest(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> tuple[SchedulerSettings, ScheduleStore, PreferenceIngest]:
    """Settings, a store and an ingest at START, as most tests here need them."""
    settings = _settings(redis_url, key_prefix)
    store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
    return settings, store, PreferenceIngest(store, ManualClock(START), settings)


class TestRevisions:
    async def test_newer_revision_replaces_and_older_is_ignored(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A replayed or out-of-order older revision never rolls state back."""
        settings, _, ingest = _ingest(redis, redis_url, key_prefix)
        assert await ingest.apply(parse_preference(preferences("c1", revision=2))) == "applied"
        assert await ingest.apply(parse_preference(preferences("c1", revision=1))) == "stale"
        assert await ingest.apply(parse_preference(preferences("c1", revision=2))) == "stale"
        assert await redis.hget(settings.keys.couple("c1"), "rev") == b"2"

    async def test_dropping_a_nudge_kind_removes_its_timers(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A new revision without date night leaves no date-night timer or record behind."""
        settings, _, ingest = _ingest(redis, redis_url, key_prefix)
        await ingest.apply(parse_preference(preferences("c1", revision=1)))
        before = await _members(redis, settings.keys.timers(0))
        assert "c1/d/both" in before
        event = preferences("c1", revision=2)
        nudges = parse_preference(event).data.nudges.model_dump(mode="json", exclude_none=True)  # type: ignore[union-attr]
        del nudges["date_night"]
        await ingest.apply(parse_preference(preferences("c1", revision=2, nudges=nudges)))
        after = await _members(redis, settings.keys.timers(0))
        assert after == before - {"c1/d/both"}
        assert await redis.hget(settings.keys.couple("c1"), "d/both") is None
        assert await redis.hget(settings.keys.couple("c1"), "c/both") is not None


class TestErasure:
    async def test_erase_leaves_no_key_with_the_couple_and_blocks_replays(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """After erasure no key, field or timer names the couple; older events cannot revive it."""
        settings = _settings(redis_url, key_prefix)
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        clock = ManualClock(START)
        ingest = PreferenceIngest(store, clock, settings)
        await ingest.apply(parse_preference(preferences("gone-couple", occurred_at=START)))
        await ingest.apply(parse_preference(preferences("kept-couple", occurred_at=START)))
        await redis.zadd(settings.keys.sent("gone-couple"), {"x|maya|email": 1})
        erase = envelope("couple.erased.v1", {"couple_id": "gone-couple"}, START + timedelta(1))
        assert await ingest.apply(parse_preference(erase)) == "erased"

        assert await _mentions(redis, f"{key_prefix}:*", "gone-couple") == []
        replay = preferences("gone-couple", revision=9, occurred_at=START)
        assert await ingest.apply(parse_preference(replay)) == "erased"
        assert await redis.exists(settings.keys.couple("kept-couple")) == 1

    async def test_preferences_after_erasure_start_afresh(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A couple who comes back after erasure (a newer event) is planned again from scratch."""
        _, _, ingest = _ingest(redis, redis_url, key_prefix)
        erase = envelope("couple.erased.v1", {"couple_id": "back"}, START)
        await ingest.apply(parse_preference(erase))
        later = preferences("back", revision=1, occurred_at=START + timedelta(days=2))
        assert await ingest.apply(parse_preference(later)) == "applied"


class TestReplicas:
    async def test_concurrent_timer_loops_publish_each_occurrence_once(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Three loops racing over the same due timers: every occurrence lands exactly once."""
        settings = _settings(redis_url, key_prefix)
        clock = ManualClock(START)
        clients = [aioredis.Redis.from_url(redis_url) for _ in range(3)]
        stores = [ScheduleStore(c, settings.keys, due_maxlen=100_000) for c in clients]
        ingest = PreferenceIngest(stores[0], clock, settings)
        for i in range(60):
            await ingest.apply(parse_preference(preferences(f"c{i}")))
        loops = [TimerLoop(s, clock, settings.model_copy(update={"batch_size": 7})) for s in stores]
        expected = 0
        for _hour in range(14 * 24):  # steps shorter than every grace window: nothing missed
            clock.advance(timedelta(hours=1))
            due_now = await redis.zcount(settings.keys.timers(0), "-inf", epoch_ms(clock.now()))
            expected += due_now
            while await redis.zcount(settings.keys.timers(0), "-inf", epoch_ms(clock.now())):
                await asyncio.gather(*(loop.tick(0) for loop in loops))
        dues = await read_events(redis, settings.keys.due(0), parse_due)
        ids = [due.data.occurrence_id for due in dues]
        assert len(ids) == len(set(ids))
        assert len(ids) == expected > 0
        assert sum(loop.fired for loop in loops) == len(ids)
        for client in clients:
            await client.aclose()

    async def test_fire_returns_what_it_lost(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A step whose timer no longer holds the score read is lost and returned; others win."""
        settings, store, due = await _planned_couple(redis, redis_url, key_prefix)
        assert len(due) == 4
        assert all(type(score) is int for _, score, _ in due)
        (first, score, _), *rest = due
        steps = [Fire(sid, at, at + 1, raw, None, None) for sid, at, raw in due]
        assert await store.fire(0, steps[:1], LATER) == Fired(set(), set())  # re-armed 1 ms later
        assert await store.fire(0, steps, LATER) == Fired({first}, set())
        rows = await redis.zrange(settings.keys.timers(0), 0, -1, withscores=True)
        timers = dict(cast("list[tuple[bytes, float]]", rows))
        assert timers[first.encode()] == score + 1
        assert all(timers[sid.encode()] == at + 1 for sid, at, _ in rest)

    async def test_a_schedule_twice_in_one_call_fires_once(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """FIRE reads every score up front (one ZMSCORE): a repeated step must still lose."""
        settings, store, due = await _planned_couple(redis, redis_url, key_prefix)
        (sid, at, raw), *_ = due
        step = Fire(sid, at, at + 60_000, raw, None, b'{"n":1}')
        again = Fire(sid, at, at + 120_000, raw, None, b'{"n":2}')
        assert await store.fire(0, [step, again], LATER) == Fired({sid}, set())
        entries = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(settings.keys.due(0))
        )
        assert [fields[b"__data__"] for _, fields in entries] == [b'{"n":1}']
        assert await redis.zscore(settings.keys.timers(0), sid) == at + 60_000

    async def test_a_timer_without_a_record_is_removed_and_others_rearmed(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """One call: a record erased meanwhile drops its timer; the rest are re-armed."""
        settings, store, due = await _planned_couple(redis, redis_url, key_prefix)
        (orphan, _, _), *rest = due
        await redis.hdel(settings.keys.couple("c1"), orphan.split("/", 1)[1])
        steps = [Fire(s, at, at + 7, raw, None, None) for s, at, raw in due]
        steps[0] = steps[0]._replace(state=None)  # read after the erasure: no record
        assert await store.fire(0, steps, LATER) == Fired(set(), set())
        timers = await _members(redis, settings.keys.timers(0))
        assert timers == {sid for sid, _, _ in rest}
        for sid, at, _ in rest:
            assert await redis.zscore(settings.keys.timers(0), sid) == at + 7


class TestPreparedSteps:
    """Steps read at one change counter value (a lookahead's chunk: `read_at`) go through
    lua.FIRE_AHEAD, which is sent no states; the same compare-and-set as FIRE."""

    async def test_a_schedule_twice_in_one_call_fires_once(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Scores are read up front there too: a repeated step loses."""
        settings, store, step, read_at = await _one_step(redis, redis_url, key_prefix)
        sid, at = step.schedule_id, step.expected_ms
        again = step._replace(next_fire_ms=at + 120_000, record=b"2|2|x", payload=b'{"n":2}')
        assert await store.fire(0, [step, again], LATER, read_at=read_at) == Fired({sid}, set())
        assert await _published(redis, settings) == [b'{"n":1}']
        assert await redis.zscore(settings.keys.timers(0), sid) == at + 60_000
        assert await redis.hget(settings.keys.couple("c1"), sid.split("/", 1)[1]) == b"1|1|x"

    async def test_a_step_whose_instant_is_still_ahead_is_left_armed(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """As FIRE: nothing is published for a score after `now`."""
        settings, store, step, read_at = await _one_step(redis, redis_url, key_prefix)
        sid, at = step.schedule_id, step.expected_ms
        assert await store.fire(0, [step], at - 1, read_at=read_at) == Fired(set(), {sid})
        assert await _published(redis, settings) == []
        assert await redis.zscore(settings.keys.timers(0), sid) == at

    async def test_after_a_bump_each_state_is_compared_again(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """The counter moved since the read: FIRE_AHEAD does nothing and FIRE compares each
        state, so a step read before its record changed is stale and the others fire."""
        settings, store, ingest = _ingest(redis, redis_url, key_prefix)
        for couple in ("c1", "c3"):  # the same schedules: one instant for both date nights
            await ingest.apply(parse_preference(preferences(couple)))
        read_at = await _counter(redis, settings)
        due = await store.due_records(0, LATER, 10)
        (changed, at, raw), (other, _, other_raw) = [
            r for r in due if r.schedule_id.endswith("/d/both")
        ]
        assert other != changed
        assert await redis.zscore(settings.keys.timers(0), other) == at
        await redis.hset(settings.keys.couple("c1"), changed.split("/", 1)[1], b"9|9|changed")
        # The counter moves (a new couple's preferences.set would not: lua.py's docstring).
        assert await store.set_if_newer("c3", "pause", 1, "inf") == 1
        assert await _counter(redis, settings) != read_at
        steps = [
            Fire(changed, at, at + 7, raw, None, b"{}"),
            Fire(other, at, at + 7, other_raw, None, b"{}"),
        ]
        assert await store.fire(0, steps, LATER, read_at=read_at) == Fired(set(), {changed})
        assert await redis.zscore(settings.keys.timers(0), changed) == at
        assert await redis.zscore(settings.keys.timers(0), other) == at + 7
        assert await _published(redis, settings) == [b"{}"]

    async def test_steps_re_armed_apart_or_not_at_all_in_one_call(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Steps of one instant sent grouped by their next fire; no next fire: removed."""
        settings, store, ingest = _ingest(redis, redis_url, key_prefix)
        for couple in ("c1", "c3", "c4"):  # one instant for their date nights
            await ingest.apply(parse_preference(preferences(couple)))
        due = [
            r for r in await store.due_records(0, LATER, 20) if r.schedule_id.endswith("/d/both")
        ]
        (a, at, raw_a), (b, _, raw_b), (c, _, raw_c) = due
        steps = [
            Fire(a, at, at + 7, raw_a, None, b"a"),
            Fire(b, at, None, raw_b, None, b"b"),
            Fire(c, at, at + 7, raw_c, None, b"c"),
        ]
        read_at = await _counter(redis, settings)
        assert await store.fire(0, steps, LATER, read_at=read_at) == Fired(set(), set())
        assert await redis.zscore(settings.keys.timers(0), a) == at + 7
        assert await redis.zscore(settings.keys.timers(0), b) is None
        assert await redis.zscore(settings.keys.timers(0), c) == at + 7
        assert sorted(await _published(redis, settings)) == [b"a", b"b", b"c"]

    async def test_steps_of_several_record_fields_in_one_call(
        self,
        redis_url: str,
        redis: aioredis.Redis,
        key_prefix: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Sent grouped by record field, each as its couple id: FIRE_AHEAD rebuilds each
        schedule id, and each record lands in its own field (no fallback to FIRE)."""
        settings, store, due = await _planned_couple(redis, redis_url, key_prefix)
        (a, at, raw_a), (b, _, raw_b), *_ = due
        assert a.split("/", 1)[1] != b.split("/", 1)[1]
        await redis.zadd(settings.keys.timers(0), {b: at})  # one instant for both
        steps = [
            Fire(a, at, at + 7, raw_a, b"1|a|x", b"a"),
            Fire(b, at, at + 9, raw_b, b"1|b|x", b"b"),
        ]
        read_at = await _counter(redis, settings)
        monkeypatch.setattr(store, "_fire", None)  # FIRE would fail: FIRE_AHEAD does it all
        assert await store.fire(0, steps, LATER, read_at=read_at) == Fired(set(), set())
        couple = settings.keys.couple("c1")
        assert await redis.hget(couple, a.split("/", 1)[1]) == b"1|a|x"
        assert await redis.hget(couple, b.split("/", 1)[1]) == b"1|b|x"
        assert await redis.zscore(settings.keys.timers(0), a) == at + 7
        assert await redis.zscore(settings.keys.timers(0), b) == at + 9
        assert sorted(await _published(redis, settings)) == [b"a", b"b"]

    async def test_a_group_larger_than_one_zmscore_call(
        self,
        redis_url: str,
        redis: aioredis.Redis,
        key_prefix: str,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Over 200 steps of one next fire and field: their scores are read in slices."""
        settings, store, ingest = _ingest(redis, redis_url, key_prefix)
        for n in range(250):  # one instant for their date nights
            await ingest.apply(parse_preference(preferences(f"c{n}")))
        due = [
            r for r in await store.due_records(0, LATER, 2000) if r.schedule_id.endswith("/d/both")
        ]
        assert len(due) == 250
        at = due[0].score
        steps = [Fire(sid, score, at + 7, raw, None, b"p") for sid, score, raw in due]
        steps.append(steps[-1])  # the last one twice: it loses the second time
        read_at = await _counter(redis, settings)
        monkeypatch.setattr(store, "_fire", None)  # FIRE would fail: FIRE_AHEAD does it all
        fired = await store.fire(0, steps, LATER, read_at=read_at)
        assert fired == Fired({due[-1][0]}, set())
        scores = await redis.zmscore(settings.keys.timers(0), [sid for sid, _, _ in due])
        assert scores == [at + 7] * 250
        assert len(await _published(redis, settings)) == 250

    async def test_steps_of_several_scores_fire_as_usual(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """FIRE_AHEAD takes steps of one score; others go through FIRE with their states."""
        settings, store, due = await _planned_couple(redis, redis_url, key_prefix)
        assert len({at for _, at, _ in due}) > 1
        steps = [Fire(s, at, at + 7, raw, None, b"{}") for s, at, raw in due]
        read_at = await _counter(redis, settings)
        assert await store.fire(0, steps, LATER, read_at=read_at) == Fired(set(), set())
        for sid, at, _ in due:
            assert await redis.zscore(settings.keys.timers(0), sid) == at + 7

    async def test_the_due_stream_is_still_capped(
        self, redis_url: str, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Trimmed once a call (XTRIM ~ due_maxlen, whole nodes) instead of by each XADD."""
        settings, _, due = await _planned_couple(redis, redis_url, key_prefix)
        store = ScheduleStore(redis, settings.keys, due_maxlen=10)
        for n in range(300):
            await redis.xadd(settings.keys.due(0), {"__data__": b"%d" % n})
        (sid, at, raw), *_ = due
        step = Fire(sid, at, at + 7, raw, None, b"last")
        read_at = await _counter(redis, settings)
        assert await store.fire(0, [step], LATER, read_at=read_at) == Fired(set(), set())
        published = await _published(redis, settings)
        assert len(published) < 300
        assert published[-1] == b"last"


async def _one_step(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> tuple[SchedulerSettings, ScheduleStore, Fire, bytes]:
    """Couple c1 planned; a publishing step of its first due timer, and the counter read."""
    settings, store, due = await _planned_couple(redis, redis_url, key_prefix)
    (sid, at, raw), *_ = due
    step = Fire(sid, at, at + 60_000, raw, b"1|1|x", b'{"n":1}')
    return settings, store, step, await _counter(redis, settings)


async def _counter(redis: aioredis.Redis, settings: SchedulerSettings) -> bytes:
    """The shard's change counter as a lookahead would have read it."""
    value = await redis.get(settings.keys.changes(0))
    assert value is not None
    return cast("bytes", value)


async def _published(redis: aioredis.Redis, settings: SchedulerSettings) -> list[bytes]:
    entries = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(settings.keys.due(0))
    )
    return [fields[b"__data__"] for _, fields in entries]


async def _planned_couple(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> tuple[SchedulerSettings, ScheduleStore, list[TimerRow]]:
    """Couple c1's four schedules planned; their due timers, read as the timer loop reads them."""
    settings, store, ingest = _ingest(redis, redis_url, key_prefix)
    await ingest.apply(parse_preference(preferences("c1")))
    return settings, store, await store.due_records(0, LATER, 10)


class TestLayout:
    async def test_records_are_fields_of_a_compact_couple_hash(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Each schedule is a short field of its couple's hash, which stays a listpack."""
        settings, _, _ = await _planned_couple(redis, redis_url, key_prefix)
        key = settings.keys.couple("c1")
        fields = cast("dict[bytes, bytes]", await redis.hgetall(key))
        records = sorted(f.decode() for f in fields if b"/" in f)
        assert records == ["a/maya", "a/sam", "c/both", "d/both"]
        assert await _members(redis, settings.keys.timers(0)) == {f"c1/{r}" for r in records}
        assert max(len(v) for v in fields.values()) <= 64
        assert await redis.object("encoding", key) == b"listpack"
        assert await redis.exists(settings.keys.schedules(0)) == 0

    async def test_new_revision_keeps_sequences_and_consent_and_restates_the_rest(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Seq and pause/unsubscribe survive a new revision; dead channels and dropped parts go."""
        settings, _, ingest = _ingest(redis, redis_url, key_prefix)
        await ingest.apply(parse_preference(preferences("c1", revision=1)))
        key = settings.keys.couple("c1")
        record = cast("bytes", await redis.hget(key, "d/both"))
        await redis.hset(key, "d/both", b"7" + record[1:])
        await redis.hset(key, mapping={"pause:sam": "5|inf", "dead:maya:email": "5"})
        assert await redis.hget(key, "f") is not None
        await ingest.apply(parse_preference(preferences("c1", revision=2, focus_areas=[])))
        fields = cast("dict[bytes, bytes]", await redis.hgetall(key))
        assert fields[b"d/both"].startswith(b"7|")
        assert fields[b"c/both"].startswith(b"0|")
        assert fields[b"pause:sam"] == b"5|inf"
        assert fields[b"rev"] == b"2"
        assert b"dead:maya:email" not in fields
        assert b"f" not in fields


LEGACY_SPECS = {
    "c1/d/both": '{"z":"Europe/Berlin","r":["maya","sam"],"v":1,"x":{"e":"0 19 * * 5"},'
    '"p":["maya","sam"],"q":[["22:00","08:00","defer","Europe/Berlin"]]}',
    "c1/d/turns": '{"z":"Europe/Berlin","r":["maya","sam"],"v":1,"x":{"e":"0 18 * * 6"},"a":1,'
    '"p":["maya","sam"]}',
}


async def _plant_legacy(redis: aioredis.Redis, settings: SchedulerSettings, fire_ms: int) -> None:
    """A couple exactly as the scheduler stored it before issue 7: JSON profile, shard hash."""
    data = parse_preference(preferences("c1")).data
    assert isinstance(data, PreferencesSetData)
    profile = data.model_copy(update={"nudges": Nudges()})
    await redis.hset(
        settings.keys.couple("c1"),
        mapping={
            "rev": "1",
            "profile": profile.model_dump_json(exclude_defaults=True),
            "sids": ",".join(LEGACY_SPECS),
            "pause:sam": "5|inf",
        },
    )
    for n, (sid, spec) in enumerate(LEGACY_SPECS.items()):
        await redis.hset(settings.keys.schedules(0), sid, f"5|{fire_ms}|{spec}")
        await redis.zadd(settings.keys.timers(0), {sid: fire_ms + n * 86_400_000})


class TestLegacyLayout:
    async def test_a_legacy_record_still_fires(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A timer whose record is in the old shard hash fires from it and re-arms it there."""
        settings = _settings(redis_url, key_prefix)
        friday = datetime(2026, 12, 4, 18, tzinfo=UTC)  # 19:00 in Berlin
        await _plant_legacy(redis, settings, epoch_ms(friday))
        clock = ManualClock(friday + timedelta(seconds=1))
        loop = TimerLoop(ScheduleStore(redis, settings.keys, due_maxlen=1000), clock, settings)
        await loop.tick(0)
        [due] = await read_events(redis, settings.keys.due(0), parse_due)
        assert (due.data.schedule_id, due.data.sequence) == ("c1/d/both", 5)
        assert due.data.recipients == ["maya", "sam"]
        record = cast("bytes", await redis.hget(settings.keys.schedules(0), "c1/d/both"))
        assert record.startswith(f"6|{epoch_ms(friday + timedelta(days=7))}|".encode())

    async def test_a_new_revision_migrates_a_legacy_couple(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The next preferences.set moves a couple to the compact layout, with seq and consent."""
        settings = _settings(redis_url, key_prefix)
        await _plant_legacy(redis, settings, epoch_ms(START) + 3_600_000)
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        ingest = PreferenceIngest(store, ManualClock(START), settings)
        assert await ingest.apply(parse_preference(preferences("c1", revision=2))) == "applied"
        key = settings.keys.couple("c1")
        fields = cast("dict[bytes, bytes]", await redis.hgetall(key))
        assert b"profile" not in fields
        assert b"sids" not in fields
        assert fields[b"d/both"].startswith(b"5|")
        assert fields[b"pause:sam"] == b"5|inf"
        assert await redis.object("encoding", key) == b"listpack"
        assert await redis.exists(settings.keys.schedules(0)) == 0
        assert "c1/d/turns" not in await _members(redis, settings.keys.timers(0))

    async def test_erasing_a_legacy_couple_leaves_nothing(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Erasure also removes records and timers of the old layout."""
        settings = _settings(redis_url, key_prefix)
        await _plant_legacy(redis, settings, epoch_ms(START) + 3_600_000)
        store = ScheduleStore(redis, settings.keys, due_maxlen=1000)
        erase = envelope("couple.erased.v1", {"couple_id": "c1"}, START)
        await PreferenceIngest(store, ManualClock(START), settings).apply(parse_preference(erase))
        assert await _mentions(redis, f"{key_prefix}:*", "c1/") == []
        assert await redis.exists(settings.keys.couple("c1")) == 0
