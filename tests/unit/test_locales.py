"""Specification of couples_nudge.notifier.locales: which language serves a locale, its interface
strings (one source for en-US and en-GB), parity of every language with English, and dates
formatted for the locale.
"""

from __future__ import annotations

import string
import tomllib
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import pytest

from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.locales import (
    chain,
    folder_for,
    format_when,
    html_lang,
    strings_for,
    template_for,
    text_languages,
)

ROOT = resources.files("couples_nudge.notifier") / "templates"
REFERENCE = "en"


def flat(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"footer.why": "...", ...} for every string of a strings.toml."""
    out: dict[str, str] = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out |= flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def problems(strings: dict[str, str], reference: dict[str, str]) -> list[str]:
    """What a language's strings lack or add compared with English: keys and placeholders."""
    found = [f"missing {key}" for key in sorted(reference.keys() - strings.keys())]
    found += [f"unknown {key}" for key in sorted(strings.keys() - reference.keys())]
    for key in sorted(reference.keys() & strings.keys()):
        if placeholders(strings[key]) != placeholders(reference[key]):
            found.append(f"{key}: placeholders {sorted(placeholders(strings[key]))}")
        if not strings[key].strip():
            found.append(f"{key}: empty")
    return found


def read(folder: str) -> dict[str, str]:
    return flat(tomllib.loads((ROOT / folder / "strings.toml").read_text("utf-8")))


class TestParity:
    @pytest.mark.parametrize("language", text_languages())
    def test_every_language_has_every_string_and_placeholder(self, language: str) -> None:
        """Each language's strings.toml has exactly English's keys, each with the same
        {placeholders}, none empty: a missing key or placeholder fails here, not in a send."""
        assert problems(read(language), read(REFERENCE)) == []

    def test_the_check_finds_a_missing_key_and_a_lost_placeholder(self) -> None:
        """The parity check itself reports a dropped key and a dropped placeholder."""
        english = read(REFERENCE)
        broken = {k: v for k, v in english.items() if k != "footer.manage"}
        broken["turn.partner"] = "Someone's turn"
        assert problems(broken, english) == [
            "missing footer.manage",
            "turn.partner: placeholders []",
        ]

    def test_every_string_is_used_by_a_known_section(self) -> None:
        """The sections the renderer reads are all there in English."""
        sections = {key.split(".")[0] for key in read(REFERENCE)}
        assert sections >= {
            "heading", "discreet", "turn", "footer", "email", "cta", "scope", "unsubscribe"
        }  # fmt: skip


class TestFallback:
    @pytest.mark.parametrize(
        ("locale", "expected"),
        [("de-AT", ("de-AT", "de", "en")), ("en-GB", ("en-GB", "en")), ("en", ("en",))],
    )
    def test_chain(self, locale: str, expected: tuple[str, ...]) -> None:
        """A locale falls back to its language, then to English."""
        assert chain(locale) == expected

    @pytest.mark.parametrize("locale", ["xx", "xx-YY", "fr-CA", "en-US", "en-GB"])
    def test_unknown_languages_read_english(self, locale: str) -> None:
        """Without a folder of its own or of its language, a locale is served by English."""
        if locale.split("-")[0] not in text_languages():
            assert folder_for(locale) == "en"
            assert html_lang(locale) == "en"
        else:
            assert html_lang(locale) == locale

    def test_language_folders_serve_their_regions(self) -> None:
        """Every language folder serves its regional locales (de serves de-AT), and says so."""
        for language in text_languages():
            assert folder_for(f"{language}-ZZ") == language
            assert html_lang(f"{language}-ZZ") == f"{language}-ZZ"

    def test_templates_are_shared(self) -> None:
        """A language without its own template copy renders with the English template."""
        assert template_for("xx", "email.html.j2") == "en/email.html.j2"
        for language in text_languages():
            assert template_for(language, "email.txt.j2").endswith("/email.txt.j2")

    def test_a_language_brings_only_its_strings(self) -> None:
        """No language folder keeps a copy of a template: a copy would drift from the shared
        one (a German copy once missed the date jar's block and the greeting string)."""
        root = resources.files("couples_nudge.notifier") / "templates"
        for folder in root.iterdir():
            if folder.is_dir() and folder.name != "en":
                assert sorted(p.name for p in folder.iterdir()) == ["strings.toml"], folder.name


class TestRegionalEnglish:
    def test_en_gb_interface_strings_come_from_the_variant_table(self) -> None:
        """en-GB reads the English strings with British forms; en-US and en are the source."""
        assert "counsellor" in strings_for("en-GB")["footer"]["counselor"]
        assert "counselor" in strings_for("en-US")["footer"]["counselor"]
        assert strings_for("en") is strings_for("en")  # read once
        gb, us = flat(dict(strings_for("en-GB"))), flat(dict(strings_for("en")))
        assert gb.keys() == us.keys()
        assert sum(gb[k] != us[k] for k in us) >= 1

    @pytest.mark.parametrize("locale", ["en-AU", "en-NZ", "en-IE", "en-ZA", "en-IN"])
    def test_british_spelling_locales_read_the_en_gb_forms(self, locale: str) -> None:
        """Australia, New Zealand, Ireland, South Africa and India spell as Britain does:
        they read en-GB's forms, strings and items alike (they got the US source: an
        Australian partner's footer said 'counselor', an appreciation 'favorite')."""
        assert "counsellor" in strings_for(locale)["footer"]["counselor"]
        catalog = load_catalog()
        ours = {i.id: i.body for i in catalog.items("appreciation", locale)}
        gb = {i.id: i.body for i in catalog.items("appreciation", "en-GB")}
        assert ours == gb
        assert any("favourite" in body for body in ours.values())

    def test_canadian_english_keeps_the_source(self) -> None:
        """Canadian English mixes both spellings: it keeps the catalog's own text."""
        assert "counselor" in strings_for("en-CA")["footer"]["counselor"]
        catalog = load_catalog()
        assert catalog.items("appreciation", "en-CA") == catalog.items("appreciation", "en")


WHEN = datetime(2026, 12, 11, 18, 0, tzinfo=UTC)  # a Friday


class TestDates:
    @pytest.mark.parametrize(
        ("locale", "zone", "expected"),
        [
            ("en", "Europe/Berlin", "Friday, December 11, 2026 at 7:00\u202fPM"),
            ("en-GB", "Europe/London", "Friday, 11 December 2026 at 18:00"),
            ("en-US", "America/New_York", "Friday, December 11, 2026 at 1:00\u202fPM"),
            ("en-AU", "Australia/Sydney", "Saturday, 12 December 2026 at 5:00\u202fam"),
            ("xx", "UTC", "Friday, December 11, 2026 at 6:00\u202fPM"),
        ],
    )
    def test_formatted_for_the_locale_and_zone(self, locale: str, zone: str, expected: str) -> None:
        """Date and time follow the partner's locale (CLDR via Babel) in their own zone."""
        got = format_when(WHEN, zone, locale, "{date} at {time}")
        assert "\u202f" not in got  # kept a one-byte string: see locales.format_when
        assert got.replace("\u00a0", " ") == expected.replace("\u202f", " ")

    def test_german_when_a_german_folder_exists(self) -> None:
        """With German strings, de-AT dates are written the Austrian way (Jänner, 24 h)."""
        if "de" not in text_languages():
            pytest.skip("no German strings yet (templates/de is being written)")
        got = format_when(
            datetime(2027, 1, 8, 18, 0, tzinfo=UTC), "Europe/Vienna", "de-AT", "{date} {time}"
        )
        assert got == "Freitag, 8. Jänner 2027 19:00"
