"""Scheduler replicas share every shard without a leader, starting their passes apart."""

from __future__ import annotations

import pytest

from couples_nudge.scheduler.timer_loop import shard_round


class TestShardRound:
    @pytest.mark.parametrize("shards", [1, 2, 3, 8, 64])
    def test_a_pass_visits_every_shard_exactly_once(self, shards: int) -> None:
        """Whatever the replica's name, one pass covers each shard once."""
        assert sorted(shard_round(shards, "scheduler-host-a-4242")) == list(range(shards))

    def test_the_round_is_a_rotation_in_shard_order(self) -> None:
        """After the starting shard the pass goes on in order and wraps around."""
        order = shard_round(8, "scheduler-host-a-4242")
        assert order == [(order[0] + i) % 8 for i in range(8)]

    def test_the_start_is_stable_for_a_name(self) -> None:
        """The same consumer name starts at the same shard in every process and restart."""
        assert shard_round(8, "scheduler-host-b-17") == shard_round(8, "scheduler-host-b-17")

    def test_replicas_start_on_different_shards(self) -> None:
        """Eight replicas' names spread their first shard over most of eight shards."""
        starts = {shard_round(8, f"scheduler-web-{pid}")[0] for pid in range(100, 108)}
        assert len(starts) >= 4

    def test_one_shard_needs_no_spreading(self) -> None:
        """A single-shard deployment polls shard 0, as before."""
        assert shard_round(1, "scheduler-host-a-4242") == [0]
