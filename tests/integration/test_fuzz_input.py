"""Thousands of generated bad events against a live scheduler: none crash it, all accounted for."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common.clock import ManualClock
from services.common.keys import SCHEDULER_GROUP
from services.common.streams import DATA_FIELD
from services.scheduler.service import SchedulerService
from tests.support.events import example
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually

VALID: dict[str, Any] = example()


def _with(path: list[str | int], value: Any) -> bytes:
    event = copy.deepcopy(VALID)
    target: Any = event
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(event).encode()


# Every strategy below yields an event that is invalid for a stated reason.
_garbage = st.binary(min_size=1, max_size=200).map(lambda b: b"\xff" + b)
_not_objects = st.one_of(st.integers(), st.text(max_size=20), st.lists(st.integers())).map(
    lambda v: json.dumps(v).encode()
)
_unknown_type = (
    st.text(min_size=1, max_size=30)
    .filter(lambda t: "." not in t)
    .map(lambda t: _with(["type"], f"preferences.{t}.v9"))
)
_extra_field = (
    st.text(min_size=1, max_size=12)
    .filter(lambda k: k not in VALID["data"])
    .map(lambda k: _with(["data", k], 1))
)
_naive_time = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)).map(
    lambda d: _with(["occurred_at"], d.isoformat())
)
_bad_zone = (
    st.text(min_size=1, max_size=30)
    .filter(lambda z: "/" not in z and z != "UTC")
    .map(lambda z: _with(["data", "partners", 0, "timezone"], f"Nowhere/{z}"))
)
_long_name = st.text(min_size=41, max_size=80).map(
    lambda n: _with(["data", "partners", 1, "name"], n)
)
_wrong_revision = st.one_of(st.text(max_size=5), st.floats(allow_nan=False), st.none()).map(
    lambda v: _with(["data", "revision"], v)
)
_bad_cron = st.sampled_from(["61 * * * *", "* * *", "every day", "0 0 32 * *", "a b c d e"]).map(
    lambda c: _with(["data", "nudges", "check_in", "cadence"], {"repeat": "cron", "cron": c})
)
_too_frequent = st.integers(min_value=1, max_value=59).map(
    lambda n: _with(
        ["data", "nudges", "check_in", "cadence"], {"repeat": "cron", "cron": f"*/{n} * * * *"}
    )
)
_oversized = st.integers(min_value=65_600, max_value=70_000).map(
    lambda n: _with(["data", "partners", 0, "name"], "x" * n)
)
BAD_EVENTS = st.one_of(
    _garbage,
    _not_objects,
    _unknown_type,
    _extra_field,
    _naive_time,
    _bad_zone,
    _long_name,
    _wrong_revision,
    _bad_cron,
    _too_frequent,
    _oversized,
)


def _good(n: int) -> bytes:
    event = copy.deepcopy(VALID)
    event["event_id"] = str(uuid.uuid4())
    event["data"]["couple_id"] = f"good-{n}"
    return json.dumps(event).encode()


class TestFuzzedInput:
    @settings(
        max_examples=6,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,  # a fresh prefix is made per example below
        ],
    )
    @given(batch=st.lists(BAD_EVENTS, min_size=300, max_size=400), every=st.integers(3, 9))
    def test_bad_events_are_rejected_and_good_ones_interleaved_are_applied(
        self, redis_url: str, key_prefix: str, batch: list[bytes], every: int
    ) -> None:
        """Each bad event lands once on the rejected stream; each good one is applied; no crash."""
        asyncio.run(self._run(redis_url, f"{key_prefix}{uuid.uuid4().hex[:6]}", batch, every))

    async def _run(self, redis_url: str, prefix: str, batch: list[bytes], every: int) -> None:
        service = SchedulerService(
            scheduler_settings(redis_url, prefix), ManualClock(datetime(2026, 12, 1, tzinfo=UTC))
        )
        redis = aioredis.Redis.from_url(redis_url)
        await service.start()
        try:
            good = 0
            async with redis.pipeline(transaction=False) as pipe:
                for i, raw in enumerate(batch):
                    pipe.xadd(service.keys.preferences, {DATA_FIELD: raw})
                    if i % every == 0:
                        pipe.xadd(service.keys.preferences, {DATA_FIELD: _good(good)})
                        good += 1
                await pipe.execute()
            await eventually(
                lambda: redis.xlen(service.keys.rejected),
                until=lambda n: n >= len(batch),
                within=60,
            )
            await eventually(
                lambda: _pending(redis, service.keys.preferences), until=lambda n: n == 0
            )
            assert await redis.xlen(service.keys.rejected) == len(batch)
            applied = [
                await redis.hget(service.keys.couple(f"good-{n}"), "rev") for n in range(good)
            ]
            assert applied == [b"1"] * good
            assert all(not task.done() for task in service._tasks)  # loops still alive
            assert await redis.xlen(service.keys.preferences) == 0  # applied entries deleted
        finally:
            await service.stop()
            keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()


async def _pending(redis: aioredis.Redis, stream: str) -> int:
    groups = await redis.xinfo_groups(stream)
    return sum(int(g["pending"]) for g in groups if g["name"] == SCHEDULER_GROUP.encode())
