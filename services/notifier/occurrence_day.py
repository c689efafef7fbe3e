"""Which occurrences are one nudge for content, so both partners get the same. Pure: no I/O.

A shared schedule ("<couple>/<kind>/both" or ".../turns") sends one occurrence to both partners
(or to the one whose turn it is): its occurrence id names it. A per-partner schedule (timing
"own_local", or recipients "one") sends each partner their own occurrence at their own local
time: the partners' occurrences of one local calendar day are one nudge for content, so each
is named by the day in the recipient's zone.
"""

from __future__ import annotations

from datetime import date
from typing import Final
from zoneinfo import ZoneInfo

from couples_nudge_schemas import NudgeDueData

__all__ = ["content_day", "is_shared"]

_SHARED_TARGETS: Final = frozenset({"both", "turns"})


def is_shared(schedule_id: str) -> bool:
    """Whether one occurrence of the schedule goes to both partners (or takes turns)."""
    return schedule_id.rpartition("/")[2] in _SHARED_TARGETS


def content_day(data: NudgeDueData, *, recipient_zone: str, couple_zone: str) -> date:
    """The local calendar day an occurrence belongs to: in the recipient's zone for a
    per-partner schedule, in one zone both partners share (`couple_zone`) for a shared one."""
    zone = couple_zone if is_shared(data.schedule_id) else recipient_zone
    return data.scheduled_at.astimezone(ZoneInfo(zone)).date()
