"""Choosing what a nudge says. Pure and deterministic: the same state gives the same choice.

- Fits the kind, the receiving partner's love languages (appreciation) and the couple's focus
  areas; widens the pool step by step when a filter leaves nothing.
- Never repeats an item the couple saw within the window before this occurrence. Only
  sightings *before* the occurrence count, so a redelivered occurrence picks the same item.
- The pick among the fitting items is a hash of the occurrence (and, for appreciation, the
  giver), so shared nudges give both partners the same prompt.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence

from schemas import FocusArea, LoveLanguage, NudgeKind, Partner
from services.notifier.catalog import Item

__all__ = ["choose", "choose_for"]


def _stable_index(seed: str, n: int) -> int:
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def choose(
    items: Sequence[Item],
    *,
    kind: NudgeKind,
    seed: str,
    love_languages: Collection[LoveLanguage] = (),
    focus_areas: Collection[FocusArea] = (),
    recently_seen: Collection[str] = (),
) -> Item:
    pool = [i for i in items if i.kind == kind]
    if not pool:
        raise LookupError(f"the catalog has no {kind} items")
    fresh = [i for i in pool if i.id not in recently_seen] if recently_seen else pool
    candidates = fresh or pool
    if love_languages and kind == "appreciation":
        wanted = frozenset(love_languages)
        candidates = [
            i for i in candidates if not i.love_languages.isdisjoint(wanted)
        ] or candidates
    if focus_areas:
        areas = frozenset(focus_areas)
        candidates = [i for i in candidates if not i.focus.isdisjoint(areas)] or candidates
    ordered = sorted(candidates, key=lambda i: i.id)
    return ordered[_stable_index(seed, len(ordered))]


def choose_for(
    items: Sequence[Item],
    *,
    kind: NudgeKind,
    occurrence_id: str,
    recipient: Partner,
    other: Partner,
    focus_areas: Collection[FocusArea] = (),
    recently_seen: Collection[str] = (),
) -> Item:
    """The item one partner gets for one occurrence.

    Appreciation goes to the giver (the recipient) about the receiver (the other partner): it
    fits the receiver's love languages and is drawn per giver. Date nights and check-ins are
    drawn per occurrence, so both partners of a shared nudge get the same prompt.
    """
    personal = kind == "appreciation"
    return choose(
        items,
        kind=kind,
        seed=f"{occurrence_id}|{recipient.partner_id}" if personal else occurrence_id,
        love_languages=other.love_languages if personal else (),
        focus_areas=focus_areas,
        recently_seen=recently_seen,
    )
