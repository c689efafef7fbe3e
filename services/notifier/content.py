"""Choosing what a nudge says: a scoring choice. Pure and deterministic.

1. Hard filters: the kind, the check-in format (a monthly guide or a question), and the couple's
   context (context_rules.py: never an item whose assumptions the context rules out).
2. Among what is left, the best score wins. In order of weight:
   - rested: not seen within the minimum gap (NUDGE_REPEAT_MIN_GAP, 4 weeks), or never;
   - loved: fits the receiving partner's love languages (appreciation);
   - fresh: not seen within the repeat window (NUDGE_REPEAT_WINDOW, 90 days);
   - focused: fits one of the couple's focus areas;
   - decked: comes from the wanted deck (questions alternate love maps and open-ended ones).
   So a receiver's love language holds even when the catalog has few fitting items for the
   couple's context (a fitting item comes back after the gap rather than a fresh misfit), and
   a focus area never makes a couple cycle a few items: it steers among fresh items only.
3. Among rested items that are not fresh, the least recently seen comes back first; when
   nothing is rested, the least recently seen allowed item (ties: the best fit).
4. Remaining ties are broken by a hash of the seed over the candidates in id order, so the pick
   depends on neither catalog order nor the process; shared nudges (date night, check-in) use
   the occurrence as seed and give both partners the same item.

Only sightings *before* the occurrence count, so a redelivered occurrence picks the same item.
A `Pool` indexes one kind's items once (love languages and focus areas as bit masks, the
filtered candidate lists cached per format and context): a choice is one pass over the
allowed items with integer tests only.

Fast path (`Pool._unseen_best`): the items that tie for the best score when nothing has been
seen depend only on the hard filters and the wanted love languages, focus areas and deck, so
they are remembered per such combination. The invariant that makes them the answer for any
sightings that miss them all: an item never seen scores rested and fresh plus its fit, the
most any item can score; a sighting only takes bits away. So when none of the remembered
items was seen, they are still exactly the best, in the same order, and the seed picks the
same one as the full pass would (tests/unit/test_content.py compares both on random
sightings). A choice is then one set test over what the couple saw, not a pass over the
kind's items (~60 us per nudge before, at the notifier's 10,000 messages a second).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Final, NamedTuple, get_args

from couples_nudge.notifier.catalog import Deck, Item
from couples_nudge.notifier.context_rules import Rules, fits, rules_of
from couples_nudge_schemas import (
    CheckInFormat,
    CoupleContext,
    FocusArea,
    LoveLanguage,
    NudgeKind,
    Partner,
)

__all__ = ["DECKS", "Pool", "choose", "choose_for", "deck_for"]

DECKS: Final[tuple[Deck, ...]] = get_args(Deck)
_LOVE_BITS: Final = {name: 1 << n for n, name in enumerate(get_args(LoveLanguage))}
_FOCUS_BITS: Final = {name: 1 << n for n, name in enumerate(get_args(FocusArea))}
_RESTED, _LOVED, _FRESH, _FOCUSED, _DECKED = 16, 8, 4, 2, 1

Seen = Mapping[str, int] | Collection[str]


def _stable_index(seed: str, n: int) -> int:
    digest = hashlib.blake2b(seed.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def _mask(names: Iterable[str], bits: Mapping[str, int]) -> int:
    mask = 0
    for name in names:
        mask |= bits.get(name, 0)
    return mask


def _id(item: Item) -> str:
    return item.id


class _UnseenKey(NamedTuple):
    """What the best items depend on when nothing was seen (Pool._unseen_best)."""

    check_in_format: CheckInFormat | None
    rules: Rules
    love: int  # wanted love languages, as bits (appreciation only)
    focus: int  # the couple's focus areas, as bits
    deck: Deck | None


class _UnseenBest(NamedTuple):
    tied: tuple[int, ...]  # indexes of the items tied for the best score, in id order
    ids: frozenset[str]  # their ids: a choice tests what was seen against these


_MAX_UNSEEN: Final = 4096  # combinations remembered per pool
# _new_key(_UnseenKey, (field, ...)): the key without the NamedTuple's Python __new__ (~1k
# instructions a choice). Invariant: every field, in _UnseenKey's order (its one caller,
# Pool.choose; the fast path's test compares choices with the full pass).
_new_key: Final = tuple.__new__


def deck_for(check_in_format: CheckInFormat | None, sequence: int) -> Deck | None:
    """Questions alternate between the decks, occurrence by occurrence; guides have none."""
    return DECKS[sequence % len(DECKS)] if check_in_format == "question" else None


class Pool:
    """One kind's items, indexed for choosing (build once, choose many times)."""

    __slots__ = ("_allowed", "_deck", "_focus", "_love", "_unseen", "items", "kind")

    def __init__(self, kind: NudgeKind, items: Iterable[Item]) -> None:
        self.kind = kind
        self.items: tuple[Item, ...] = tuple(sorted((i for i in items if i.kind == kind), key=_id))
        self._love = tuple(_mask(i.love_languages, _LOVE_BITS) for i in self.items)
        self._focus = tuple(_mask(i.focus, _FOCUS_BITS) for i in self.items)
        self._deck = tuple(i.deck for i in self.items)
        self._allowed: dict[tuple[CheckInFormat | None, Rules], tuple[int, ...]] = {}
        self._unseen: dict[_UnseenKey, _UnseenBest] = {}  # see _unseen_best

    def allowed(self, check_in_format: CheckInFormat | None, rules: Rules) -> tuple[int, ...]:
        """Indexes of the items that pass the hard filters (cached per format and rules)."""
        found = self._allowed.get((check_in_format, rules))
        # Computed apart: its comprehensions would make this function's arguments cells,
        # allocated on every call (a message each), not only on a miss.
        return self._allowed_of(check_in_format, rules) if found is None else found

    def _allowed_of(self, check_in_format: CheckInFormat | None, rules: Rules) -> tuple[int, ...]:
        fitting = [n for n, item in enumerate(self.items) if fits(item, rules)]
        formatted = [n for n in fitting if self.items[n].format == check_in_format]
        # A catalog without that format (a test, a partial translation) keeps the kind.
        found = tuple(formatted if check_in_format and formatted else fitting)
        self._allowed[(check_in_format, rules)] = found
        return found

    def choose(
        self,
        *,
        seed: str,
        love_languages: Collection[str] = (),
        focus_areas: Collection[str] = (),
        check_in_format: CheckInFormat | None = None,
        deck: Deck | None = None,
        context: CoupleContext | None = None,
        recently_seen: Seen = (),
        rested_before: int | None = None,
    ) -> Item:
        """The best item for one nudge (see the module docstring for the order).

        `recently_seen`: ids seen in the repeat window, with the time of their last sighting
        when known (a plain collection counts as seen just now); `rested_before`: a sighting
        at or before this time is past the minimum gap (None: no sighting is)."""
        rules = rules_of(context)
        allowed = self.allowed(check_in_format, rules)
        if not allowed:
            raise LookupError(f"the catalog has no {self.kind} items for this couple")
        want_love = (
            _mask(love_languages, _LOVE_BITS)
            if love_languages and self.kind == "appreciation"
            else 0
        )
        want_focus = _mask(focus_areas, _FOCUS_BITS) if focus_areas else 0  # no call for none
        key = _new_key(_UnseenKey, (check_in_format, rules, want_love, want_focus, deck))
        unseen = self._unseen_best(key, allowed)
        tied: Sequence[int]
        if not recently_seen or unseen.ids.isdisjoint(recently_seen):
            tied = unseen.tied  # the fast path: exact, see the module docstring
        else:
            tied = self._scored(allowed, key, recently_seen, rested_before)
        return self.items[tied[_stable_index(seed, len(tied))]]

    def _unseen_best(self, key: _UnseenKey, allowed: tuple[int, ...]) -> _UnseenBest:
        """The items tied for the best score when nothing was seen (cached: see the module
        docstring; a bounded number of combinations, beyond which nothing more is kept)."""
        found = self._unseen.get(key)
        if found is None:
            tied = self._best(allowed, key.love, key.focus, key.deck, (), None)[1]
            found = _UnseenBest(tuple(tied), frozenset(self.items[n].id for n in tied))
            if len(self._unseen) < _MAX_UNSEEN:
                self._unseen[key] = found
        return found

    def _scored(
        self,
        allowed: tuple[int, ...],
        key: _UnseenKey,
        recently_seen: Seen,
        rested_before: int | None,
    ) -> list[int]:
        """The full pass: the items tied for the best, given what was seen."""
        love, focus = key.love, key.focus
        best, tied = self._best(allowed, love, focus, key.deck, recently_seen, rested_before)
        if not best & _RESTED:  # nothing rested: the least recently seen comes back
            tied = self._least_recent(allowed, recently_seen, love, focus)
        elif not best & _FRESH:  # a rested repeat: the one seen longest ago
            tied = self._least_recent(tied, recently_seen, love, focus)
        return tied

    def _best(
        self,
        allowed: tuple[int, ...],
        want_love: int,
        want_focus: int,
        deck: Deck | None,
        recently_seen: Seen,
        rested_before: int | None,
    ) -> tuple[int, list[int]]:
        """The best score among the allowed items and the items that have it, in order."""
        items, love, focus, decks = self.items, self._love, self._focus, self._deck
        times = recently_seen if isinstance(recently_seen, Mapping) else None
        best, tied = -1, []
        for n in allowed:
            id_ = items[n].id
            if id_ not in recently_seen:
                score = _RESTED | _FRESH
            elif rested_before is not None and times is not None and times[id_] <= rested_before:
                score = _RESTED
            else:
                score = 0
            if not want_love or love[n] & want_love:
                score |= _LOVED
            if not want_focus or focus[n] & want_focus:
                score |= _FOCUSED
            if deck is None or decks[n] == deck:
                score |= _DECKED
            if score > best:
                best, tied = score, [n]
            elif score == best:
                tied.append(n)
        return best, tied

    def _least_recent(
        self, candidates: Sequence[int], seen: Seen, want_love: int, want_focus: int
    ) -> list[int]:
        """The candidates last seen longest ago; among those, the ones that fit best."""
        oldest = list(candidates)
        if isinstance(seen, Mapping):
            first = min(seen.get(self.items[n].id, 0) for n in candidates)
            oldest = [n for n in candidates if seen.get(self.items[n].id, 0) == first]

        def fit(n: int) -> int:
            loved = not want_love or bool(self._love[n] & want_love)
            return loved * 2 + (not want_focus or bool(self._focus[n] & want_focus))

        top = max(map(fit, oldest))
        return [n for n in oldest if fit(n) == top]


def choose(
    items: Sequence[Item] | Pool,
    *,
    kind: NudgeKind,
    seed: str,
    love_languages: Collection[LoveLanguage] = (),
    focus_areas: Collection[FocusArea] = (),
    recently_seen: Seen = (),
    check_in_format: CheckInFormat | None = None,
    deck: Deck | None = None,
    context: CoupleContext | None = None,
    rested_before: int | None = None,
) -> Item:
    """One item of `kind` from `items` (a Pool is reused; a sequence is indexed per call)."""
    return _pool_of(items, kind).choose(
        seed=seed,
        love_languages=love_languages,
        focus_areas=focus_areas,
        check_in_format=check_in_format if kind == "check_in" else None,
        deck=deck if kind == "check_in" else None,
        context=context,
        recently_seen=recently_seen,
        rested_before=rested_before,
    )


def choose_for(
    items: Sequence[Item] | Pool,
    *,
    kind: NudgeKind,
    occurrence_id: str,
    recipient: Partner,
    other: Partner,
    focus_areas: Collection[FocusArea] = (),
    recently_seen: Seen = (),
    check_in_format: CheckInFormat | None = None,
    sequence: int = 0,
    context: CoupleContext | None = None,
    rested_before: int | None = None,
) -> Item:
    """The item one partner gets for one occurrence.

    Appreciation goes to the giver (the recipient) about the receiver (the other partner): it
    fits the receiver's love languages and is drawn per giver. Date nights and check-ins are
    drawn per occurrence, so both partners of a shared nudge get the same prompt.
    """
    personal, check_in = kind == "appreciation", kind == "check_in"
    # The pool's own choose, as `choose` calls it, without `choose`'s call in between.
    return _pool_of(items, kind).choose(
        seed=f"{occurrence_id}|{recipient.partner_id}" if personal else occurrence_id,
        love_languages=other.love_languages if personal else (),
        focus_areas=focus_areas,
        check_in_format=check_in_format if check_in else None,
        deck=deck_for(check_in_format, sequence) if check_in else None,
        context=context,
        recently_seen=recently_seen,
        rested_before=rested_before,
    )


def _pool_of(items: Sequence[Item] | Pool, kind: NudgeKind) -> Pool:
    """The Pool of `kind` to choose from: `items` itself when it is one, else indexed now;
    LookupError when it holds no item of the kind."""
    if isinstance(items, Pool) and items.kind == kind:
        pool = items
    else:
        pool = Pool(kind, items.items if isinstance(items, Pool) else items)
    if not pool.items:
        raise LookupError(f"the catalog has no {kind} items")
    return pool
