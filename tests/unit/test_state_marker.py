"""The state marker's pure parts: where its key lives, the notice it builds, what is recent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from redis.crc import key_slot

from couples_nudge.common.keys import Keys
from couples_nudge.common.state_marker import (
    LOSS_SHOWN_FOR,
    StateEpoch,
    safe_name,
    state_lost_notice,
)

BEGAN = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LOST = StateEpoch(epoch="e1", began_at=BEGAN)


class TestKey:
    @pytest.mark.parametrize("prefix", ["nudges", "t0123456789", "a.b-c"])
    def test_marker_and_outcomes_share_a_cluster_slot(self, prefix: str) -> None:
        """OBSERVE touches both keys in one script: on Redis Cluster, one slot."""
        keys = Keys(prefix)
        assert key_slot(keys.state.encode()) == key_slot(keys.outcomes.encode())


class TestNotice:
    def test_same_loss_same_event_id(self) -> None:
        """Every process that could report one loss builds the same event id."""
        at = BEGAN + timedelta(days=1)
        one = state_lost_notice(Keys(), LOST, detected_at=at, detected_by="a", producer="x")
        two = state_lost_notice(Keys(), LOST, detected_at=at, detected_by="b", producer="y")
        other = StateEpoch(epoch="e2", began_at=BEGAN)
        three = state_lost_notice(Keys(), other, detected_at=at, detected_by="a", producer="x")
        assert one.event_id == two.event_id != three.event_id

    def test_says_when_the_lost_state_began(self) -> None:
        """Publishers learn which of their events were lost: everything since then."""
        at = BEGAN + timedelta(days=1)
        notice = state_lost_notice(Keys(), LOST, detected_at=at, detected_by="a", producer="x")
        assert (notice.type, notice.data.detected_at) == ("service.state_lost.v1", at)
        assert notice.data.lost_epoch_began_at == BEGAN

    @pytest.mark.parametrize(
        ("name", "expected"),
        [
            ("scheduler-host-12", "scheduler-host-12"),
            ("we ird{name}\n", "we_ird_name__"),
            ("x" * 200, "x" * 64),
            ("", "unnamed"),
        ],
    )
    def test_process_names_are_bounded_and_plain(self, name: str, expected: str) -> None:
        """NUDGE_CONSUMER_NAME is free text: the notice carries a bounded, plain form of it."""
        assert safe_name(name) == expected


class TestRecent:
    def test_a_loss_is_shown_for_a_day(self) -> None:
        """/readyz and the status views point at a loss for LOSS_SHOWN_FOR, then stop."""
        lost_at = BEGAN + timedelta(days=3)
        epoch = StateEpoch(epoch="e2", began_at=lost_at, lost_at=lost_at)
        assert epoch.recently_lost(lost_at + LOSS_SHOWN_FOR - timedelta(seconds=1))
        assert not epoch.recently_lost(lost_at + LOSS_SHOWN_FOR)
        assert not StateEpoch(epoch="e1", began_at=BEGAN).recently_lost(BEGAN)
