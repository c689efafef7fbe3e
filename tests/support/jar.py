"""Date-jar events for tests."""

from __future__ import annotations

from datetime import datetime

from tests.support.events import envelope


def idea_added(
    couple_id: str,
    idea_id: str,
    text: str,
    added_by: str = "maya",
    occurred_at: datetime | None = None,
) -> bytes:
    data = {"couple_id": couple_id, "idea_id": idea_id, "text": text, "added_by": added_by}
    return envelope("datejar.idea_added.v1", data, occurred_at)


def idea_removed(couple_id: str, idea_id: str, occurred_at: datetime | None = None) -> bytes:
    data = {"couple_id": couple_id, "idea_id": idea_id}
    return envelope("datejar.idea_removed.v1", data, occurred_at)
