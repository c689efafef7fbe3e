"""A simulated year of one couple's nudges of one kind, through the real choice. Pure.

Used by the year-simulation test and `nudge catalog --year`: how often the receiver's love
language and the couple's focus are met, and for how many weeks the couple meets only fresh
items (no repeat inside the repeat window). Sightings are kept as the notifier keeps them:
per couple, with the time of the last sighting, forgotten after the repeat window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from couples_nudge.notifier.content import Pool, choose_for
from couples_nudge_schemas import (
    CheckInFormat,
    CoupleContext,
    FocusArea,
    LoveLanguage,
    NudgeKind,
    Partner,
)

__all__ = ["RHYTHMS", "Rhythm", "YearFigures", "simulate_year"]

_DAY_MS: Final = 86_400_000


@dataclass(frozen=True, slots=True)
class Rhythm:
    """How often a kind comes, as days between nudges (3 a week: 2, 2, 3)."""

    name: str
    kind: NudgeKind
    gaps: tuple[int, ...]
    check_in_format: CheckInFormat | None = None

    @property
    def per_week(self) -> float:
        return 7 * len(self.gaps) / sum(self.gaps)


RHYTHMS: Final = (
    Rhythm("appreciation 3/week", "appreciation", (2, 2, 3)),
    Rhythm("date night weekly", "date_night", (7,)),
    Rhythm("check-in guide monthly", "check_in", (30, 31), "monthly_guide"),
    Rhythm("check-in question weekly", "check_in", (7,), "question"),
    Rhythm("check-in question daily", "check_in", (1,), "question"),
)


@dataclass(frozen=True, slots=True)
class YearFigures:
    nudges: int
    loved: int  # nudges fitting the receiver's love language (appreciation with one)
    focused: int  # nudges fitting the focus area (when one is set)
    repeats: int  # nudges showing an item seen within the repeat window
    fresh_weeks: float  # weeks before the first repeat inside the window (all year: 52+)
    shortest_gap_days: int  # the shortest time between two sightings of one item (none: days)
    focus_weeks: float  # weeks before the first nudge off the focus area (all year: 52+)
    focus_run: int  # nudges on the focus area before the first one off it

    @property
    def love_rate(self) -> float:
        return self.loved / self.nudges

    @property
    def focus_rate(self) -> float:
        return self.focused / self.nudges


def _partner(pid: str, love: tuple[LoveLanguage, ...]) -> Partner:
    return Partner.model_construct(
        partner_id=pid,
        name=pid,
        timezone="UTC",
        locale="en",
        channels=["webhook"],
        love_languages=list(love),
    )


def simulate_year(
    pool: Pool,
    rhythm: Rhythm,
    *,
    couple: str = "c1",
    love: tuple[LoveLanguage, ...] = (),
    focus: tuple[FocusArea, ...] = (),
    context: CoupleContext | None = None,
    window_days: int = 90,
    gap_days: int = 28,
    days: int = 365,
) -> YearFigures:
    """Every nudge of one rhythm over `days` for a couple whose receiver has `love`."""
    giver, receiver = _partner("giver", ()), _partner("receiver", love)
    seen: dict[str, int] = {}
    nudges = loved = focused = repeats = 0
    first_repeat = first_off_focus = float(days)
    focus_run: int | None = None
    shortest_gap = days
    day = sequence = 0
    window_ms = window_days * _DAY_MS
    while day < days:
        now_ms = day * _DAY_MS
        recent = {i: ms for i, ms in seen.items() if ms >= now_ms - window_ms}
        item = choose_for(
            pool,
            kind=rhythm.kind,
            occurrence_id=f"{couple}/{rhythm.kind}@{now_ms}",
            recipient=giver,
            other=receiver,
            focus_areas=focus,
            recently_seen=recent,
            check_in_format=rhythm.check_in_format,
            sequence=sequence,
            context=context,
            rested_before=now_ms - gap_days * _DAY_MS,
        )
        nudges += 1
        if item.id in seen:
            shortest_gap = min(shortest_gap, day - seen[item.id] // _DAY_MS)
        if item.id in recent:
            repeats += 1
            first_repeat = min(first_repeat, day)
        if love and not item.love_languages.isdisjoint(love):
            loved += 1
        if focus and not item.focus.isdisjoint(focus):
            focused += 1
        elif focus and focus_run is None:
            first_off_focus, focus_run = day, nudges - 1
        seen[item.id] = now_ms
        day += rhythm.gaps[sequence % len(rhythm.gaps)]
        sequence += 1
    return YearFigures(
        nudges,
        loved,
        focused,
        repeats,
        first_repeat / 7,
        shortest_gap,
        first_off_focus / 7 if focus else 0,
        nudges if focus_run is None else focus_run,
    )
