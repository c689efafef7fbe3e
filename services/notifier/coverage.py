"""How well the catalog covers each kind of couple: counts for editors. Pure.

For every language: items per kind and the ids missing against English. For every kind (and
check-in format): items per love language, per focus area and per context, and the gaps: a
focus area that, for some context, has fewer items than four weeks of the busiest rhythm of
that kind need (year.RHYTHMS). Context choice rules are the notifier's (context_rules.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product
from typing import Final, get_args

from couples_nudge.notifier.catalog import Catalog, Item
from couples_nudge.notifier.context_rules import fits, rules_of
from couples_nudge.notifier.year import RHYTHMS, Rhythm
from couples_nudge_schemas import CheckInFormat, CoupleContext, FocusArea, LoveLanguage, NudgeKind

__all__ = ["CONTEXTS", "Gap", "Section", "coverage", "gaps", "languages", "sections"]

CONTEXTS: Final[dict[str, CoupleContext]] = {
    "unknown": CoupleContext(),
    "apart": CoupleContext(living="apart"),
    "budget free": CoupleContext(budget="free"),
    "budget low": CoupleContext(budget="low"),
    "no mobility": CoupleContext(avoid=["mobility"]),
    "children home": CoupleContext(children_at_home=True),
    "apart, free, no mobility, children": CoupleContext(
        living="apart", budget="free", avoid=["mobility"], children_at_home=True
    ),
}
_ALL_CONTEXTS: Final = [
    CoupleContext.model_validate(
        {"living": living, "budget": budget, "avoid": avoid, "children_at_home": kids}
    )
    for living, budget, avoid, kids in product(
        ("together", "apart"), ("any", "low", "free"), ([], ["mobility"]), (False, True)
    )
]


@dataclass(frozen=True, slots=True)
class Section:
    """One kind (and check-in format): how many of its items serve each kind of couple."""

    name: str
    total: int
    by_love: dict[LoveLanguage, int]
    by_focus: dict[FocusArea, int]
    by_context: dict[str, int]


@dataclass(frozen=True, slots=True)
class Gap:
    rhythm: str
    focus: FocusArea
    context: str
    items: int
    needed: int  # four weeks of the rhythm


def _pools(catalog: Catalog) -> list[tuple[str, Rhythm | None, list[Item]]]:
    out: list[tuple[str, Rhythm | None, list[Item]]] = []
    for kind in get_args(NudgeKind):
        items = list(catalog.items(kind))
        formats: list[CheckInFormat | None] = [
            f for f in get_args(CheckInFormat) if any(i.format == f for i in items)
        ]
        for fmt in formats or [None]:
            name = f"{kind} ({fmt})" if fmt else kind
            chosen = [i for i in items if fmt is None or i.format == fmt]
            rhythms = [r for r in RHYTHMS if r.kind == kind and r.check_in_format == fmt]
            busiest = max(rhythms, key=lambda r: r.per_week, default=None)
            out.append((name, busiest, chosen))
    return out


def sections(catalog: Catalog) -> list[Section]:
    result = []
    for name, _, items in _pools(catalog):
        result.append(
            Section(
                name=name,
                total=len(items),
                by_love={
                    ll: sum(ll in i.love_languages for i in items) for ll in get_args(LoveLanguage)
                },
                by_focus={f: sum(f in i.focus for i in items) for f in get_args(FocusArea)},
                by_context={
                    label: sum(fits(i, rules_of(c)) for i in items) for label, c in CONTEXTS.items()
                },
            )
        )
    return result


def _context_label(c: CoupleContext) -> str:
    parts = [c.living or "", f"budget {c.budget}"]
    parts += ["no mobility"] if c.avoid else []
    parts += ["children home"] if c.children_at_home else []
    return ", ".join(parts)


def gaps(catalog: Catalog) -> list[Gap]:
    """Focus areas with fewer items than four weeks of the busiest rhythm, per context."""
    found = []
    for _, rhythm, items in _pools(catalog):
        if rhythm is None:
            continue
        needed = math.ceil(4 * rhythm.per_week)
        for focus, context in product(get_args(FocusArea), _ALL_CONTEXTS):
            rules = rules_of(context)
            n = sum(1 for i in items if focus in i.focus and fits(i, rules))
            if n < needed:
                found.append(Gap(rhythm.name, focus, _context_label(context), n, needed))
    return found


def languages(catalog: Catalog) -> dict[str, tuple[dict[NudgeKind, int], list[str]]]:
    """Per language folder: items per kind, and the English ids it lacks."""
    reference = {i.id for kind in get_args(NudgeKind) for i in catalog.items(kind)}
    result = {}
    for locale in sorted(catalog.locales):
        counts = {kind: len(catalog.own_items(kind, locale)) for kind in get_args(NudgeKind)}
        have = {i.id for kind in get_args(NudgeKind) for i in catalog.own_items(kind, locale)}
        result[locale] = (counts, sorted(reference - have))
    return result


def coverage(catalog: Catalog) -> tuple[list[Section], list[Gap]]:
    return sections(catalog), gaps(catalog)
