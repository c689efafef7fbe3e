"""A simulated year of nudges for couples of every love language, focus area and context,
through the real choice on the real catalog (services/notifier/year.py). Prints the figures.

The promises (issue 16): a receiver with one love language gets a fitting appreciation at least
80 % of the time, and fitting items for at least 7 weeks before the first repeat in the thinnest
context (services/notifier/catalog/README.md, "How much content"); no couple meets an item again
within 4 weeks, whatever its focus and context; a focus area is served first while the catalog has
fitting fresh items for it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from itertools import product
from typing import get_args

import pytest

from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.content import Pool
from couples_nudge.notifier.context_rules import fits, rules_of
from couples_nudge.notifier.year import RHYTHMS, Rhythm, YearFigures, simulate_year
from couples_nudge_schemas import CoupleContext, FocusArea, LoveLanguage, NudgeKind

LOVE: tuple[LoveLanguage, ...] = get_args(LoveLanguage)
FOCUS: tuple[FocusArea | None, ...] = (None, *get_args(FocusArea))
CONTEXTS: tuple[CoupleContext | None, ...] = (
    None,
    *(
        CoupleContext.model_validate(
            {"living": living, "budget": budget, "avoid": avoid, "children_at_home": kids}
        )
        for living, budget, avoid, kids in product(
            ("together", "apart"), ("any", "low", "free"), ([], ["mobility"]), (False, True)
        )
    ),
)
CATALOG = load_catalog()
POOLS = {kind: Pool(kind, CATALOG.items(kind)) for kind in get_args(NudgeKind)}
GAP_DAYS = 28
# Weeks of fitting appreciations before the first repeat, in the thinnest context (gifts on no
# budget: 22 items); the catalog README's table gives the figure per context.
MIN_FRESH_WEEKS_ONE_LOVE = 7.0


def label(context: CoupleContext | None) -> str:
    if context is None:
        return "unknown"
    parts = [context.living or "", f"budget {context.budget}"]
    parts += ["no mobility"] if context.avoid else []
    parts += ["children home"] if context.children_at_home else []
    return ", ".join(parts)


def focus_items(rhythm: Rhythm, focus: FocusArea, context: CoupleContext | None) -> int:
    """How many of the catalog's items the couple may get have this focus."""
    rules = rules_of(context)
    return sum(
        1
        for i in POOLS[rhythm.kind].items
        if fits(i, rules) and rhythm.check_in_format in (None, i.format) and focus in i.focus
    )


def focus_supply(rhythm: Rhythm, focus: FocusArea, context: CoupleContext | None) -> float:
    """Weeks of nudges the items with this focus can fill without a repeat."""
    return focus_items(rhythm, focus, context) / rhythm.per_week


class TestYearOfAppreciation:
    def test_one_love_language_fits_at_least_80_percent(self) -> None:
        """Three appreciations a week for a year: for every love language, focus area and
        context, at least 80 % fit the receiver's one love language, the first repeat comes
        after at least 7 weeks, and no item comes back within 4 weeks."""
        rhythm = RHYTHMS[0]
        rates: dict[LoveLanguage, list[float]] = defaultdict(list)
        worst: dict[LoveLanguage, tuple[float, str]] = {}
        fresh: dict[LoveLanguage, tuple[float, str]] = {}
        gaps: list[int] = []
        for love, focus, context in product(LOVE, FOCUS, CONTEXTS):
            f = simulate_year(
                POOLS["appreciation"],
                rhythm,
                couple=f"{love}-{focus}-{label(context)}",
                love=(love,),
                focus=(focus,) if focus else (),
                context=context,
            )
            rates[love].append(f.love_rate)
            gaps.append(f.shortest_gap_days)
            if f.love_rate < worst.get(love, (2.0, ""))[0]:
                worst[love] = (f.love_rate, f"{label(context)}, focus {focus}")
            if f.fresh_weeks < fresh.get(love, (math.inf, ""))[0]:
                fresh[love] = (f.fresh_weeks, label(context))
        print(f"\n{rhythm.name}, {len(rates[LOVE[0]])} couples per love language:")
        print(f"{'love language':22} {'mean':>6} {'min':>6}  worst couple")
        for love in LOVE:
            mean = sum(rates[love]) / len(rates[love])
            print(f"{love:22} {mean:6.1%} {min(rates[love]):6.1%}  {worst[love][1]}")
        print(f"{'love language':22} {'fresh weeks min':>15}  its context")
        for love in LOVE:
            print(f"{love:22} {fresh[love][0]:15.1f}  {fresh[love][1]}")
        print(f"shortest time between two sightings of one item: {min(gaps)} days")
        assert min(min(r) for r in rates.values()) >= 0.80
        assert min(weeks for weeks, _ in fresh.values()) >= MIN_FRESH_WEEKS_ONE_LOVE
        assert min(gaps) >= GAP_DAYS


class TestYearOfEveryRhythm:
    @pytest.mark.parametrize("rhythm", RHYTHMS, ids=[r.name for r in RHYTHMS])
    def test_fresh_for_4_weeks_and_focus_first(self, rhythm: Rhythm) -> None:
        """For every focus area and context: no item again within 4 weeks, and the focus area
        is met for as many weeks as the catalog has fitting items for it (up to 4)."""
        figures: dict[tuple[FocusArea | None, str], YearFigures] = {}
        short: list[str] = []
        for focus, context in product(FOCUS, CONTEXTS):
            f = simulate_year(
                POOLS[rhythm.kind],
                rhythm,
                couple=f"{focus}-{label(context)}",
                focus=(focus,) if focus else (),
                context=context,
            )
            figures[focus, label(context)] = f
            if focus is not None:
                four_weeks = math.ceil(4 * rhythm.per_week)
                if f.focus_run < min(four_weeks, focus_items(rhythm, focus, context)):
                    short.append(f"{focus} / {label(context)}: {f.focus_run} nudges")
        print(f"\n{rhythm.name} ({rhythm.per_week:.2f} a week), {len(figures)} couples:")
        print(f"{'focus':13} {'gap min':>7} {'fresh wks min':>13} {'focus fit min':>13}")
        for focus in FOCUS:
            rows = [f for (fo, _), f in figures.items() if fo == focus]
            fit = min(f.focus_rate for f in rows) if focus else 1.0
            print(
                f"{focus or '(none)':13} {min(f.shortest_gap_days for f in rows):7}"
                f" {min(f.fresh_weeks for f in rows):13.1f} {fit:13.1%}"
            )
        thin = sorted(
            {
                f"{focus} / {label(context)}: {focus_supply(rhythm, focus, context):.1f} weeks"
                for focus, context in product(get_args(FocusArea), CONTEXTS)
                if focus_supply(rhythm, focus, context) < 4
            }
        )
        print(f"catalog gaps (under 4 weeks of items for a focus): {len(thin)}")
        for line in thin[:6]:
            print(f"  {line}")
        assert min(f.shortest_gap_days for f in figures.values()) >= GAP_DAYS
        assert short == []
