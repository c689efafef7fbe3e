"""Every Lua script and pipeline of both services, run for real on the cluster (8 shards).

Each script touches the keys of one shard's hash tag (one slot); pipelines may span primaries.
These tests drive the services' Redis edges in process with the services' own cluster client.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from couples_nudge.common import dead_letters
from couples_nudge.common.autopipeline import AutoPipeline
from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.common.keys import NOTIFIER_GROUP, Keys
from couples_nudge.common.reclaim import Reclaimer
from couples_nudge.common.streams import (
    DATA_FIELD,
    ensure_group,
    group_names,
    publish,
    read_entries,
    read_events,
    reject,
)
from couples_nudge.notifier.caps import CapLedger
from couples_nudge.notifier.record_expiry import RecordExpiry
from couples_nudge.notifier.retries import RetryQueue
from couples_nudge.notifier.state import NotifierState, idempotency_key
from couples_nudge.operator.status import gather_status
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop, shard_round
from couples_nudge_schemas import parse_due, parse_preference
from tests.support.cluster import LocalCluster
from tests.support.couples import couple_event, occurrences
from tests.support.events import envelope
from tests.support.settings import scheduler_settings

pytestmark = pytest.mark.cluster

SHARDS = 8
COUPLES = 24
START = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # Friday; date night 19:00 Berlin = 18:00Z
DATE_NIGHT = {
    "date_night": {
        "cadence": {"repeat": "weekly", "weekday": "fri", "at": "19:00"},
        "timing": "together",
    }
}


def _settings(cluster: LocalCluster, prefix: str) -> SchedulerSettings:
    return scheduler_settings(cluster.url, prefix, redis_cluster=True, shards=SHARDS)


async def _plant(redis: aioredis.Redis, settings: SchedulerSettings) -> ScheduleStore:
    store = ScheduleStore(redis, settings.keys, due_maxlen=100_000)
    ingest = PreferenceIngest(store, ManualClock(START), settings)
    events = [parse_preference(couple_event(n, nudges=DATE_NIGHT)) for n in range(COUPLES)]
    assert await ingest.apply_many(events) == ["applied"] * COUPLES
    return store


def _shards(keys: Keys) -> set[int]:
    return {keys.shard_of(f"c{n:05d}") for n in range(COUPLES)}


class TestScheduleStoreOnCluster:
    async def test_couples_are_applied_one_by_one_on_their_shards_primaries(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """APPLY_PLAN per event (the service's path) stores every couple under its shard."""
        settings = _settings(cluster, key_prefix)
        store = ScheduleStore(cluster_redis, settings.keys, due_maxlen=1000)
        ingest = PreferenceIngest(store, ManualClock(START), settings)
        for n in range(COUPLES):
            event = parse_preference(couple_event(n, nudges=DATE_NIGHT))
            assert await ingest.apply(event) == "applied"
        keys = settings.keys
        timers = [int(await cluster_redis.zcard(keys.timers(s))) for s in range(SHARDS)]
        assert sum(timers) == COUPLES  # one together date night each
        assert {s for s in range(SHARDS) if timers[s]} == _shards(keys)
        assert len({cluster.primary_of(keys.timers(s)).port for s in _shards(keys)}) == 3

    async def test_a_batch_is_applied_in_one_pipeline_spanning_primaries(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """apply_many pipelines APPLY_PLAN for couples on every primary; a replay is stale."""
        settings = _settings(cluster, key_prefix)
        store = await _plant(cluster_redis, settings)
        ingest = PreferenceIngest(store, ManualClock(START), settings)
        again = [parse_preference(couple_event(n, nudges=DATE_NIGHT)) for n in range(COUPLES)]
        assert await ingest.apply_many(again) == ["stale"] * COUPLES

    async def test_two_replicas_fire_every_shard_and_each_occurrence_once(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Two timer loops race over all 8 shards: DUE + FIRE publish each date night once."""
        settings = _settings(cluster, key_prefix)
        store = await _plant(cluster_redis, settings)
        clock = ManualClock(START + timedelta(hours=1, seconds=5))
        loops = [
            TimerLoop(store, clock, settings, replica=name) for name in ("sched-a-1", "sched-b-2")
        ]
        await asyncio.gather(
            *(loop.tick(s) for loop in loops for s in shard_round(SHARDS, loop.replica))
        )
        keys = settings.keys
        published: Counter[str] = Counter()
        for s in range(SHARDS):
            for due in await read_events(cluster_redis, keys.due(s), parse_due):
                published[due.data.occurrence_id] += 1
        expected = {
            oid for _, _, oid in occurrences(COUPLES, START, clock.now(), nudges=DATE_NIGHT)
        }
        assert set(published) == expected
        assert max(published.values()) == 1
        assert sum(loop.fired for loop in loops) == COUPLES
        assert await store.next_due_ms(next(iter(_shards(keys)))) == epoch_ms(
            START + timedelta(days=7, hours=1)
        )

    async def test_two_replicas_share_prepared_fires_on_every_shards_primary(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Both look ahead on all 8 shards; at the instant they count each shard's chunks off
        its counter (on that shard's primary): every date night once, all by prepared steps."""
        settings = _settings(cluster, key_prefix)
        store = await _plant(cluster_redis, settings)
        instant = START + timedelta(hours=1)
        clock = ManualClock(instant - timedelta(seconds=1))
        loops = [
            TimerLoop(store, clock, settings, replica=name) for name in ("sched-a-1", "sched-b-2")
        ]
        for loop in loops:
            for s in range(SHARDS):
                await loop.look_ahead(s)
        clock.set(instant + timedelta(milliseconds=20))
        await asyncio.gather(*(loop.fire_ahead(s) for loop in loops for s in range(SHARDS)))
        published: Counter[str] = Counter()
        for s in range(SHARDS):
            for due in await read_events(cluster_redis, settings.keys.due(s), parse_due):
                published[due.data.occurrence_id] += 1
        assert len(published) == COUPLES
        assert max(published.values()) == 1
        assert sum(loop.fired_ahead for loop in loops) == COUPLES

    async def test_pause_and_erase_touch_only_the_couples_shard(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """SET_IF_NEWER pauses a couple; ERASE removes its keys and timers, scrubs raw input."""
        settings = _settings(cluster, key_prefix)
        store = await _plant(cluster_redis, settings)
        ingest = PreferenceIngest(store, ManualClock(START), settings)
        keys = settings.keys
        pause = envelope("preferences.paused.v1", {"couple_id": "c00003"}, START)
        assert await ingest.apply(parse_preference(pause)) == "applied"
        assert await cluster_redis.hget(keys.couple("c00003"), "pause") is not None
        await reject(
            cluster_redis,
            keys.rejected,
            source=keys.preferences,
            entry_id="1-0",
            raw=b'{"couple_id":"c00003","bad":true}',
            reason="test",
            service="scheduler",
            maxlen=1000,
        )
        erase = envelope("couple.erased.v1", {"couple_id": "c00003"}, START)
        assert await ingest.apply(parse_preference(erase)) == "erased"
        assert not any([await cluster_redis.exists(k) for k in keys.couple_keys("c00003")])
        shard = keys.shard_of("c00003")
        assert await cluster_redis.zscore(keys.timers(shard), "c00003/d/both") is None
        assert await cluster_redis.xlen(keys.rejected) == 0


class TestNotifierStateOnCluster:
    async def test_sends_caps_and_dead_channels_are_recorded_on_the_couples_shard(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """RECORD_SENT, RESERVE and MARK_DEAD run, and load() reads them back in one pipeline."""
        settings = _settings(cluster, key_prefix)
        await _plant(cluster_redis, settings)
        keys = settings.keys
        state = NotifierState(cluster_redis, keys)
        caps = CapLedger(cluster_redis, keys)
        now = epoch_ms(START)
        sent = [idempotency_key("c00005/d/both@1", p, "email") for p in ("maya", "sam")]
        reserved = await caps.reserve(
            "c00005",
            "c00005/d/both@1",
            [("maya", ["email"]), ("sam", ["email"])],
            now_ms=now,
            window_ms=86_400_000,
            cap=3,
            keep_ms=2 * 86_400_000,
        )
        recorded = await state.record_sent(
            "c00005",
            [(key, "dn-picnic", b'{"outcome": 1}') for key in sent],
            scheduled_ms=now,
            now_ms=now,
            retention_ms=86_400_000,
            repeat_window_ms=86_400_000,
        )
        await state.mark_dead("c00005", "sam", "email", now)
        couple, already, seen, outbox = await state.load(
            "c00005", "c00005/d/both@1", seen_since_ms=now - 1000, seen_before_ms=now + 1
        )
        assert (reserved, recorded) == (["reserved", "reserved"], True)
        assert set(sent) <= already
        assert seen == {"dn-picnic": now}
        assert outbox == dict.fromkeys(sent, b'{"outcome": 1}')
        assert await cluster_redis.hget(keys.couple("c00005"), "dead:sam:email") is not None
        assert couple is not None


class TestRecordExpiryOnCluster:
    async def test_sets_without_an_expiry_on_every_primary_are_given_one(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """The sweep scans every primary and gives each set its expiry in a pipeline."""
        keys = _settings(cluster, key_prefix).keys
        couples = [f"c{n:05d}" for n in range(COUPLES)]
        for couple in couples:  # as a release before expiring records wrote them
            await cluster_redis.zadd(keys.sent(couple), {f"{couple}/d/both@1|maya|email": 1})
        week = timedelta(days=7)
        expiry = RecordExpiry(cluster_redis, keys, retention=week, repeat_window=week)
        assert await expiry.sweep() == COUPLES
        ttls = [await cluster_redis.pttl(keys.sent(couple)) for couple in couples]
        assert all(week.total_seconds() * 1000 < t <= 8 * 86_400_000 for t in ttls)
        assert await expiry.sweep() == 0


class TestRetryQueueOnCluster:
    async def test_due_retries_move_back_onto_their_shards_due_stream(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """MOVE_DUE puts each shard's due retries on that shard's stream with the attempt."""
        keys = Keys(prefix=key_prefix, shards=SHARDS)
        clock = ManualClock(START)
        retries = RetryQueue(cluster_redis, keys, clock, due_maxlen=1000)
        for shard in range(SHARDS):
            await retries.schedule(shard, f'{{"shard":{shard}}}'.encode(), 2, timedelta(seconds=30))
        clock.set(START + timedelta(minutes=1))
        moved = [await retries.move_due(shard) for shard in range(SHARDS)]
        assert moved == [1] * SHARDS
        for shard in range(SHARDS):
            [(_, fields)] = await read_entries(cluster_redis, keys.due(shard))
            assert fields == {
                DATA_FIELD.encode(): f'{{"shard":{shard}}}'.encode(),
                b"attempt": b"2",
            }


class TestStreamsOnCluster:
    async def test_publish_pipelines_events_onto_one_stream(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """publish() XADDs a batch in one pipeline and returns every entry id."""
        keys = Keys(prefix=key_prefix, shards=SHARDS)
        events = [parse_preference(couple_event(n)) for n in range(5)]
        ids = await publish(cluster_redis, keys.outcomes, events, maxlen=1000)
        assert len(ids) == 5
        assert await cluster_redis.xlen(keys.outcomes) == 5

    async def test_groups_are_created_on_every_shards_stream(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """ensure_group makes the notifier group on all 8 due streams, wherever they live."""
        keys = Keys(prefix=key_prefix, shards=SHARDS)
        for stream in keys.all_due():
            await ensure_group(cluster_redis, stream, NOTIFIER_GROUP)
            await ensure_group(cluster_redis, stream, NOTIFIER_GROUP)  # idempotent
        assert [await group_names(cluster_redis, s) for s in keys.all_due()] == [
            {NOTIFIER_GROUP}
        ] * SHARDS


class TestDeadLettersOnCluster:
    async def test_replay_puts_letters_back_on_streams_of_other_primaries(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """One pipeline re-adds each letter to its own shard's stream and deletes it."""
        keys = Keys(prefix=key_prefix, shards=SHARDS)
        for shard in range(SHARDS):
            await dead_letters.bury(
                cluster_redis,
                keys.dead,
                source=keys.due(shard),
                entry_id=f"{shard + 1}-0",
                reason="test",
                attempts=6,
                data=json.dumps({"shard": shard}).encode(),
                maxlen=1000,
            )
        assert await dead_letters.replay(cluster_redis, keys.dead) == SHARDS
        assert await cluster_redis.xlen(keys.dead) == 0
        lengths = [await cluster_redis.xlen(stream) for stream in keys.all_due()]
        assert lengths == [1] * SHARDS


class TestReclaimerOnCluster:
    async def _pending(
        self, redis: aioredis.Redis, stream: str, owner: str, count: int
    ) -> list[str]:
        """`count` entries delivered to consumer `owner` and left unacknowledged."""
        await ensure_group(redis, stream, NOTIFIER_GROUP)
        for n in range(count):
            await redis.xadd(stream, {DATA_FIELD: json.dumps({"n": n})})
        reply: Any = await redis.xreadgroup(NOTIFIER_GROUP, owner, {stream: ">"}, count=count)
        return [eid.decode() for eid, _ in reply[0][1]]

    def _reclaimer(
        self, redis: aioredis.Redis, keys: Keys, consumer: str, handled: list[str]
    ) -> Reclaimer:
        async def handle(raw: bytes, entry: str, fields: dict[bytes, bytes]) -> None:
            handled.append(entry)

        return Reclaimer(
            redis,
            stream=keys.due(5),
            group=NOTIFIER_GROUP,
            consumer=consumer,
            handle=handle,
            dead_stream=keys.dead,
            dead_maxlen=1000,
            min_idle_ms=200,
            max_deliveries=5,
        )

    async def test_a_dead_consumers_entries_are_handled_by_a_live_one(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """XAUTOCLAIM on the shard's primary hands idle entries to another replica; acked."""
        keys = Keys(prefix=key_prefix, shards=SHARDS)
        ids = await self._pending(cluster_redis, keys.due(5), "notifier-gone", 3)
        handled: list[str] = []
        live = self._reclaimer(cluster_redis, keys, "notifier-live", handled)
        await asyncio.sleep(0.3)  # past min_idle_ms: the owner went quiet
        assert await live.sweep() == 3
        assert handled == ids
        assert (await cluster_redis.xpending(keys.due(5), NOTIFIER_GROUP))["pending"] == 0

    async def test_entries_a_live_replica_still_holds_are_not_taken_over(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """The holder's refresh (XCLAIM JUSTID) keeps slow in-flight work from a second send."""
        keys = Keys(prefix=key_prefix, shards=SHARDS)
        ids = await self._pending(cluster_redis, keys.due(5), "notifier-busy", 3)
        busy = self._reclaimer(cluster_redis, keys, "notifier-busy", [])
        busy.held.update(ids)  # its subscriber is still handling them
        other_handled: list[str] = []
        other = self._reclaimer(cluster_redis, keys, "notifier-other", other_handled)
        await asyncio.sleep(0.3)  # slower than min_idle_ms
        await busy.refresh()
        assert await other.sweep() == 0
        assert other_handled == []
        summary = await cluster_redis.xpending(keys.due(5), NOTIFIER_GROUP)
        assert summary["consumers"] == [{"name": b"notifier-busy", "pending": 3}]


class TestStatusOnCluster:
    async def test_status_reads_streams_and_timers_of_every_primary(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """gather_status (TIME, then one pipeline over all streams) works on the cluster."""
        settings = _settings(cluster, key_prefix)
        await _plant(cluster_redis, settings)
        keys = settings.keys
        for stream in keys.all_due():
            await ensure_group(cluster_redis, stream, NOTIFIER_GROUP)
        status = await gather_status(cluster_redis, keys, START)
        assert status.timers_total == COUPLES
        assert len(status.timers) == SHARDS
        due = [s for s in status.streams if s.label.startswith("due:")]
        assert [s.label for s in due] == [f"due:{{s{n:02d}}}" for n in range(SHARDS)]
        assert all(s.group(NOTIFIER_GROUP) is not None for s in due)


class TestAutoPipelineOnCluster:
    async def test_commands_go_straight_to_their_primaries(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Scripts and single-key commands of every shard are answered by their primaries
        directly, none through ClusterPipeline; a script a primary never saw (or forgot) is
        sent there again as EVAL."""
        pipe = AutoPipeline(cluster_redis)
        script = cluster_redis.register_script("return {KEYS[1], ARGV[1]}")
        keys = [f"{key_prefix}:{{s{n:02d}}}:k" for n in range(SHARDS)]

        async def round_of_calls() -> list[Any]:
            return await asyncio.gather(
                *(pipe.script(script, [key], [n]) for n, key in enumerate(keys)),
                *(pipe.call("HSET", key + ":h", "f", n) for n, key in enumerate(keys)),
            )

        expected = [[key.encode(), str(n).encode()] for n, key in enumerate(keys)] + [1] * SHARDS
        assert await round_of_calls() == expected  # NOSCRIPT everywhere, then EVAL
        with cluster.primary_of(keys[0]).client() as primary:
            primary.script_flush()
        again = await round_of_calls()
        assert again[:SHARDS] == expected[:SHARDS]
        assert again[SHARDS:] == [0] * SHARDS  # the fields existed
        assert pipe.rerouted == 0

    async def test_a_stale_slot_map_is_followed_through_cluster_pipeline(
        self, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A command sent to a primary that no longer serves its slot (MOVED) is answered
        through ClusterPipeline, which follows the redirect; its neighbours stay direct."""
        assert isinstance(cluster_redis, RedisCluster)
        pipe = AutoPipeline(cluster_redis)
        await pipe.call("HSET", f"{key_prefix}:{{s00}}:h", "f", "x")  # the slot map is loaded
        key = f"{key_prefix}:{{s01}}:h"
        manager = cluster_redis.nodes_manager
        slot = cluster_redis.keyslot(key)
        right = manager.slots_cache[slot]
        wrong = next(n for n in manager.get_nodes_by_server_type("primary") if n is not right[0])
        manager.slots_cache[slot] = [wrong]
        try:
            replies = await asyncio.gather(
                pipe.call("HSET", key, "f", "y"), pipe.call("HGET", f"{key_prefix}:{{s00}}:h", "f")
            )
        finally:
            manager.slots_cache[slot] = right
        assert replies == [1, b"x"]
        assert pipe.rerouted == 1
        assert await cluster_redis.hget(key, "f") == b"y"

    async def test_a_primary_that_drops_its_connection_is_retried_and_the_others_stand(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """One primary kills the pipeline's connection: that primary's commands of the round
        trip go again through ClusterPipeline (on a new connection); the other primaries'
        replies of the same round trip stand as read, and the next round trip is direct."""
        assert isinstance(cluster_redis, RedisCluster)
        pipe = AutoPipeline(cluster_redis)
        keys = [f"{key_prefix}:{{s{n:02d}}}:h" for n in range(SHARDS)]
        await asyncio.gather(*(pipe.call("HSET", key, "f", "0") for key in keys))
        victim = cluster.primary_of(keys[0])
        on_victim = [key for key in keys if cluster.primary_of(key).port == victim.port]
        assert 0 < len(on_victim) < len(keys)  # the round trip spans primaries
        with victim.client() as client:
            assert client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
        replies = await asyncio.gather(*(pipe.call("HSET", key, "f", key) for key in keys))
        assert replies == [0] * len(keys)  # every field existed: each HSET ran once
        assert pipe.rerouted == len(on_victim)
        assert [await cluster_redis.hget(key, "f") for key in keys] == [k.encode() for k in keys]
        assert await asyncio.gather(*(pipe.call("HGET", key, "f") for key in keys)) == [
            k.encode() for k in keys
        ]
        assert pipe.rerouted == len(on_victim)  # direct again
