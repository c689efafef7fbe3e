"""Specification of couples_nudge.notifier.variants: US source text in a regional form (en-GB).

Whole words only, any case in, the same case out; words the table does not list, and words
that merely contain a listed one, are left exactly as they were.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from couples_nudge.notifier.variants import Variants, parse_variants

TABLE = Variants(
    {
        "color": "colour",
        "colorful": "colourful",
        "favorite": "favourite",
        "takeout": "takeaway",
        "mom": "mum",
        "realize": "realise",
        "realized": "realised",
        "living room": "lounge",
    }
)
SHIPPED = Path(__file__).resolve().parents[2] / "services/notifier/catalog/en/variants.toml"


class TestApply:
    @pytest.mark.parametrize(
        ("source", "expected"),
        [
            ("your favorite color", "your favourite colour"),
            ("Favorite takeout tonight", "Favourite takeaway tonight"),
            ("COLOR AND TAKEOUT", "COLOUR AND TAKEAWAY"),
            ("a colorful scarf", "a colourful scarf"),
            ("Did you realize? I realized.", "Did you realise? I realised."),
            ("call your mom, or Mom's friend", "call your mum, or Mum's friend"),
            ("the living room", "the lounge"),
            ("(color)", "(colour)"),
            ("color-coded", "colour-coded"),
        ],
    )
    def test_replaces_listed_words_keeping_case(self, source: str, expected: str) -> None:
        """Listed words and phrases are replaced wherever they stand, in the case found."""
        assert TABLE.apply(source) == expected

    @pytest.mark.parametrize(
        "source",
        [
            "discolored",  # a listed word inside a longer one
            "colors",  # an inflection the table does not list
            "momentum and moment",  # "mom" at the start of other words
            "realizes",
            "Tell {receiver} their favourite",  # placeholders and UK text stay as they are
            "",
        ],
    )
    def test_leaves_other_words_alone(self, source: str) -> None:
        """No partial-word replacement; unlisted forms are not guessed."""
        assert TABLE.apply(source) == source

    def test_empty_table(self) -> None:
        """An empty table changes nothing."""
        assert Variants({}).apply("favorite color") == "favorite color"

    def test_keys_must_be_lower_case(self) -> None:
        """A key that could never match (upper case) is a mistake in the table."""
        with pytest.raises(ValueError, match="lower-case"):
            Variants({"Color": "colour"})


class TestParse:
    def test_one_table_per_locale(self) -> None:
        """Each [locale] section becomes one table."""
        tables = parse_variants({"en-GB": {"color": "colour"}, "en-AU": {"mom": "mum"}})
        assert sorted(tables) == ["en-AU", "en-GB"]
        assert tables["en-AU"].apply("Mom") == "Mum"

    def test_rejects_a_non_table(self) -> None:
        """A section must map words to words."""
        with pytest.raises(ValueError, match=r"\[en-GB\]"):
            parse_variants({"en-GB": "colour"})


class TestShippedTable:
    TABLE = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))

    def test_has_en_gb(self) -> None:
        """The English catalog ships an en-GB table and it parses."""
        assert "en-GB" in parse_variants(self.TABLE)

    def test_every_entry_changes_the_word(self) -> None:
        """Each entry is a real difference, and no UK form is itself a listed US form."""
        table = self.TABLE["en-GB"]
        assert [us for us, uk in table.items() if us == uk] == []
        assert sorted(set(table) & set(table.values())) == []

    @pytest.mark.parametrize(
        ("us", "uk"),
        [
            ("counselor", "counsellor"),
            ("takeout", "takeaway"),
            ("favorite", "favourite"),
            ("color", "colour"),
            ("humor", "humour"),
            ("neighbor", "neighbour"),
            ("realize", "realise"),
            ("center", "centre"),
            ("theater", "theatre"),
            ("traveling", "travelling"),
            ("cozy", "cosy"),
            ("mom", "mum"),
            ("vacation", "holiday"),
            ("apartment", "flat"),
        ],
    )
    def test_core_forms(self, us: str, uk: str) -> None:
        """The forms the content brief names are in the table."""
        assert self.TABLE["en-GB"][us] == uk
