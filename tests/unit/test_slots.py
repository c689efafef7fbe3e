"""Shards on a Redis Cluster: one hash slot each, spread evenly by balanced slot ranges."""

from __future__ import annotations

import itertools

import pytest
from redis.crc import key_slot

from couples_nudge.common.keys import Keys
from couples_nudge.common.slots import SLOTS, balanced_ranges, shard_slot


class TestShardSlot:
    @pytest.mark.parametrize("prefix", ["nudges", "staging-2"])
    def test_every_key_of_a_shard_is_in_its_slot(self, prefix: str) -> None:
        """Timers, schedules, due stream, retries, lookahead claims, the firing lease, the
        change counter and a couple's keys share the shard's slot."""
        keys = Keys(prefix=prefix, shards=8)
        couple = next(f"c{n}" for n in range(100) if keys.shard_of(f"c{n}") == 5)
        names = [keys.timers(5), keys.schedules(5), keys.due(5), keys.retries(5)]
        names += [keys.tombstones(5), keys.ahead_claims(5, 1_796_407_200_000)]
        names += [keys.fire_lease(5), keys.changes(5)]
        names += keys.couple_keys(couple)
        assert {key_slot(name.encode()) for name in names} == {shard_slot(5)}


class TestBalancedRanges:
    @pytest.mark.parametrize(("shards", "primaries"), [(8, 3), (24, 3), (64, 6), (3, 3)])
    def test_ranges_cover_every_slot_once_in_order(self, shards: int, primaries: int) -> None:
        """The ranges are contiguous from slot 0 to 16383, one per primary."""
        ranges = balanced_ranges(shards, primaries)
        assert len(ranges) == primaries
        assert ranges[0][0] == 0
        assert ranges[-1][1] == SLOTS - 1
        assert all(last + 1 == nxt for (_, last), (nxt, _) in itertools.pairwise(ranges))

    @pytest.mark.parametrize(("shards", "primaries"), [(8, 3), (24, 3), (64, 6), (3, 3)])
    def test_each_primary_holds_an_equal_share_of_shards(self, shards: int, primaries: int) -> None:
        """Shard counts per range differ by at most one (24 over 3: 8 each)."""
        ranges = balanced_ranges(shards, primaries)
        held = [sum(a <= shard_slot(s) <= b for s in range(shards)) for a, b in ranges]
        assert sum(held) == shards
        assert max(held) - min(held) <= 1

    def test_equal_thirds_would_not_spread_the_shards(self) -> None:
        """Why this exists: equal slot thirds put 12 of 24 shards on one primary."""
        thirds = [(0, 5460), (5461, 10922), (10923, 16383)]
        held = sorted(sum(a <= shard_slot(s) <= b for s in range(24)) for a, b in thirds)
        assert held == [6, 6, 12]

    def test_more_primaries_than_shards_is_refused(self) -> None:
        """A primary without a shard would hold no work: refused."""
        with pytest.raises(ValueError, match="primaries"):
            balanced_ranges(2, 3)
