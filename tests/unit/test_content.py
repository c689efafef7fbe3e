"""Specification of content choice (couples_nudge.notifier.content) and the catalog loader.

``choose`` picks one item for an occurrence. In order of priority it: fits the nudge kind,
is fresh (not seen recently by the couple) whenever any fresh item exists, fits the
receiving partner's love language (appreciation only), fits the couple's focus areas.
When a filter leaves nothing, the pool is widened instead of failing.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.notifier.catalog import DEFAULT_LOCALE, Catalog, Deck, Item, load_catalog
from couples_nudge.notifier.content import (
    _FOCUS_BITS,
    _LOVE_BITS,
    DECKS,
    Pool,
    _mask,
    _stable_index,
    _UnseenKey,
    choose,
)
from couples_nudge.notifier.context_rules import rules_of
from couples_nudge.notifier.variants import Variants
from couples_nudge_schemas import CheckInFormat, CoupleContext, FocusArea, LoveLanguage, NudgeKind

KINDS: list[NudgeKind] = ["date_night", "check_in", "appreciation"]
LOVE_LANGUAGES: list[LoveLanguage] = [
    "words_of_affirmation",
    "acts_of_service",
    "receiving_gifts",
    "quality_time",
    "physical_touch",
]
FOCUS_AREAS: list[FocusArea] = [
    "emotional",
    "physical",
    "intellectual",
    "experiential",
    "spiritual",
    "conflict",
]


def item(
    id_: str,
    kind: NudgeKind = "appreciation",
    *,
    focus: tuple[FocusArea, ...] = ("emotional",),
    love: tuple[LoveLanguage, ...] = (),
) -> Item:
    return Item(
        id=id_,
        kind=kind,
        title=f"Title {id_}",
        body="Body for {receiver}" if kind == "appreciation" else "Body",
        detail="",
        focus=frozenset(focus),
        love_languages=frozenset(love),
    )


def seeds(n: int = 300) -> list[str]:
    return [f"c1/d/turns@{1_781_074_800 + 604_800 * i}" for i in range(n)]


ITEMS = (
    item("ap-a", love=("acts_of_service",), focus=("emotional",)),
    item("ap-b", love=("receiving_gifts",), focus=("spiritual",)),
    item("ap-c", love=("acts_of_service",), focus=("physical",)),
    item("ap-d", love=("quality_time",), focus=("experiential",)),
    item("ci-a", "check_in", love=("quality_time",), focus=("conflict",)),
    item("ci-b", "check_in", focus=("intellectual",)),
    item("dn-a", "date_night", focus=("experiential",)),
)


class TestChooseBasics:
    @pytest.mark.parametrize("kind", KINDS)
    def test_only_items_of_the_kind(self, kind: NudgeKind) -> None:
        """Whatever the seed, the item is of the requested kind."""
        assert {choose(ITEMS, kind=kind, seed=s).kind for s in seeds(50)} == {kind}

    def test_no_items_of_kind(self) -> None:
        """A catalog without the kind is an error naming the kind, not a wrong item."""
        with pytest.raises(LookupError, match="the catalog has no date_night items"):
            choose(ITEMS[:4], kind="date_night", seed="x")

    def test_same_seed_same_item(self) -> None:
        """The choice is a pure function of its inputs: both partners of a shared nudge agree."""
        for seed in seeds(50):
            assert choose(ITEMS, kind="appreciation", seed=seed) == choose(
                ITEMS, kind="appreciation", seed=seed
            )

    def test_catalog_order_does_not_matter(self) -> None:
        """Reordering the catalog does not change any choice."""
        shuffled = list(ITEMS)
        random.Random(7).shuffle(shuffled)
        for seed in seeds(50):
            assert choose(shuffled, kind="appreciation", seed=seed) == choose(
                ITEMS, kind="appreciation", seed=seed
            )

    def test_seeds_spread_over_the_pool(self) -> None:
        """Across many occurrences every fitting item gets drawn."""
        drawn = {choose(ITEMS, kind="appreciation", seed=s).id for s in seeds()}
        assert drawn == {"ap-a", "ap-b", "ap-c", "ap-d"}


class TestFreshness:
    def test_avoids_seen_items(self) -> None:
        """Recently seen items are never chosen while an unseen one exists."""
        seen = {"ap-a", "ap-b", "ap-c"}
        picks = {choose(ITEMS, kind="appreciation", seed=s, recently_seen=seen).id for s in seeds()}
        assert picks == {"ap-d"}

    def test_all_seen_still_chooses(self) -> None:
        """When the couple has seen everything, an item of the kind is still chosen."""
        seen = {"ap-a", "ap-b", "ap-c", "ap-d"}
        picks = {choose(ITEMS, kind="appreciation", seed=s, recently_seen=seen).id for s in seeds()}
        assert picks == seen

    def test_items_of_other_kinds_do_not_count(self) -> None:
        """Having seen every check-in does not affect the appreciation pool."""
        seen = {"ci-a", "ci-b"}
        picks = {choose(ITEMS, kind="appreciation", seed=s, recently_seen=seen).id for s in seeds()}
        assert picks == {"ap-a", "ap-b", "ap-c", "ap-d"}


class TestLoveLanguage:
    def test_fits_receivers_love_language(self) -> None:
        """Appreciation fits the receiving partner's love language."""
        picks = {
            choose(ITEMS, kind="appreciation", seed=s, love_languages=["acts_of_service"]).id
            for s in seeds()
        }
        assert picks == {"ap-a", "ap-c"}

    def test_any_of_several_languages(self) -> None:
        """With several love languages, an item fitting any of them is chosen."""
        picks = {
            choose(
                ITEMS,
                kind="appreciation",
                seed=s,
                love_languages=["receiving_gifts", "quality_time"],
            ).id
            for s in seeds()
        }
        assert picks == {"ap-b", "ap-d"}

    def test_freshness_beats_love_language(self) -> None:
        """When every fitting item was seen, a fresh item of another language is chosen."""
        picks = {
            choose(
                ITEMS,
                kind="appreciation",
                seed=s,
                love_languages=["acts_of_service"],
                recently_seen={"ap-a", "ap-c"},
            ).id
            for s in seeds()
        }
        assert picks == {"ap-b", "ap-d"}

    def test_unknown_language_falls_back(self) -> None:
        """A love language no item has leaves the whole fresh pool."""
        picks = {
            choose(ITEMS, kind="appreciation", seed=s, love_languages=["physical_touch"]).id
            for s in seeds()
        }
        assert picks == {"ap-a", "ap-b", "ap-c", "ap-d"}

    def test_ignored_for_other_kinds(self) -> None:
        """Love languages steer appreciation only; check-ins are drawn from all check-ins."""
        picks = {
            choose(ITEMS, kind="check_in", seed=s, love_languages=["quality_time"]).id
            for s in seeds()
        }
        assert picks == {"ci-a", "ci-b"}

    def test_love_language_before_focus(self) -> None:
        """If no item fits both, the receiver's love language wins over the couple's focus."""
        picks = {
            choose(
                ITEMS,
                kind="appreciation",
                seed=s,
                love_languages=["acts_of_service"],
                focus_areas=["spiritual"],
            ).id
            for s in seeds()
        }
        assert picks == {"ap-a", "ap-c"}


class TestFocus:
    @pytest.mark.parametrize(
        ("kind", "focus", "expected"),
        [
            ("appreciation", ["physical"], {"ap-c"}),
            ("appreciation", ["emotional", "experiential"], {"ap-a", "ap-d"}),
            ("check_in", ["conflict"], {"ci-a"}),
            ("appreciation", ["conflict"], {"ap-a", "ap-b", "ap-c", "ap-d"}),  # none fit
            ("date_night", ["spiritual"], {"dn-a"}),  # none fit
        ],
    )
    def test_respects_focus_areas(
        self, kind: NudgeKind, focus: list[FocusArea], expected: set[str]
    ) -> None:
        """Items tagged with the couple's focus areas are preferred; else the pool is kept."""
        assert {choose(ITEMS, kind=kind, seed=s, focus_areas=focus).id for s in seeds()} == expected

    def test_love_language_and_focus_together(self) -> None:
        """An item fitting both the love language and the focus is chosen when one exists."""
        picks = {
            choose(
                ITEMS,
                kind="appreciation",
                seed=s,
                love_languages=["acts_of_service"],
                focus_areas=["physical"],
            ).id
            for s in seeds()
        }
        assert picks == {"ap-c"}


CATALOG = load_catalog()
EN_IDS = {kind: sorted(i.id for i in CATALOG.items(kind)) for kind in KINDS}


@st.composite
def situations(
    draw: st.DrawFn,
) -> tuple[NudgeKind, str, set[str], list[LoveLanguage], list[FocusArea]]:
    kind = draw(st.sampled_from(KINDS))
    seen = draw(st.sets(st.sampled_from(EN_IDS[kind])))
    love = draw(st.lists(st.sampled_from(LOVE_LANGUAGES), max_size=2, unique=True))
    focus = draw(st.lists(st.sampled_from(FOCUS_AREAS), max_size=3, unique=True))
    return kind, draw(st.text(min_size=1, max_size=30)), seen, love, focus


class TestChooseProperties:
    @settings(max_examples=300, deadline=None)
    @given(situation=situations())
    def test_fits_whenever_something_fresh_fits(
        self, situation: tuple[NudgeKind, str, set[str], list[LoveLanguage], list[FocusArea]]
    ) -> None:
        """On the real catalog: never a seen item while an unseen one exists; a fitting love
        language whenever a fresh item has one; both filters whenever a fresh item meets both."""
        kind, seed, seen, love, focus = situation
        pool = CATALOG.items(kind)
        chosen = choose(
            pool, kind=kind, seed=seed, love_languages=love, focus_areas=focus, recently_seen=seen
        )
        fresh = [i for i in pool if i.id not in seen]
        personal = love if kind == "appreciation" else []

        def loves(i: Item) -> bool:
            return not personal or bool(i.love_languages & set(personal))

        def focused(i: Item) -> bool:
            return not focus or bool(i.focus & set(focus))

        assert chosen.kind == kind
        if fresh:
            assert chosen.id not in seen
        if any(loves(i) for i in fresh):
            assert loves(chosen)
        if any(loves(i) and focused(i) for i in fresh):
            assert focused(chosen)

    @settings(max_examples=50, deadline=None)
    @given(seen=st.sets(st.sampled_from(EN_IDS["appreciation"])), seed=st.text(max_size=20))
    def test_redelivery_picks_the_same(self, seen: set[str], seed: str) -> None:
        """The same occurrence and history give the same item, so a redelivery matches."""
        pool = CATALOG.items("appreciation")
        first = choose(pool, kind="appreciation", seed=seed, recently_seen=seen)
        again = choose(list(reversed(pool)), kind="appreciation", seed=seed, recently_seen=seen)
        assert first == again


class TestRememberedBest:
    @settings(max_examples=300, deadline=None)
    @given(
        situation=situations(),
        times=st.lists(st.integers(0, 100), min_size=300, max_size=300),
        rested_before=st.none() | st.integers(0, 100),
        deck=st.sampled_from([None, *DECKS]),
        context=st.sampled_from(
            [None, CoupleContext(living="apart"), CoupleContext(budget="free", avoid=["mobility"])]
        ),
        check_in_format=st.sampled_from([None, "question", "guide"]),
    )
    def test_the_fast_path_picks_what_the_full_pass_picks(
        self,
        situation: tuple[NudgeKind, str, set[str], list[LoveLanguage], list[FocusArea]],
        times: list[int],
        rested_before: int | None,
        deck: Deck | None,
        context: CoupleContext | None,
        check_in_format: CheckInFormat | None,
    ) -> None:
        """The remembered best of nothing seen answers exactly as a pass over every allowed
        item does, whatever was seen, when, and the couple's format, deck and context."""
        kind, seed, seen, love, focus = situation
        pool = Pool(kind, CATALOG.items(kind))
        seen_at = dict(zip(sorted(seen), times, strict=False))
        chosen = pool.choose(
            seed=seed,
            love_languages=love,
            focus_areas=focus,
            check_in_format=check_in_format,
            deck=deck,
            context=context,
            recently_seen=seen_at,
            rested_before=rested_before,
        )
        rules = rules_of(context)
        key = _UnseenKey(
            check_in_format,
            rules,
            _mask(love, _LOVE_BITS) if kind == "appreciation" else 0,
            _mask(focus, _FOCUS_BITS),
            deck,
        )
        full = pool._scored(pool.allowed(check_in_format, rules), key, seen_at, rested_before)
        assert chosen == pool.items[full[_stable_index(seed, len(full))]]


def blank(i: Item) -> Item:
    """The item without its texts: what a variant table must not change."""
    return replace(i, title="", body="", detail="", steps=())


class TestLoadCatalog:
    def test_loaded_once(self) -> None:
        """The catalog is read from disk once and shared."""
        assert load_catalog() is load_catalog()

    def test_english_is_shipped(self) -> None:
        """English is the default locale and is always present."""
        assert DEFAULT_LOCALE == "en"
        assert "en" in load_catalog().locales

    @pytest.mark.parametrize(
        ("kind", "prefix", "minimum"),
        [
            ("date_night", "dn-", 44),
            ("check_in", "ci-", 44),
            ("appreciation", "ap-", 45),
        ],
    )
    def test_items_per_kind(self, kind: NudgeKind, prefix: str, minimum: int) -> None:
        """items(kind) returns only that kind, enough for months, ids prefixed by kind."""
        items = load_catalog().items(kind)
        assert len(items) >= minimum
        assert {i.kind for i in items} == {kind}
        assert all(i.id.startswith(prefix) for i in items)

    def test_items_are_typed(self) -> None:
        """Tags load as frozensets, so they can be intersected with preferences."""
        for i in load_catalog().items("appreciation"):
            assert isinstance(i.focus, frozenset)
            assert i.focus
            assert isinstance(i.love_languages, frozenset)
            assert i.love_languages
            assert "{receiver}" in i.body

    def test_check_in_formats(self) -> None:
        """Check-ins carry a format; other kinds do not."""
        catalog = load_catalog()
        assert {i.format for i in catalog.items("check_in")} == {"monthly_guide", "question"}
        assert {i.format for i in catalog.items("date_night")} == {None}

    @pytest.mark.parametrize("locale", ["en-US", "fr", "zz", "pt-BR"])
    def test_unknown_locales_fall_back_to_english(self, locale: str) -> None:
        """A regional variant uses its language; a language without a catalog uses English."""
        catalog = load_catalog()
        for kind in KINDS:
            assert catalog.items(kind, locale) == catalog.items(kind, "en")

    @pytest.mark.parametrize("kind", KINDS)
    def test_a_region_reads_its_language(self, kind: NudgeKind) -> None:
        """de-AT reads the German catalog: the same items as de (de-AT -> de -> en)."""
        catalog = load_catalog()
        assert catalog.items(kind, "de-AT") == catalog.items(kind, "de")
        assert catalog.items(kind, "de") != catalog.items(kind, "en")

    @pytest.mark.parametrize("kind", KINDS)
    def test_en_gb_is_the_source_through_the_variant_table(self, kind: NudgeKind) -> None:
        """en-GB has the same items, tags and order as en, with UK word forms in the texts."""
        catalog = load_catalog()
        us, uk = catalog.items(kind, "en"), catalog.items(kind, "en-GB")
        assert [i.id for i in uk] == [i.id for i in us]
        assert [blank(i) for i in uk] == [blank(i) for i in us]


class TestVariantLocales:
    CATALOG = Catalog(
        {
            "en": (
                replace(
                    item("ci-en", "check_in"),
                    title="Your favorite color",
                    detail="Call your Mom.",
                    steps=("Order takeout", "Realize it"),
                ),
            ),
            "de": (item("ci-de", "check_in"),),
        },
        {
            "en-GB": Variants(
                {
                    "favorite": "favourite",
                    "color": "colour",
                    "mom": "mum",
                    "takeout": "takeaway",
                    "realize": "realise",
                }
            )
        },
    )

    def test_variant_locale_gets_the_replaced_texts(self) -> None:
        """A locale with a variant table gets its language's items with every text replaced."""
        (gb,) = self.CATALOG.items("check_in", "en-GB")
        assert (gb.id, gb.title, gb.detail) == ("ci-en", "Your favourite colour", "Call your Mum.")
        assert gb.steps == ("Order takeaway", "Realise it")

    @pytest.mark.parametrize("locale", ["en", "en-US", "en-CA"])
    def test_other_locales_get_the_source(self, locale: str) -> None:
        """en, en-US and locales without a table are the source text."""
        (item_,) = self.CATALOG.items("check_in", locale)
        assert item_.title == "Your favorite color"
        assert item_.steps == ("Order takeout", "Realize it")

    def test_own_folder_wins(self) -> None:
        """A table never applies to a locale's own folder (only to a derived locale)."""
        catalog = Catalog({"en": (item("ap-en"),)}, {"en": Variants({"body": "text"})})
        assert catalog.items("appreciation", "en")[0].body == "Body for {receiver}"


class TestCatalogLocales:
    CATALOG = Catalog(
        {
            "en": (item("ap-en"),),
            "de": (item("ap-de"),),
            "pt": (item("ap-pt"),),
            "pt-BR": (item("ap-pt-br"),),
        }
    )

    @pytest.mark.parametrize(
        ("locale", "expected"),
        [
            ("en", "ap-en"),
            ("en-GB", "ap-en"),
            ("de", "ap-de"),
            ("de-AT", "ap-de"),
            ("pt", "ap-pt"),
            ("pt-BR", "ap-pt-br"),
            ("pt-PT", "ap-pt"),
            ("fr", "ap-en"),
            ("fr-CA", "ap-en"),
        ],
    )
    def test_fallback_chain(self, locale: str, expected: str) -> None:
        """Exact locale, then its language, then English."""
        assert [i.id for i in self.CATALOG.items("appreciation", locale)] == [expected]

    def test_default_locale(self) -> None:
        """Without a locale, English items are returned."""
        assert [i.id for i in self.CATALOG.items("appreciation")] == ["ap-en"]

    def test_kind_filter(self) -> None:
        """A locale with no items of a kind gives an empty tuple, not another kind."""
        assert self.CATALOG.items("check_in", "de") == ()

    def test_locales(self) -> None:
        """`locales` lists every loaded locale."""
        assert self.CATALOG.locales == frozenset({"en", "de", "pt", "pt-BR"})
