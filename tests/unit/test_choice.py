"""Specification of the scoring choice (couples_nudge.notifier.content) beyond kind, love language
and focus (test_content.py): the check-in format, the couple's context, the question decks,
the least-recently-seen fallback, and one item per shared nudge whatever the languages.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import product
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.notifier.catalog import Item, load_catalog
from couples_nudge.notifier.content import Pool, choose, choose_for, deck_for
from couples_nudge.notifier.context_rules import fits, rules_of
from couples_nudge_schemas import (
    CheckInFormat,
    CoupleContext,
    FocusArea,
    LoveLanguage,
    NudgeKind,
    Partner,
)

KINDS: tuple[NudgeKind, ...] = get_args(NudgeKind)
LOVE: tuple[LoveLanguage, ...] = get_args(LoveLanguage)
FOCUS: tuple[FocusArea, ...] = get_args(FocusArea)
CATALOG = load_catalog()
POOLS = {kind: Pool(kind, CATALOG.items(kind)) for kind in KINDS}


def item(id_: str, kind: NudgeKind = "date_night", **tags: Any) -> Item:
    base = Item(
        id=id_,
        kind=kind,
        title=f"Title {id_}",
        body="Body {receiver}" if kind == "appreciation" else "Body",
        detail="",
        focus=frozenset({"experiential"}),
        love_languages=frozenset(),
    )
    return replace(base, **tags)


def picks(items: list[Item], kind: NudgeKind = "date_night", **how: Any) -> set[str]:
    return {choose(items, kind=kind, seed=f"s{n}", **how).id for n in range(200)}


class TestContextRules:
    ITEMS = [  # noqa: RUF012 (read only)
        item("dn-home", setting="home"),
        item("dn-shared-home", setting="home", assumes=frozenset({"living_together"})),
        item("dn-call", setting="apart"),
        item("dn-any", setting="any"),
        item("dn-out-paid", setting="out", cost="paid", free_variant="dn-any"),
        item("dn-out-low", setting="out", cost="low"),
        item("dn-hike", setting="out", assumes=frozenset({"mobility"})),
        item("dn-late", setting="out", assumes=frozenset({"no_children_home"})),
    ]

    @pytest.mark.parametrize(
        ("context", "expected"),
        [
            (
                None,
                {
                    "dn-home",
                    "dn-shared-home",
                    "dn-any",
                    "dn-out-paid",
                    "dn-out-low",
                    "dn-hike",
                    "dn-late",
                },
            ),
            (CoupleContext(living="apart"), {"dn-call", "dn-any"}),
            (
                CoupleContext(budget="free"),
                {"dn-home", "dn-shared-home", "dn-any", "dn-hike", "dn-late"},
            ),
            (
                CoupleContext(budget="low", avoid=["mobility"], children_at_home=True),
                {"dn-home", "dn-shared-home", "dn-any", "dn-out-low"},
            ),
            (
                CoupleContext(living="apart", budget="free", avoid=["mobility"]),
                {"dn-call", "dn-any"},
            ),
        ],
    )
    def test_never_an_item_the_context_rules_out(
        self, context: CoupleContext | None, expected: set[str]
    ) -> None:
        """Apart items only for couples apart, who get only items that work apart; nothing over
        budget, nothing needing mobility or a child-free evening when those are ruled out."""
        assert picks(self.ITEMS, context=context) == expected

    def test_no_fresh_item_never_breaks_a_rule(self) -> None:
        """When every allowed item was seen, a ruled-out fresh item still is not chosen."""
        seen = {"dn-call": 1, "dn-any": 2}
        assert picks(self.ITEMS, context=CoupleContext(living="apart"), recently_seen=seen) == {
            "dn-call"
        }


class TestCheckInFormat:
    ITEMS = [  # noqa: RUF012
        item("ci-guide-a", "check_in", format="monthly_guide", steps=("a", "b", "c", "d")),
        item("ci-guide-b", "check_in", format="monthly_guide", steps=("a", "b", "c", "d")),
        item("ci-map", "check_in", format="question", deck="love_map"),
        item("ci-open", "check_in", format="question", deck="open_ended"),
    ]

    @pytest.mark.parametrize(
        ("fmt", "expected"),
        [
            ("monthly_guide", {"ci-guide-a", "ci-guide-b"}),
            ("question", {"ci-map", "ci-open"}),
            (None, {"ci-guide-a", "ci-guide-b", "ci-map", "ci-open"}),
        ],
    )
    def test_only_the_plans_format(self, fmt: CheckInFormat | None, expected: set[str]) -> None:
        """A monthly plan draws guides, a frequent one questions (unknown: either)."""
        assert picks(self.ITEMS, "check_in", check_in_format=fmt) == expected

    def test_the_format_beats_freshness(self) -> None:
        """A seen question is not replaced by a fresh guide: the format is a hard filter."""
        seen = {"ci-map": 1, "ci-open": 2}
        assert picks(self.ITEMS, "check_in", check_in_format="question", recently_seen=seen) == {
            "ci-map"
        }

    def test_questions_alternate_between_decks(self) -> None:
        """Occurrence by occurrence, questions come from the love-map and the open deck."""
        decks = [deck_for("question", sequence) for sequence in range(4)]
        assert decks == ["love_map", "open_ended", "love_map", "open_ended"]
        assert deck_for("monthly_guide", 1) is None
        drawn = [
            choose(self.ITEMS, kind="check_in", seed="x", check_in_format="question", deck=deck).id
            for deck in decks
        ]
        assert drawn == ["ci-map", "ci-open", "ci-map", "ci-open"]

    def test_real_catalog_serves_every_format(self) -> None:
        """Each format of the real catalog draws only that format."""
        for fmt in get_args(CheckInFormat):
            chosen = {
                POOLS["check_in"].choose(seed=f"s{n}", check_in_format=fmt).format
                for n in range(100)
            }
            assert chosen == {fmt}


class TestLeastRecentlySeen:
    ITEMS = [item(f"dn-{n}") for n in range(5)]  # noqa: RUF012

    def test_the_oldest_sighting_comes_back(self) -> None:
        """With every item seen, the one seen longest ago is chosen, not a random one."""
        seen = {"dn-0": 50, "dn-1": 10, "dn-2": 30, "dn-3": 20, "dn-4": 40}
        assert picks(self.ITEMS, recently_seen=seen) == {"dn-1"}

    def test_fresh_first(self) -> None:
        """An item not seen in the window wins over every seen one."""
        seen = {"dn-0": 50, "dn-1": 10, "dn-2": 30, "dn-3": 20}
        assert picks(self.ITEMS, recently_seen=seen) == {"dn-4"}

    def test_among_equally_old_the_best_fit(self) -> None:
        """Seen at the same time, the item fitting the focus comes back first."""
        items = [*self.ITEMS[:2], item("dn-talk", focus=frozenset({"conflict"}))]
        seen = {"dn-0": 5, "dn-1": 5, "dn-talk": 5}
        assert picks(items, recently_seen=seen, focus_areas=["conflict"]) == {"dn-talk"}


def partner(pid: str, locale: str = "en", love: tuple[LoveLanguage, ...] = ()) -> Partner:
    return Partner(
        partner_id=pid,
        name=pid.title(),
        timezone="Europe/Berlin",
        locale=locale,
        channels=["webhook"],
        love_languages=list(love),
    )


class TestSharedNudges:
    @pytest.mark.parametrize("kind", ["date_night", "check_in"])
    def test_both_partners_get_the_same_item(self, kind: NudgeKind) -> None:
        """Date nights and check-ins are drawn per occurrence: the same item for both."""
        maya, sam = partner("maya", "en-GB"), partner("sam", "de-AT")
        for n in range(30):
            a, b = (
                choose_for(
                    POOLS[kind],
                    kind=kind,
                    occurrence_id=f"c1/x@{n}",
                    recipient=me,
                    other=you,
                    check_in_format="question",
                    sequence=n,
                )
                for me, you in ((maya, sam), (sam, maya))
            )
            assert a.id == b.id
            assert CATALOG.localized(a, "de-AT").id == a.id

    def test_localized_keeps_the_id_and_falls_back(self) -> None:
        """An item reads in the partner's locale (en-GB through the variant table); a locale
        without the item gives the item itself."""
        source = next(i for i in CATALOG.items("appreciation") if "favorite" in i.body)
        assert "favourite" in CATALOG.localized(source, "en-GB").body
        assert CATALOG.localized(source, "xx").body == source.body
        made_up = item("dn-not-in-the-catalog")
        assert CATALOG.localized(made_up, "en-GB") is made_up


CONTEXTS = [
    CoupleContext.model_validate(
        {"living": living, "budget": budget, "avoid": avoid, "children_at_home": kids}
    )
    for living, budget, avoid, kids in product(
        (None, "together", "apart"),
        (None, "free", "low", "any"),
        ([], ["mobility"]),
        (None, False, True),
    )
]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    ids = [i.id for i in POOLS[kind].items]
    seen_ids = draw(st.lists(st.sampled_from(ids), unique=True, max_size=len(ids)))
    times = draw(st.lists(st.integers(0, 10), min_size=len(seen_ids), max_size=len(seen_ids)))
    return {
        "kind": kind,
        "seed": draw(st.text(max_size=12)),
        "love_languages": draw(st.lists(st.sampled_from(LOVE), unique=True, max_size=2)),
        "focus_areas": draw(st.lists(st.sampled_from(FOCUS), unique=True, max_size=2)),
        "recently_seen": dict(zip(seen_ids, times, strict=True)),
        "check_in_format": draw(st.sampled_from((None, *get_args(CheckInFormat)))),
        "context": draw(st.sampled_from(CONTEXTS)),
        "rested_before": draw(st.none() | st.integers(0, 10)),
    }


class TestChoiceProperties:
    @settings(max_examples=400, deadline=None)
    @given(request=requests())
    def test_hard_filters_then_score_then_least_recent(self, request: dict[str, Any]) -> None:
        """On the real catalog, for any couple and history: never an item the context or the
        format rules out; rested (past the minimum gap) whenever an allowed item is; then the
        receiver's love language, then fresh (outside the window), then the focus, whenever a
        better-ranked allowed item has them; the least recently seen allowed item when none is
        rested; and the same pick from a reversed catalog."""
        kind = request["kind"]
        chosen = choose(POOLS[kind], **request)
        rules = rules_of(request["context"])
        fmt = request["check_in_format"] if kind == "check_in" else None
        allowed = [i for i in POOLS[kind].items if fits(i, rules) and fmt in (None, i.format)]
        seen: dict[str, int] = request["recently_seen"]
        before: int | None = request["rested_before"]
        love = set(request["love_languages"]) if kind == "appreciation" else set()
        focus = set(request["focus_areas"])

        def rested(i: Item) -> bool:
            return i.id not in seen or (before is not None and seen[i.id] <= before)

        def loved(i: Item) -> bool:
            return not love or bool(i.love_languages & love)

        def fresh(i: Item) -> bool:
            return i.id not in seen

        def focused(i: Item) -> bool:
            return not focus or bool(i.focus & focus)

        assert chosen in allowed
        better = allowed
        for wanted in (rested, loved, fresh, focused):
            if any(map(wanted, better)):
                assert wanted(chosen)
                better = [i for i in better if wanted(i)]
        if not any(map(rested, allowed)):
            assert seen[chosen.id] == min(seen[i.id] for i in allowed)
        again = choose(list(reversed(POOLS[kind].items)), **request)
        assert again == chosen

    def test_a_fitting_item_comes_back_after_the_gap(self) -> None:
        """A fitting item seen past the minimum gap beats a fresh misfit; within the gap the
        fresh misfit wins."""
        items = [
            item("ap-gift", "appreciation", love_languages=frozenset({"receiving_gifts"})),
            item("ap-words", "appreciation", love_languages=frozenset({"words_of_affirmation"})),
        ]
        how: dict[str, Any] = {"love_languages": ["receiving_gifts"]}
        seen = {"ap-gift": 100}
        assert picks(items, "appreciation", recently_seen=seen, rested_before=100, **how) == {
            "ap-gift"
        }
        assert picks(items, "appreciation", recently_seen=seen, rested_before=99, **how) == {
            "ap-words"
        }


class TestChooseForAPool:
    @settings(max_examples=300, deadline=None)
    @given(
        kind=st.sampled_from(KINDS),
        love=st.lists(st.sampled_from(LOVE), max_size=2, unique=True),
        focus=st.lists(st.sampled_from(FOCUS), max_size=3, unique=True),
        check_in_format=st.sampled_from([None, *get_args(CheckInFormat)]),
        sequence=st.integers(0, 5),
        seen=st.sets(st.sampled_from(sorted(i.id for k in KINDS for i in CATALOG.items(k)))),
        n=st.integers(0, 1000),
    )
    def test_a_pool_chooses_as_through_choose(
        self,
        kind: NudgeKind,
        love: list[LoveLanguage],
        focus: list[FocusArea],
        check_in_format: CheckInFormat | None,
        sequence: int,
        seen: set[str],
        n: int,
    ) -> None:
        """choose_for calls a Pool of its kind directly (no `choose` between): the same item
        as through `choose` with the pool's items."""
        me, you = partner("maya", "en", tuple(love)), partner("sam", "en", tuple(love))
        how: dict[str, Any] = {
            "kind": kind,
            "occurrence_id": f"c1/x@{n}",
            "recipient": me,
            "other": you,
            "focus_areas": focus,
            "recently_seen": seen,
            "check_in_format": check_in_format,
            "sequence": sequence,
            "rested_before": n,
        }
        assert choose_for(POOLS[kind], **how) == choose_for(list(POOLS[kind].items), **how)
