"""What a couple's context rules out: the hard filter of content choice. Pure.

An item says what it assumes (catalog/README.md: `setting`, `cost`, `assumes`); a couple's
context (schemas.CoupleContext) says what does not hold for them. Unknown parts of a context
rule nothing out, except that `apart` items (video calls, parcels) go only to couples known to
live apart, and couples living apart get only items that work apart (`apart` or `any`, never
one that needs a shared home).
"""

from __future__ import annotations

from typing import NamedTuple

from couples_nudge.notifier.catalog import Item
from couples_nudge_schemas import CoupleContext

__all__ = ["Rules", "fits", "rules_of"]


class Rules(NamedTuple):
    """A context reduced to what filters items (also the key of the cached pools)."""

    apart: bool
    budget: str  # "free", "low" or "any"
    no_mobility: bool
    children_home: bool


_NO_RULES = Rules(apart=False, budget="any", no_mobility=False, children_home=False)


def rules_of(context: CoupleContext | None) -> Rules:
    if context is None:
        return _NO_RULES
    return Rules(
        apart=context.living == "apart",
        budget=context.budget or "any",
        no_mobility="mobility" in context.avoid,
        children_home=context.children_at_home is True,
    )


def fits(item: Item, rules: Rules) -> bool:
    """True unless the context rules the item out."""
    if rules.apart:
        if item.setting not in ("apart", "any") or "living_together" in item.assumes:
            return False
    elif item.setting == "apart":
        return False
    if rules.budget == "free" and item.cost != "free":
        return False
    if rules.budget == "low" and item.cost == "paid":
        return False
    if rules.no_mobility and "mobility" in item.assumes:
        return False
    return not (rules.children_home and "no_children_home" in item.assumes)
