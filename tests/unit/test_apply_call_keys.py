"""ScheduleStore._apply_call names a couple's keys as Keys does (its shard written out)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.keys import Keys
from couples_nudge.scheduler.store import ScheduleStore, build_arm

_IDS = ["c1", "couple-42", "x.y_z", "Ünïcode-is-refused-by-SafeId-but-hashed-alike", "9" * 64]


class TestApplyCallKeys:
    @pytest.mark.parametrize("shards", [1, 2, 7, 16, 128])
    @pytest.mark.parametrize("couple_id", _IDS)
    def test_keys_are_the_couple_and_its_shard(self, shards: int, couple_id: str) -> None:
        """The couple key, the shard's keys and the parked key are Keys.couple's, Keys.shard_of's
        and Keys.parked's."""
        keys = Keys(prefix="t", shards=shards)
        store = ScheduleStore(aioredis.Redis(), keys, due_maxlen=10)
        arm = build_arm(f"{couple_id}/d/both", "spec", 1, 2)
        named, _args = store._apply_call(couple_id, 3, 4, {"s0": "a|UTC"}, [arm])
        shard = keys.shard_of(couple_id)
        assert named == [
            keys.couple(couple_id),
            keys.timers(shard),
            keys.schedules(shard),
            keys.tombstones(shard),
            keys.changes(shard),
            keys.parked(couple_id),
        ]
