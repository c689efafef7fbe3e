"""Specification of the nudge content catalog (services/notifier/catalog).

The catalog is pure data: one folder per locale, one TOML file per nudge kind,
each a list of ``[[item]]`` tables. These tests pin down the schema, the
minimum size and tag coverage, the placeholder rules and the safety rules, for
every locale found on disk, so a new translation is checked automatically.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections import Counter
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

CATALOG_DIR = Path(__file__).resolve().parents[2] / "services/notifier/catalog"
REFERENCE_LOCALE = "en"

Item = dict[str, Any]

KIND_FILES: dict[str, str] = {
    "date_night": "date_night.toml",
    "check_in": "check_in.toml",
    "appreciation": "appreciation.toml",
}
VARIANTS_FILE = "variants.toml"
ID_PREFIXES: dict[str, str] = {
    "date_night": "dn-",
    "check_in": "ci-",
    "appreciation": "ap-",
}
MIN_ITEMS: dict[str, int] = {
    "date_night": 44,
    "check_in": 44,
    "appreciation": 45,
}
FOCUS_AREAS = frozenset(
    {"emotional", "physical", "intellectual", "experiential", "spiritual", "conflict"}
)
LOVE_LANGUAGES = frozenset(
    {
        "words_of_affirmation",
        "acts_of_service",
        "receiving_gifts",
        "quality_time",
        "physical_touch",
    }
)
CHECK_IN_FORMATS = frozenset({"monthly_guide", "question"})

MIN_PER_FOCUS_AREA = 6
MIN_APPRECIATION_PER_LOVE_LANGUAGE = 9
MIN_CHECK_IN_PER_FORMAT = 12

MAX_ID_LEN = 48
MAX_TITLE_LEN = 40
MAX_BODY_LEN = 160
MAX_DETAIL_LEN = 500

REQUIRED_KEYS = frozenset({"id", "kind", "title", "body", "focus", "love_languages"})
OPTIONAL_KEYS = frozenset({"detail"})
CHECK_IN_ONLY_KEYS = frozenset({"format"})
TEXT_FIELDS = ("title", "body", "detail")

ID_PATTERN = re.compile(r"^(dn|ci|ap)-[a-z0-9]+(?:-[a-z0-9]+)*$")
PLACEHOLDER_FIELDS = frozenset({"receiver", "giver"})
SAMPLE_NAMES: dict[str, str] = {"receiver": "Sam", "giver": "Alex"}


def _terms(text: str) -> tuple[str, ...]:
    """Split a comma-separated block of banned words and phrases."""
    return tuple(" ".join(term.split()) for term in text.split(",") if term.strip())


# Matched as whole words / phrases, case-insensitively, in every text field.
SEXUAL_TERMS = _terms(
    """
    sex, sexy, sexual, sexually, sexuality, sexting, bed, bedroom, naked, nude, nudes,
    nudity, lingerie, underwear, aroused, arousal, arousing, kinky, kink, horny, erotic,
    erotica, orgasm, foreplay, intercourse, seduce, seduction, seductive, sensual,
    steamy, lust, lustful, undress, undressing, striptease, naughty, raunchy, libido,
    porn, hookup, hook up, make out, making out, make love, making love, lovemaking,
    turn on, turned on, in the mood
    """
)
CLINICAL_TERMS = _terms(
    """
    diagnose, diagnosed, diagnosis, disorder, toxic, narcissist, narcissistic, gaslight,
    gaslighting, gaslit, codependent, codependency, pathological, psychopath, sociopath,
    dysfunctional, abusive, trauma, traumatic, therapy, therapist, therapeutic,
    treatment, cure, symptom, symptoms, clinical, clinically, avoidant,
    attachment style, red flag
    """
)
GUILT_PHRASES = _terms(
    """
    you never, you always, you should have, always forget, you forgot, why didn't you,
    why don't you, your fault, shame on, guilt, guilty, as usual, for once,
    disappointed in
    """
)
PRESSURE_PHRASES = _terms(
    """
    chase, chasing, nag, nagging, pester, insist, insisting, demand, demanding, force,
    make them do, make sure they, don't let them, keep asking, until they,
    remind them again, don't take no
    """
)
GENDERED_WORDS = _terms(
    """
    he, she, him, her, his, hers, himself, herself, husband, wife, boyfriend, girlfriend
    """
)
BANNED_GROUPS: dict[str, tuple[str, ...]] = {
    "sexual": SEXUAL_TERMS,
    "clinical": CLINICAL_TERMS,
    "guilt": GUILT_PHRASES,
    "pressure": PRESSURE_PHRASES,
    "gendered": GENDERED_WORDS,
}


def _whole_word(term: str) -> re.Pattern[str]:
    words = (re.escape(word) for word in term.split())
    return re.compile(r"\b" + r"\s+".join(words) + r"\b", re.IGNORECASE)


BANNED_PATTERNS: dict[str, re.Pattern[str]] = {
    term: _whole_word(term) for terms in BANNED_GROUPS.values() for term in terms
}


def _discover_locales() -> list[str]:
    if not CATALOG_DIR.is_dir():
        return []
    return sorted(
        entry.name
        for entry in CATALOG_DIR.iterdir()
        if entry.is_dir() and not entry.name.startswith((".", "_"))
    )


LOCALES = _discover_locales()
OTHER_LOCALES = [locale for locale in LOCALES if locale != REFERENCE_LOCALE]
KINDS = sorted(KIND_FILES)


@cache
def _load_file(locale: str, kind: str) -> dict[str, Any]:
    path = CATALOG_DIR / locale / KIND_FILES[kind]
    with path.open("rb") as handle:
        return tomllib.load(handle)


def _items(locale: str, kind: str) -> list[Item]:
    items: list[Item] = _load_file(locale, kind)["item"]
    return items


def _all_items(locale: str) -> list[Item]:
    return [item for kind in KINDS for item in _items(locale, kind)]


def _texts(item: Item) -> Iterator[tuple[str, str]]:
    for field in TEXT_FIELDS:
        if field in item:
            yield field, item[field]


def _format_fields(text: str) -> list[str]:
    return [field for _, field, _, _ in string.Formatter().parse(text) if field is not None]


def _rendered_length(body: str) -> int:
    """Length after filling sample names; malformed placeholders are another test's job."""
    try:
        return len(body.format(**SAMPLE_NAMES))
    except (KeyError, IndexError, ValueError):
        return len(body)


def _by_id(locale: str) -> dict[str, Item]:
    return {item["id"]: item for item in _all_items(locale)}


def _label(item: Item) -> str:
    return str(item.get("id", "<no id>"))


locale_param = pytest.mark.parametrize("locale", LOCALES)
locale_kind_param = pytest.mark.parametrize(
    ("locale", "kind"), [(locale, kind) for locale in LOCALES for kind in KINDS]
)


class TestCatalogLayout:
    def test_reference_locale_exists(self) -> None:
        """The catalog folder contains the reference locale `en`."""
        assert REFERENCE_LOCALE in LOCALES

    @locale_kind_param
    def test_kind_file_exists(self, locale: str, kind: str) -> None:
        """Every locale has one TOML file per nudge kind."""
        assert (CATALOG_DIR / locale / KIND_FILES[kind]).is_file()

    @locale_kind_param
    def test_file_parses_as_list_of_items(self, locale: str, kind: str) -> None:
        """Every file parses with tomllib into a non-empty list of [[item]] tables only."""
        data = _load_file(locale, kind)
        assert set(data) == {"item"}
        assert isinstance(data["item"], list)
        assert data["item"]
        assert all(isinstance(item, dict) for item in data["item"])

    @locale_param
    def test_no_stray_files(self, locale: str) -> None:
        """A locale folder holds the known kind files and at most a variant table."""
        found = {p.name for p in (CATALOG_DIR / locale).iterdir() if p.suffix == ".toml"}
        assert found - {VARIANTS_FILE} == set(KIND_FILES.values())


class TestItemSchema:
    @locale_kind_param
    def test_required_keys_present(self, locale: str, kind: str) -> None:
        """Every item has id, kind, title, body, focus, love_languages; check-ins also format."""
        required = REQUIRED_KEYS | (CHECK_IN_ONLY_KEYS if kind == "check_in" else frozenset())
        missing = {_label(i): sorted(required - set(i)) for i in _items(locale, kind)}
        assert {k: v for k, v in missing.items() if v} == {}

    @locale_kind_param
    def test_no_unknown_keys(self, locale: str, kind: str) -> None:
        """Items carry no keys beyond the documented ones; only check-ins carry `format`."""
        allowed = REQUIRED_KEYS | OPTIONAL_KEYS
        if kind == "check_in":
            allowed |= CHECK_IN_ONLY_KEYS
        extra = {_label(i): sorted(set(i) - allowed) for i in _items(locale, kind)}
        assert {k: v for k, v in extra.items() if v} == {}

    @locale_kind_param
    def test_text_fields_are_non_empty_strings(self, locale: str, kind: str) -> None:
        """id, title, body and detail (when present) are non-empty strings."""
        for item in _items(locale, kind):
            for field in ("id", "title", "body", "detail"):
                if field in item:
                    value = item[field]
                    assert isinstance(value, str), (_label(item), field)
                    assert value.strip(), (_label(item), field)

    @locale_kind_param
    def test_tag_fields_are_lists_of_strings(self, locale: str, kind: str) -> None:
        """focus and love_languages are lists of strings without duplicates."""
        for item in _items(locale, kind):
            for field in ("focus", "love_languages"):
                tags = item[field]
                assert isinstance(tags, list), (_label(item), field)
                assert all(isinstance(tag, str) for tag in tags), (_label(item), field)
                assert len(tags) == len(set(tags)), (_label(item), field)

    @locale_param
    def test_check_in_format_is_known(self, locale: str) -> None:
        """Every check-in has format "monthly_guide" or "question"."""
        bad = [i["id"] for i in _items(locale, "check_in") if i["format"] not in CHECK_IN_FORMATS]
        assert bad == []


class TestIdentifiers:
    @locale_param
    def test_ids_unique_across_files(self, locale: str) -> None:
        """No id appears twice anywhere in a locale's catalog."""
        counts = Counter(item["id"] for item in _all_items(locale))
        assert [i for i, n in counts.items() if n > 1] == []

    @locale_kind_param
    def test_ids_are_kebab_case(self, locale: str, kind: str) -> None:
        """Ids are lower-case kebab-case and at most 48 characters."""
        bad = [
            i["id"]
            for i in _items(locale, kind)
            if not ID_PATTERN.match(i["id"]) or len(i["id"]) > MAX_ID_LEN
        ]
        assert bad == []

    @locale_kind_param
    def test_id_prefix_matches_kind(self, locale: str, kind: str) -> None:
        """Ids start with dn-, ci- or ap- according to their kind."""
        prefix = ID_PREFIXES[kind]
        assert [i["id"] for i in _items(locale, kind) if not i["id"].startswith(prefix)] == []


class TestKinds:
    @locale_kind_param
    def test_kind_matches_file(self, locale: str, kind: str) -> None:
        """Each item's kind equals the kind its file is named after."""
        assert [i["id"] for i in _items(locale, kind) if i["kind"] != kind] == []


class TestLengths:
    @locale_param
    def test_title_length(self, locale: str) -> None:
        """Titles are at most 40 characters, so they fit a push title and email subject."""
        assert [i["id"] for i in _all_items(locale) if len(i["title"]) > MAX_TITLE_LEN] == []

    @locale_param
    def test_title_has_no_trailing_period(self, locale: str) -> None:
        """Titles are headlines and do not end with a period."""
        assert [i["id"] for i in _all_items(locale) if i["title"].endswith(".")] == []

    @locale_param
    def test_body_length(self, locale: str) -> None:
        """Bodies are at most 160 characters, before and after filling sample names."""
        too_long = [
            i["id"]
            for i in _all_items(locale)
            if max(len(i["body"]), _rendered_length(i["body"])) > MAX_BODY_LEN
        ]
        assert too_long == []

    @locale_param
    def test_detail_length(self, locale: str) -> None:
        """Details, when present, are at most 500 characters."""
        too_long = [
            i["id"] for i in _all_items(locale) if len(i.get("detail", "")) > MAX_DETAIL_LEN
        ]
        assert too_long == []


class TestTags:
    @locale_param
    def test_focus_tags_known_and_present(self, locale: str) -> None:
        """Every item has at least one focus tag, all from the known focus areas."""
        bad = [
            i["id"]
            for i in _all_items(locale)
            if not i["focus"] or not set(i["focus"]) <= FOCUS_AREAS
        ]
        assert bad == []

    @locale_param
    def test_love_language_tags_known(self, locale: str) -> None:
        """Love-language tags come only from the five known love languages."""
        bad = [
            i["id"] for i in _all_items(locale) if not set(i["love_languages"]) <= LOVE_LANGUAGES
        ]
        assert bad == []

    @locale_param
    def test_appreciation_has_love_language(self, locale: str) -> None:
        """Every appreciation item names at least one love language of the receiver."""
        assert [i["id"] for i in _items(locale, "appreciation") if not i["love_languages"]] == []


class TestCoverage:
    @locale_kind_param
    def test_minimum_items_per_kind(self, locale: str, kind: str) -> None:
        """Each kind has enough items for months of nudges (44 / 44 / 45)."""
        assert len(_items(locale, kind)) >= MIN_ITEMS[kind]

    @locale_param
    @pytest.mark.parametrize("language", sorted(LOVE_LANGUAGES))
    def test_appreciation_per_love_language(self, locale: str, language: str) -> None:
        """Each love language is served by at least 9 appreciation items."""
        count = sum(language in i["love_languages"] for i in _items(locale, "appreciation"))
        assert count >= MIN_APPRECIATION_PER_LOVE_LANGUAGE

    @locale_param
    @pytest.mark.parametrize("check_in_format", sorted(CHECK_IN_FORMATS))
    def test_check_in_per_format(self, locale: str, check_in_format: str) -> None:
        """There are at least 12 monthly guides and at least 12 questions of the day."""
        count = sum(i["format"] == check_in_format for i in _items(locale, "check_in"))
        assert count >= MIN_CHECK_IN_PER_FORMAT

    @locale_param
    @pytest.mark.parametrize("focus", sorted(FOCUS_AREAS))
    def test_items_per_focus_area(self, locale: str, focus: str) -> None:
        """Each focus area is tagged on at least 6 items across the catalog."""
        count = sum(focus in i["focus"] for i in _all_items(locale))
        assert count >= MIN_PER_FOCUS_AREA


class TestPlaceholders:
    @locale_param
    def test_appreciation_body_names_receiver(self, locale: str) -> None:
        """Every appreciation body contains the {receiver} placeholder."""
        items = _items(locale, "appreciation")
        assert [i["id"] for i in items if "{receiver}" not in i["body"]] == []

    @locale_param
    def test_appreciation_placeholders_known(self, locale: str) -> None:
        """Appreciation bodies use only the {receiver} and {giver} placeholders."""
        bad = [
            i["id"]
            for i in _items(locale, "appreciation")
            if not set(_format_fields(i["body"])) <= PLACEHOLDER_FIELDS
        ]
        assert bad == []

    @locale_param
    def test_no_braces_elsewhere(self, locale: str) -> None:
        """Braces appear only in appreciation bodies; titles, details and other kinds have none."""
        bad: list[tuple[str, str]] = []
        for item in _all_items(locale):
            for field, text in _texts(item):
                if item["kind"] == "appreciation" and field == "body":
                    continue
                if "{" in text or "}" in text:
                    bad.append((item["id"], field))
        assert bad == []

    @locale_param
    def test_body_formats_with_sample_names(self, locale: str) -> None:
        """str.format(receiver=..., giver=...) succeeds on every body and leaves no braces."""
        for item in _all_items(locale):
            rendered = item["body"].format(**SAMPLE_NAMES)
            assert "{" not in rendered, item["id"]
            assert "}" not in rendered, item["id"]


class TestSafety:
    @locale_param
    @pytest.mark.parametrize("group", sorted(BANNED_GROUPS))
    def test_banned_words_absent(self, locale: str, group: str) -> None:
        """No title, body or detail contains a banned word or phrase (whole words, any case)."""
        hits: list[tuple[str, str, str]] = []
        for item in _all_items(locale):
            for field, text in _texts(item):
                for term in BANNED_GROUPS[group]:
                    if BANNED_PATTERNS[term].search(text):
                        hits.append((item["id"], field, term))
        assert hits == []

    def test_banned_word_matcher_is_whole_word(self) -> None:
        """The banned-word matcher catches whole words in any case but not substrings."""
        assert BANNED_PATTERNS["bed"].search("Breakfast in BED")
        assert not BANNED_PATTERNS["bed"].search("a bedtime story")
        assert BANNED_PATTERNS["make out"].search("they make  out")
        assert not BANNED_PATTERNS["sex"].search("Sussex")
        assert "attachment style" in CLINICAL_TERMS


class TestTextHygiene:
    @locale_param
    def test_no_surrounding_whitespace(self, locale: str) -> None:
        """Text values have no leading or trailing whitespace."""
        bad = [
            (item["id"], field)
            for item in _all_items(locale)
            for field, text in _texts(item)
            if text != text.strip()
        ]
        assert bad == []

    @locale_param
    def test_single_line_plain_text(self, locale: str) -> None:
        """Titles, bodies and details are single-line plain text without markup or links."""
        bad = [
            (item["id"], field)
            for item in _all_items(locale)
            for field, text in _texts(item)
            if "\n" in text or "\t" in text or "<" in text or ">" in text or "http" in text
        ]
        assert bad == []

    @locale_kind_param
    def test_file_has_no_trailing_whitespace(self, locale: str, kind: str) -> None:
        """No line in the TOML source ends with whitespace."""
        lines = (CATALOG_DIR / locale / KIND_FILES[kind]).read_text(encoding="utf-8").splitlines()
        assert [n for n, line in enumerate(lines, 1) if line != line.rstrip()] == []


def _translation_problems(
    translated: dict[str, dict[str, Any]], reference: dict[str, dict[str, Any]]
) -> list[str]:
    """What a translation got wrong: ids missing or added, untranslatable tags changed."""
    problems = [f"missing {i}" for i in sorted(set(reference) - set(translated))]
    problems += [f"unknown {i}" for i in sorted(set(translated) - set(reference))]
    for item_id in sorted(set(reference) & set(translated)):
        for key in ("kind", "focus", "love_languages", "format"):
            if translated[item_id].get(key) != reference[item_id].get(key):
                problems.append(f"{item_id}: {key} changed")
    return problems


class TestLocales:
    def test_every_translation_matches_the_reference(self) -> None:
        """Each locale besides `en` has the same ids, and the same kind/tags/format per id."""
        reference = _by_id(REFERENCE_LOCALE)
        problems = {
            locale: _translation_problems(_by_id(locale), reference) for locale in OTHER_LOCALES
        }
        assert {locale: found for locale, found in problems.items() if found} == {}

    def test_translation_check_catches_drift(self) -> None:
        """A copy of `en` with one id dropped and one tag changed is reported on both counts."""
        reference = _by_id(REFERENCE_LOCALE)
        drifted = {i: dict(item) for i, item in reference.items()}
        dropped, changed = sorted(drifted)[:2]
        del drifted[dropped]
        drifted[changed]["focus"] = ["spiritual", "conflict", "emotional", "physical"]
        assert _translation_problems(drifted, reference) == [
            f"missing {dropped}",
            f"{changed}: focus changed",
        ]
        assert _translation_problems(reference, reference) == []
