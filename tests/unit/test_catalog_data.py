"""Specification of the nudge content catalog (services/notifier/catalog).

The catalog is pure data: one folder per locale, one TOML file per nudge kind,
each a list of ``[[item]]`` tables. These tests pin down the schema, the
minimum size and tag coverage, the placeholder rules and the safety rules, for
every locale found on disk, so a new translation is checked automatically.

The second edition of the format (catalog/README.md) adds cost, free_variant, setting, effort,
assumes, deck, hard_topic and steps, and rules for touch, hard topics, spelling and repetition.
Its values are checked wherever they appear; the rules that need every item rewritten (the new
keys present on every item, the phrase rules, US spelling, no near-duplicates, the raised
minimums) apply to the kinds in KINDS_ON_SECOND_EDITION, so each kind is switched on when its
file has been rewritten.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from rapidfuzz import fuzz

from couples_nudge.notifier.variants import parse_variants

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
OPTIONAL_KEYS = frozenset({"detail", "free_variant", "hard_topic"})
CHECK_IN_ONLY_KEYS = frozenset({"format"})
TEXT_FIELDS = ("title", "body", "detail")


def _terms(text: str) -> tuple[str, ...]:
    """Split a comma-separated block of words and phrases."""
    return tuple(" ".join(term.split()) for term in text.split(",") if term.strip())


# --- Second edition --------------------------------------------------------------------------

# Kinds whose file is written to the second edition: the rules that need every item rewritten
# apply to these; every kind is on it now (a new kind starts off it while it is rewritten).
KINDS_ON_SECOND_EDITION: frozenset[str] = frozenset({"date_night", "check_in", "appreciation"})

SECOND_EDITION_KEYS = frozenset({"cost", "setting", "effort", "assumes"})  # on every item
COSTS = frozenset({"free", "low", "paid"})
SETTINGS = frozenset({"home", "out", "apart", "any"})
EFFORTS = frozenset({"small", "medium", "big"})
ASSUMPTIONS = frozenset({"living_together", "mobility", "no_children_home"})
DECKS = frozenset({"love_map", "open_ended"})
# Which check-in format carries which key (and every item of that format carries it).
FORMAT_KEYS: dict[str, str] = {"question": "deck", "monthly_guide": "steps"}
MIN_STEPS, MAX_STEPS, MAX_STEP_LEN = 4, 6, 120

MIN_ITEMS_SECOND_EDITION: dict[str, int] = {
    "date_night": 135,
    "check_in": 175,
    "appreciation": 205,
}
MIN_CHECK_IN_SECOND_EDITION: dict[str, int] = {"monthly_guide": 52, "question": 123}
MIN_LOVE_MAP_QUESTIONS = 42
MIN_APPRECIATION_PER_LOVE_LANGUAGE_SECOND_EDITION = 37
MIN_PER_FOCUS_AREA_PER_KIND = 6
# Every kind serves every focus area: "conflict" date nights are gentle evenings that make
# repair easier (a walk to talk a plan through, each with an exit), never a scheduled argument.

# Phrases the tests look for (case-insensitive). Touch is offered, never assumed:
CONSENT_PHRASES = (
    "if it's welcome",
    "if they'd like",
    "if they would like",
    "ask first",
    "ask if",
    "check it's welcome",
    "if they're in the mood for",
    "whatever feels welcome",
    "if that feels good to them",
)
# A hard topic always has an exit...
OUT_PHRASES = (
    "only if you both feel ready",
    "if you both feel ready",
    "or pick another time",
    "choose another time",
    "another time that suits you both",
)
# ...and suggests a pause with a time to come back.
PAUSE_PATTERN = re.compile(r"\bpause\b", re.IGNORECASE)
COME_BACK_PATTERN = re.compile(r"\bcome back\b|\breturn to\b", re.IGNORECASE)
# Wording that makes an item a hard topic, so it must be tagged (and then carry the exit): a
# schedule must never be the one deciding that now is the moment for a difficult talk.
HARD_TOPIC_WORDING = _terms(
    """
    hesitant to say, now that things are calm, been avoiding, been putting off,
    hard conversation, difficult conversation, hard talk, difficult talk, tense moment,
    rough moment, argument, arguments, argue, argued, fight, fights, fought, resentment,
    resent, hurtful, unresolved, sore point, sore spot, grievance
    """
)
# Wording that assumes something a couple may not have; such an item must say so in `assumes`
# (or, for distance, be an `apart` item). Deliberately short lists of unambiguous words.
ASSUMPTION_WORDING: dict[str, tuple[str, ...]] = {
    "living_together": _terms(
        "mirror, fridge, pillow, chore, chores, laundry, the dishes, come home, comes home"
    ),
    "mobility": _terms(
        """
        walk, walks, walking, hike, hikes, hiking, cycle, cycling, bike, bikes, dance,
        dancing, climb, climbing, run, running, swim, swimming
        """
    ),
    "no_children_home": _terms("kids are asleep, kids are in bed, babysitter, child-free"),
}
# Children: many couples have none, so an item that speaks of the couple's children says "if"
# (English source; translations keep the hedge in their own words).
CHILDREN_WORDING = _terms(
    """
    the kids, your kids, with the kids, the children, your children, baby, babysitting,
    monitor, little ones, little one, school run, school drop-off
    """
)
CHILDREN_HEDGES = _terms(
    "if you have, if you raise, kids at home, if little ones, if the kids, if there are kids"
)
DISTANCE_WORDING = _terms(
    "video call, long distance, long-distance, miles apart, time zone, time zones, parcel"
)

ID_PATTERN = re.compile(r"^(dn|ci|ap)-[a-z0-9]+(?:-[a-z0-9]+)*$")
PLACEHOLDER_FIELDS = frozenset({"receiver", "giver"})
SAMPLE_NAMES: dict[str, str] = {"receiver": "Sam", "giver": "Alex"}


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


@cache
def _whole_word(term: str) -> re.Pattern[str]:
    words = (re.escape(word) for word in term.split())
    return re.compile(r"\b" + r"\s+".join(words) + r"\b", re.IGNORECASE)


BANNED_PATTERNS: dict[str, re.Pattern[str]] = {
    term: _whole_word(term) for terms in BANNED_GROUPS.values() for term in terms
}


# --- The rules in other languages ------------------------------------------------------------
#
# The rules above are worded in English. A translation keeps them in its own words: each
# locale has one LocaleRules entry (its consent and exit phrases, the wording that needs a tag,
# its banned words, the words of a guide's shape, filler words and spelling mistakes), and the
# phrase tests below look the locale's entry up. A locale without an entry fails those tests.


@dataclass(frozen=True)
class LocaleRules:
    consent: tuple[str, ...]  # touch is offered: one of these, case-folded
    out: tuple[str, ...]  # a hard topic's exit: one of these, case-folded
    pause: re.Pattern[str]  # ...and a pause
    come_back: re.Pattern[str]  # ...with a time to come back
    hard_wording: tuple[str, ...]  # only in hard_topic items
    assumption_wording: dict[str, tuple[str, ...]]  # only with the matching `assumes` tag
    distance_wording: tuple[str, ...]  # only in `apart` items
    banned: dict[str, tuple[str, ...]]  # by group, as BANNED_GROUPS
    # A monthly guide's shape: warm start, listening and saying back, feeling loved, a plan.
    warm: re.Pattern[str]
    listen: re.Pattern[str]
    back: re.Pattern[str]
    loved: re.Pattern[str]
    plan: re.Pattern[str]
    filler: frozenset[str]  # words the near-duplicate score ignores
    misspelling: dict[str, re.Pattern[str]]  # mistakes that must not appear, by name
    paired_punctuation: tuple[tuple[str, str], ...] = ()  # ("¿", "?"): as many of each


def _any_case(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


LOCALE_RULES: dict[str, LocaleRules] = {}  # filled below: "en" from the tables above, then "de"


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
    """Every text of an item: title, body, detail and each agenda step."""
    for field in TEXT_FIELDS:
        if field in item:
            yield field, item[field]
    for n, step in enumerate(item.get("steps", ())):
        yield f"steps[{n}]", step


def _all_text(item: Item) -> str:
    return "\n".join(text for _, text in _texts(item))


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
        """Items carry no keys beyond the documented ones; only check-ins carry `format`, only
        questions a `deck` and only monthly guides `steps`."""
        allowed = REQUIRED_KEYS | OPTIONAL_KEYS | SECOND_EDITION_KEYS
        extra: dict[str, list[str]] = {}
        for i in _items(locale, kind):
            keys = allowed
            if kind == "check_in":
                keys = keys | CHECK_IN_ONLY_KEYS
                if i.get("format") in FORMAT_KEYS:
                    keys = keys | {FORMAT_KEYS[i["format"]]}
            extra[_label(i)] = sorted(set(i) - keys)
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
    def test_banned_words_absent(self, locale: str) -> None:
        """No text contains a banned word or phrase of its locale's lists (whole words, any
        case); each language has its own lists (LOCALE_RULES), by group."""
        hits = [
            (item["id"], field, group, term)
            for group, terms in _rules(locale).banned.items()
            for item in _all_items(locale)
            for field, text in _texts(item)
            for term in _wording(terms, text)
        ]
        assert hits == []

    def test_every_locale_bans_every_group(self) -> None:
        """Each language's banned-word table covers at least the English groups (Spanish adds
        the forms of address it never uses)."""
        for locale, rules in LOCALE_RULES.items():
            assert set(BANNED_GROUPS) <= set(rules.banned), locale

    def test_german_matcher_is_whole_word(self) -> None:
        """German words match whole, umlauts included: "Bett" but not "Bettdecke"."""
        assert _whole_word("bett").search("Frühstück im Bett")
        assert not _whole_word("bett").search("eine warme Bettdecke")
        assert _whole_word("dein partner").search("Sag deinem Partner oder dein  Partner")
        assert not _whole_word("frau").search("eine Frauenzeitschrift")

    def test_banned_word_matcher_is_whole_word(self) -> None:
        """The banned-word matcher catches whole words in any case but not substrings."""
        assert BANNED_PATTERNS["bed"].search("Breakfast in BED")
        assert not BANNED_PATTERNS["bed"].search("a bedtime story")
        assert BANNED_PATTERNS["make out"].search("they make  out")
        assert not BANNED_PATTERNS["sex"].search("Sussex")
        assert "attachment style" in CLINICAL_TERMS
        assert _whole_word("él").search("Pregúntale a él")
        assert not _whole_word("él").search("el")
        assert _whole_word("os").search("Os toca")
        assert not _whole_word("os").search("los osos")

    def test_every_locale_has_rules(self) -> None:
        """Every locale folder has its own phrase rules and word lists in LOCALE_RULES."""
        assert [locale for locale in LOCALES if locale not in LOCALE_RULES] == []

    @locale_param
    def test_paired_punctuation(self, locale: str) -> None:
        """Where a language opens what it closes (¿...? ¡...!), every text has as many of each."""
        bad = [
            (item["id"], field, opener)
            for item in _all_items(locale)
            for field, text in _texts(item)
            for opener, closer in _rules(locale).paired_punctuation
            if text.count(opener) != text.count(closer)
        ]
        assert bad == []


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
        for key in (
            "kind",
            "focus",
            "love_languages",
            "format",
            "cost",
            "free_variant",
            "setting",
            "effort",
            "assumes",
            "deck",
            "hard_topic",
        ):
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


TEMPLATES_DIR = CATALOG_DIR.parent / "templates"
STRINGS_FILE = "strings.toml"


def _interface_strings(locale: str) -> dict[str, Any]:
    """A locale's strings.toml, flattened to "section.key" -> text."""
    data = tomllib.loads((TEMPLATES_DIR / locale / STRINGS_FILE).read_text(encoding="utf-8"))
    return {f"{name}.{key}": text for name, table in data.items() for key, text in table.items()}


STRING_LOCALES = sorted(p.parent.name for p in TEMPLATES_DIR.glob(f"*/{STRINGS_FILE}"))


class TestInterfaceStrings:
    """The words around an item (templates/<locale>/strings.toml) match English key for key."""

    @locale_param
    def test_catalog_locale_has_strings(self, locale: str) -> None:
        """A language with a catalog of its own has its own interface strings too."""
        assert (TEMPLATES_DIR / locale / STRINGS_FILE).is_file()

    @pytest.mark.parametrize("locale", STRING_LOCALES)
    def test_same_keys_and_placeholders_as_english(self, locale: str) -> None:
        """Exactly the keys of English, each a non-empty string with the same placeholders."""
        reference, strings = _interface_strings(REFERENCE_LOCALE), _interface_strings(locale)
        assert sorted(strings) == sorted(reference)
        bad = [
            key
            for key, text in strings.items()
            if not isinstance(text, str)
            or not text.strip()
            or sorted(_format_fields(text)) != sorted(_format_fields(reference[key]))
        ]
        assert bad == []


# --- Second edition --------------------------------------------------------------------------

SECOND_EDITION_KINDS = sorted(KINDS_ON_SECOND_EDITION)
second_edition_param = pytest.mark.parametrize(
    ("locale", "kind"), [(locale, kind) for locale in LOCALES for kind in SECOND_EDITION_KINDS]
)


def _has_phrase(text: str, phrases: tuple[str, ...]) -> bool:
    folded = " ".join(text.casefold().replace("\u2019", "'").split())
    return any(phrase in folded for phrase in phrases)


def _wording(terms: tuple[str, ...], text: str) -> list[str]:
    return [term for term in terms if _whole_word(term).search(text)]


def _on_second_edition(kind: str) -> None:
    if kind not in KINDS_ON_SECOND_EDITION:
        pytest.skip(f"{kind} is not on the second edition yet")


def _questions(locale: str) -> list[Item]:
    return [i for i in _items(locale, "check_in") if i["format"] == "question"]


def _guides(locale: str) -> list[Item]:
    return [i for i in _items(locale, "check_in") if i["format"] == "monthly_guide"]


class TestSecondEditionValues:
    """Checked on every item that has the key, in every kind, switched on or not."""

    @locale_param
    def test_allowed_values(self, locale: str) -> None:
        """cost, setting, effort, deck take one known value; assumes is a list of known ones
        without repeats; hard_topic is only ever written as true."""
        bad: list[tuple[str, str]] = []
        for i in _all_items(locale):
            for key, allowed in (
                ("cost", COSTS),
                ("setting", SETTINGS),
                ("effort", EFFORTS),
                ("deck", DECKS),
            ):
                if key in i and i[key] not in allowed:
                    bad.append((i["id"], key))
            assumes = i.get("assumes", [])
            if (
                not isinstance(assumes, list)
                or not set(assumes) <= ASSUMPTIONS
                or len(assumes) != len(set(assumes))
            ):
                bad.append((i["id"], "assumes"))
            if "hard_topic" in i and i["hard_topic"] is not True:
                bad.append((i["id"], "hard_topic"))
        assert bad == []

    @locale_param
    def test_paid_items_name_a_free_variant(self, locale: str) -> None:
        """Every paid idea names a free_variant, and only paid ideas do."""
        items = _all_items(locale)
        assert [i["id"] for i in items if i.get("cost") == "paid" and "free_variant" not in i] == []
        assert [i["id"] for i in items if "free_variant" in i and i.get("cost") != "paid"] == []

    @locale_param
    def test_free_variant_is_a_free_item_of_the_same_kind(self, locale: str) -> None:
        """A free_variant exists, is of the same kind and is free."""
        by_id = _by_id(locale)
        bad = []
        for i in _all_items(locale):
            if "free_variant" in i:
                other = by_id.get(i["free_variant"])
                if other is None or other["kind"] != i["kind"] or other.get("cost") != "free":
                    bad.append((i["id"], i["free_variant"]))
        assert bad == []


class TestSecondEditionShape:
    @second_edition_param
    def test_new_keys_on_every_item(self, locale: str, kind: str) -> None:
        """Every item states cost, setting, effort and assumes (even when it is [])."""
        missing = {_label(i): sorted(SECOND_EDITION_KEYS - set(i)) for i in _items(locale, kind)}
        assert {k: v for k, v in missing.items() if v} == {}

    @locale_param
    def test_deck_on_every_question(self, locale: str) -> None:
        """Every check-in question belongs to the love_map or the open_ended deck."""
        _on_second_edition("check_in")
        assert [i["id"] for i in _questions(locale) if i.get("deck") not in DECKS] == []

    @locale_param
    def test_steps_on_every_guide(self, locale: str) -> None:
        """Every monthly guide has 4 to 6 short, one-line steps (its agenda)."""
        _on_second_edition("check_in")
        bad = []
        for i in _guides(locale):
            steps = i.get("steps")
            if not isinstance(steps, list) or not MIN_STEPS <= len(steps) <= MAX_STEPS:
                bad.append((i["id"], "count"))
                continue
            for n, step in enumerate(steps):
                if not isinstance(step, str) or not step.strip() or len(step) > MAX_STEP_LEN:
                    bad.append((i["id"], f"steps[{n}]"))
        assert bad == []

    @locale_param
    def test_guide_steps_follow_the_shape(self, locale: str) -> None:
        """Each guide's agenda runs: a warm start (thanks, what went well) first; a step where
        one listens and says back what they heard; "what would help you feel loved this
        month"; a small plan. (A time box may follow; it is not checked.)"""
        _on_second_edition("check_in")
        rules = _rules(locale)
        warm, listen, back, loved, plan = (
            rules.warm,
            rules.listen,
            rules.back,
            rules.loved,
            rules.plan,
        )
        bad = []
        for i in _guides(locale):
            steps: list[str] = i.get("steps", [])

            def first(pattern: re.Pattern[str], after: int, steps: list[str] = steps) -> int:
                return next(
                    (n for n, step in enumerate(steps) if n > after and pattern.search(step)), -1
                )

            heard = next(
                (n for n, st in enumerate(steps) if listen.search(st) and back.search(st)), -1
            )
            love = first(loved, heard)
            planned = first(plan, love)
            if not (steps and warm.search(steps[0]) and 0 < heard < love < planned):
                bad.append((i["id"], "order"))
        assert bad == []

    @locale_param
    def test_guides_are_not_copies(self, locale: str) -> None:
        """Each guide has its own angle: no step is repeated word for word in another guide."""
        _on_second_edition("check_in")
        seen: dict[str, str] = {}
        repeated = []
        for i in _guides(locale):
            for step in i.get("steps", []):
                key = " ".join(re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)*", step.lower()))
                if key in seen and seen[key] != i["id"]:
                    repeated.append((seen[key], i["id"], step))
                seen.setdefault(key, i["id"])
        assert repeated == []

    @second_edition_param
    def test_titles_unique(self, locale: str, kind: str) -> None:
        """No two items of a kind share a title (a lock screen tells them apart)."""
        counts = Counter(i["title"].casefold() for i in _items(locale, kind))
        assert [t for t, n in counts.items() if n > 1] == []


class TestSecondEditionCare:
    @second_edition_param
    def test_touch_is_offered_not_assumed(self, locale: str, kind: str) -> None:
        """An item with the physical_touch love language or the physical focus says, in one of
        the agreed phrases, to ask or notice what is welcome."""
        bad = [
            i["id"]
            for i in _items(locale, kind)
            if ("physical_touch" in i["love_languages"] or "physical" in i["focus"])
            and not _has_phrase(_all_text(i), _rules(locale).consent)
        ]
        assert bad == []

    @second_edition_param
    def test_hard_topics_have_an_exit(self, locale: str, kind: str) -> None:
        """A hard_topic item offers an out ("only if you both feel ready", "or pick another
        time", ...) and suggests a pause with a time to come back."""
        rules = _rules(locale)
        bad = []
        for i in _items(locale, kind):
            if i.get("hard_topic"):
                text = _all_text(i)
                if not _has_phrase(text, rules.out):
                    bad.append((i["id"], "out"))
                if not (rules.pause.search(text) and rules.come_back.search(text)):
                    bad.append((i["id"], "pause"))
        assert bad == []

    @second_edition_param
    def test_hard_wording_is_tagged(self, locale: str, kind: str) -> None:
        """Wording that invites a difficult talk ("something you've been hesitant to say", "now
        that things are calm", an argument...) only appears in hard_topic items."""
        bad = [
            (i["id"], found)
            for i in _items(locale, kind)
            if not i.get("hard_topic")
            and (found := _wording(_rules(locale).hard_wording, _all_text(i)))
        ]
        assert bad == []

    @second_edition_param
    def test_assumptions_are_tagged(self, locale: str, kind: str) -> None:
        """An item worded for a shared home, for walking or dancing, or for an evening without
        children carries the matching `assumes` tag."""
        bad = [
            (i["id"], tag, found)
            for i in _items(locale, kind)
            for tag, terms in _rules(locale).assumption_wording.items()
            if tag not in i.get("assumes", []) and (found := _wording(terms, _all_text(i)))
        ]
        assert bad == []

    @second_edition_param
    def test_only_apart_items_assume_distance(self, locale: str, kind: str) -> None:
        """Video calls, parcels and time zones belong to `apart` items only."""
        bad = [
            (i["id"], found)
            for i in _items(locale, kind)
            if i.get("setting") != "apart"
            and (found := _wording(_rules(locale).distance_wording, _all_text(i)))
        ]
        assert bad == []


class TestChildrenAreNotAssumed:
    @pytest.mark.parametrize("kind", SECOND_EDITION_KINDS)
    def test_children_come_with_an_if(self, kind: str) -> None:
        """An item that speaks of the couple's children says "if you have kids" (or similar):
        no tag says a couple has children, so every couple may get it."""
        bad = [
            (i["id"], found)
            for i in _items(REFERENCE_LOCALE, kind)
            if (found := _wording(CHILDREN_WORDING, _all_text(i)))
            and not _wording(CHILDREN_HEDGES, _all_text(i))
        ]
        assert bad == []


def _uk_forms() -> tuple[str, ...]:
    """The UK forms of the en-GB variant table that are not also ordinary US words."""
    table: dict[str, str] = tomllib.loads(
        (CATALOG_DIR / REFERENCE_LOCALE / VARIANTS_FILE).read_text(encoding="utf-8")
    )["en-GB"]
    shared = {"holiday", "holidays", "flat", "flats"}  # good US words in other senses
    return tuple(sorted(set(table.values()) - shared))


UK_FORMS = _uk_forms()

# US words and phrases with a different UK word. The source may use one only when the en-GB
# table lists it (else en-GB readers get "pajamas" and "thrift store"); where the UK word
# depends on the sense or the sentence (mail/post, store/shop, a ride/a lift, "the holidays"),
# the catalog words it so both read naturally and the word stays out of the source.
US_WORDS = _terms(
    """
    backyard, yard, bookstore, bookstores, campground, candy, checkout line, closet, cookie,
    cookies, couch, couches, diaper, diapers, drugstore, faucet, flashlight, gas station,
    go to the movies, grocery store, hooky, litter box, mail, mailed, mailing, mailbox,
    mini golf, movie theater, movie theaters, pajamas, pantry, parking garage, parking lot,
    root for, schoolyard, sidewalk, soccer, sweater, sweaters, the holidays, thrift store,
    thrift stores, trash, trivia night, windshield, zipper, enroll, colored, watercolor,
    watercolors, stroller, store, stores, community college, community colleges
    """
)


class TestSpelling:
    def test_uk_forms_known(self) -> None:
        """The list the spelling test uses comes from the variant table."""
        assert {"favourite", "colour", "counsellor", "takeaway", "centre", "cosy"} <= set(UK_FORMS)

    @pytest.mark.parametrize("kind", SECOND_EDITION_KINDS)
    def test_source_is_us_english(self, kind: str) -> None:
        """The source locale uses US forms only; UK forms come from the variant table."""
        hits = [
            (i["id"], form)
            for i in _items(REFERENCE_LOCALE, kind)
            for form in _wording(UK_FORMS, _all_text(i))
        ]
        assert hits == []

    @pytest.mark.parametrize("kind", SECOND_EDITION_KINDS)
    def test_us_words_have_a_uk_form(self, kind: str) -> None:
        """Through the en-GB table no US-only word is left: each is listed there or not used."""
        gb = parse_variants(
            tomllib.loads((CATALOG_DIR / REFERENCE_LOCALE / VARIANTS_FILE).read_text("utf-8"))
        )["en-GB"]
        hits = [
            (i["id"], word)
            for i in _items(REFERENCE_LOCALE, kind)
            for word in _wording(US_WORDS, gb.apply(_all_text(i)))
        ]
        assert hits == [], "add the UK form to variants.toml, or reword"

    @pytest.mark.parametrize("locale", OTHER_LOCALES)
    def test_no_misspellings(self, locale: str) -> None:
        """A translation is free of its language's known misspellings (for German: the old
        orthography, umlauts written out, a capitalised du or ihr, straight quotes)."""
        hits = [
            (i["id"], name, match.group())
            for i in _all_items(locale)
            for name, pattern in _rules(locale).misspelling.items()
            for match in [pattern.search(_all_text(i))]
            if match
        ]
        assert hits == []

    def test_german_misspellings_known(self) -> None:
        """The German checks catch what they are for and leave sentence starts alone."""
        rules = LOCALE_RULES["de"].misspelling
        assert rules["old spelling"].search("Schön, daß es dich gibt")
        assert rules["capitalised du"].search("Sag, wie Du dich fühlst")
        assert not rules["capitalised du"].search("Du bist dran. Ihr beide entscheidet.")
        assert rules["formal address"].search("Frag, ob Sie mögen")
        assert not rules["formal address"].search("Sie ist schön, die Karte.")
        assert rules["straight quotes"].search('Sag "danke"')


class TestSecondEditionCoverage:
    @second_edition_param
    def test_minimum_items(self, locale: str, kind: str) -> None:
        """Enough items for a year of a busy rhythm (see catalog/README.md)."""
        assert len(_items(locale, kind)) >= MIN_ITEMS_SECOND_EDITION[kind]

    @locale_param
    @pytest.mark.parametrize("check_in_format", sorted(MIN_CHECK_IN_SECOND_EDITION))
    def test_check_in_formats(self, locale: str, check_in_format: str) -> None:
        """At least 52 monthly guides and 123 questions of the day."""
        _on_second_edition("check_in")
        count = sum(i["format"] == check_in_format for i in _items(locale, "check_in"))
        assert count >= MIN_CHECK_IN_SECOND_EDITION[check_in_format]

    @locale_param
    def test_love_map_questions(self, locale: str) -> None:
        """At least 42 questions are about the partner's inner world (the love_map deck)."""
        _on_second_edition("check_in")
        count = sum(i.get("deck") == "love_map" for i in _questions(locale))
        assert count >= MIN_LOVE_MAP_QUESTIONS

    @locale_param
    @pytest.mark.parametrize("language", sorted(LOVE_LANGUAGES))
    def test_appreciation_per_love_language(self, locale: str, language: str) -> None:
        """Each love language is served by at least 37 appreciation items."""
        _on_second_edition("appreciation")
        count = sum(language in i["love_languages"] for i in _items(locale, "appreciation"))
        assert count >= MIN_APPRECIATION_PER_LOVE_LANGUAGE_SECOND_EDITION

    @second_edition_param
    @pytest.mark.parametrize("focus", sorted(FOCUS_AREAS))
    def test_items_per_focus_area(self, locale: str, kind: str, focus: str) -> None:
        """Each focus area a kind serves is tagged on at least 6 of its items."""
        assert sum(focus in i["focus"] for i in _items(locale, kind)) >= MIN_PER_FOCUS_AREA_PER_KIND


NEAR_DUPLICATE_THRESHOLD = 72.0

# Function words, and words every item of a format repeats ("question", "month", "check"),
# say nothing about an item's idea; without them the score measures the idea's own words.
_FILLER = frozenset(
    _terms(
        """
        a, an, the, and, or, but, of, to, in, on, at, for, with, by, from, as, is, are, be,
        been, it, its, this, that, these, those, you, your, yours, we, our, us, they, them,
        their, i, me, my, each, other, both, either, what, which, who, how, when, where, why,
        if, then, than, so, do, does, did, can, could, would, will, just, some, any, all,
        about, into, up, out, over, there, here, not, no, it's, what's, you're, you've, i'd,
        i'm, don't, haven't, were, was, check, month, monthly, theme, only, ready, another,
        pick, suits
        """
    )
)
NEAR_DUPLICATE_THRESHOLD = 72.0


LOCALE_RULES["en"] = LocaleRules(
    consent=CONSENT_PHRASES,
    out=OUT_PHRASES,
    pause=PAUSE_PATTERN,
    come_back=COME_BACK_PATTERN,
    hard_wording=HARD_TOPIC_WORDING,
    assumption_wording=ASSUMPTION_WORDING,
    distance_wording=DISTANCE_WORDING,
    banned=BANNED_GROUPS,
    warm=_any_case(r"\b(thank\w*|grateful|went well|appreciat\w*)\b"),
    listen=_any_case(r"\blisten"),
    back=_any_case(r"\bback\b|own words"),
    loved=_any_case(r"feel loved"),
    plan=_any_case(r"\b(plan|agree|choose|pick|decide|settle on)\b"),
    filler=_FILLER,
    misspelling={},  # US spelling has its own test (TestSpelling), from the variant table
)

# German: du for each of you, ihr/euch for both, never the formal Sie; no gendered words for the
# partner (the name, "ihr beide", "die andere Person").
LOCALE_RULES["de"] = LocaleRules(
    consent=(
        "wenn es willkommen ist",
        "falls es willkommen ist",
        "was gerade willkommen ist",
        "frag vorher",
        "frag, ob",
        "frag kurz, ob",
        "fragt einander vorher",
        "wenn ihr beide mögt",
        "wenn es sich für euch beide gut anfühlt",
    ),
    out=(
        "nur wenn ihr euch beide bereit fühlt",
        "wenn ihr euch beide bereit fühlt",
        "oder sucht euch einen anderen zeitpunkt",
        "oder wählt einen anderen zeitpunkt",
        "einen anderen zeitpunkt, der euch beiden passt",
    ),
    pause=_any_case(r"\bpause\b|\bpausiert\b"),
    come_back=_any_case(r"\bzurück(zu)?komm\w*|\bkommt\b[^.;]*\bzurück\b|\bwieder auf(zu)?greif"),
    hard_wording=_terms(
        """
        zögerst zu sagen, schwer fällt zu sagen, jetzt wo es ruhig ist, wo es gerade ruhig ist,
        vor dir herschiebst, vor euch herschiebt, schwieriges gespräch, schwierige gespräch,
        schweres gespräch, heikles thema, heikle thema, angespannter moment, streit, streits,
        streiten, streitet, gestritten, krach, groll, verletzend, ungelöst, ungeklärt,
        wunder punkt, wunden punkt, vorwurf, vorwürfe
        """
    ),
    assumption_wording={
        "living_together": _terms(
            """
            spiegel, kühlschrank, kopfkissen, hausarbeit, hausarbeiten, haushalt, wäsche,
            abwasch, spülmaschine, nach hause kommt, nach hause kommst, heimkommt, heimkommst
            """
        ),
        "mobility": _terms(
            """
            spazieren, spaziergang, spaziergänge, wandern, wanderung, wanderungen, radtour,
            fahrrad, fahrräder, radfahren, tanzen, tanzt, tanz, tanzkurs, klettern, kletterhalle,
            bouldern, joggen, rennen, schwimmen
            """
        ),
        "no_children_home": _terms("kinder schlafen, babysitter, babysitterin, kinderfrei"),
    },
    distance_wording=_terms(
        """
        videoanruf, videoanrufe, videotelefonat, videocall, fernbeziehung, zeitzone, zeitzonen,
        zeitverschiebung, paket, päckchen, kilometer entfernt
        """
    ),
    banned={
        "sexual": _terms(
            """
            sex, sexy, sexuell, sexuelle, sexualität, sexting, bett, schlafzimmer, nackt,
            dessous, reizwäsche, unterwäsche, erotik, erotisch, erotische, geil, orgasmus,
            vorspiel, verführen, verführung, verführerisch, sinnlich, sinnliche, lustvoll,
            begierde, porno, knutschen, rummachen, liebe machen, miteinander schlafen,
            striptease, libido, erregt, erregung, erregend, scharf auf, heiß auf
            """
        ),
        "clinical": _terms(
            """
            diagnose, diagnostizieren, diagnostiziert, störung, toxisch, toxische, narzisst,
            narzisstisch, gaslighting, co-abhängig, co-abhängigkeit, pathologisch, psychopath,
            soziopath, dysfunktional, missbräuchlich, trauma, traumatisch, therapie, therapeut,
            therapeutin, therapeutisch, behandlung, heilung, symptom, symptome, klinisch,
            bindungsstil, bindungstyp, warnsignal, red flag
            """
        ),
        "guilt": _terms(
            """
            du nie, du immer, hättest du, du hättest, immer vergisst, vergessen hast,
            warum hast du nicht, warum machst du nicht, deine schuld, schuld, schuldig,
            schuldgefühl, schuldgefühle, schäm dich, wie immer, endlich mal, enttäuscht von
            """
        ),
        "pressure": _terms(
            """
            drängen, drängeln, bedrängen, nerven, nörgeln, hinterherlaufen, bestehst darauf,
            verlangen, einfordern, zwingen, zwingt, sorg dafür, lass nicht locker,
            immer wieder fragen, bis er, bis sie, kein nein
            """
        ),
        # German pronouns follow grammatical gender ("die andere Person ... sie", "der Plan ...
        # er"), so they are not listed; the partner is named, "die andere Person" or "ihr beide".
        "gendered": _terms(
            """
            mann, frau, ehemann, ehefrau, freundin, partnerin, dein partner, deinen partner,
            deinem partner, deines partners, dein freund, deinen freund, deinem freund,
            deine freundin, deiner freundin
            """
        ),
    },
    warm=_any_case(r"dank|gut gelaufen|gut lief|gelungen|schön war|wertschätz"),
    listen=_any_case(r"\bzu(zu)?hör|\bhör\w*\b[^.;,]*\bzu\b"),
    back=_any_case(r"eigenen worten|zurück|wiederhol|zusammenfass|fasst\b[^.;]*\bzusammen"),
    loved=_any_case(r"geliebt"),
    plan=_any_case(
        r"\b(plan\w*|vereinbar\w*|einig\w*|wählt|sucht euch|entscheid\w*|beschließt|"
        r"nehmt euch|abmach\w*|verabrede\w*|legt\b[^.;]*\bfest)"
    ),
    filler=frozenset(
        _terms(
            """
            der, die, das, den, dem, des, ein, eine, einen, einem, einer, eines, und, oder, aber,
            zu, zum, zur, in, im, ins, an, am, auf, für, mit, von, vom, bei, beim, aus, als, ist,
            sind, sein, war, es, du, dich, dir, dein, deine, deinen, deinem, deiner, ihr, euch,
            euer, eure, euren, eurem, eurer, wir, uns, unser, unsere, was, wie, wann, wo, warum,
            wer, welche, welcher, welches, wenn, ob, dann, so, da, dass, nur, auch, noch, schon,
            mal, nicht, kein, keine, jeder, jede, jedes, beide, beiden, andere, anderen, heute,
            kann, könnt, könntest, könntet, würde, würdest, würdet, wäre, wären, hättest,
            hättet, hat, habt, hast, etwas, ganz, sich, einander, check, monat,
            monats, thema, bereit, fühlt, sucht, zeitpunkt, passt
            """
        )
    ),
    misspelling={
        # Spelling before the 1996 reform, and umlauts written out.
        "old spelling": _any_case(
            r"\b(daß|muß|mußt|läßt|laß|kuß|schluß|bißchen|gewiß|eßt|ißt|wußte)\b"
        ),
        "umlaut written out": _any_case(
            r"\b(fuer|ueber|schoen|koennt|moechte|fuehlt|hoert|waehlt|gruesse)\b"
        ),
        # Modern app copy writes du, dich, dein and ihr, euch, euer in lower case; a capital Sie,
        # Ihnen or Ihre inside a sentence is the formal address.
        "capitalised du": re.compile(
            r"(?<=[a-zäöüß,;] )(Du|Dich|Dir|Dein\w*|Ihr|Euch|Euer|Eur\w+)\b"
        ),
        "formal address": re.compile(r"(?<=[a-zäöüß,;] )(Sie|Ihnen|Ihre\w*)\b|\bIhnen\b"),
        "straight quotes": re.compile(r'"'),
    },
)

# Spanish: tú throughout, never usted; neutral for Spain and Latin America, so no vosotros
# and no ustedes (the plural is "los dos", "juntos", "con tu pareja" or the name).
LOCALE_RULES["es"] = LocaleRules(
    consent=(
        "si le apetece",
        "si apetece",
        "si le parece bien",
        "pregúntale antes",
        "pregunta antes",
        "pregúntale si",
        "lo que le resulte cómodo",
    ),
    out=(
        "solo si es buen momento para los dos",
        "si es buen momento para los dos",
        "o propón otro momento",
        "otro momento que vaya bien a los dos",
    ),
    pause=_any_case(r"\bpausa\b"),
    come_back=_any_case(r"\bretom\w*|\bvolver a\b"),
    hard_wording=_terms(
        """
        te cuesta decir, te ha costado decir, has evitado, has ido posponiendo,
        ahora que las cosas están tranquilas, conversación difícil, conversaciones difíciles,
        charla difícil, momento tenso, discusión, discusiones, discutir, discutido, pelea,
        peleas, pelear, rencor, resentimiento, hiriente, sin resolver, punto sensible,
        tema delicado, agravio, reproche, reproches
        """
    ),
    assumption_wording={
        "living_together": _terms(
            """
            espejo, nevera, refrigerador, heladera, almohada, tarea doméstica,
            tareas domésticas, tareas de casa, tareas de la casa, colada, ropa sucia,
            los platos, fregar, llega a casa, llegar a casa, vuelve a casa, volver a casa
            """
        ),
        "mobility": _terms(
            """
            caminar, camina, caminata, caminando, pasear, paseo, paseos, paseando,
            senderismo, bici, bicis, bicicleta, pedalear, pedalea, bailar, baila, baile,
            bailes, bailando, escalar, escalada, correr, nadar, natación
            """
        ),
        "no_children_home": _terms(
            "cuando los niños duerman, los niños ya duermen, canguro, niñera, sin niños"
        ),
    },
    distance_wording=_terms(
        "videollamada, videollamadas, a distancia, diferencia horaria, huso horario, paquete"
    ),
    banned={
        "sexual": _terms(
            """
            sexo, sexual, sexuales, sexualidad, sexy, erótico, erótica, erotismo, sensual,
            sensualidad, desnudo, desnuda, desnudos, desnudarse, lencería, ropa interior,
            cama, dormitorio, excitación, excitar, excitante, orgasmo, seducir, seducción,
            seductor, seductora, lujuria, morbo, porno, pornografía, hacer el amor,
            acostarse con, provocativo, provocativa
            """
        ),
        "clinical": _terms(
            """
            diagnóstico, diagnosticar, trastorno, tóxico, tóxica, narcisista, narcisismo,
            luz de gas, codependencia, codependiente, patológico, patológica, psicópata,
            sociópata, disfuncional, abusivo, abusiva, maltrato, trauma, traumático,
            traumática, terapia, terapeuta, terapéutico, tratamiento, cura, síntoma,
            síntomas, clínico, clínica, evitativo, evitativa, estilo de apego, bandera roja,
            red flag
            """
        ),
        "guilt": _terms(
            """
            nunca haces, siempre haces, deberías haber, siempre se te olvida, se te olvidó,
            por qué no, tu culpa, culpa, culpable, como siempre, por una vez, decepcionado,
            decepcionada, qué vergüenza
            """
        ),
        "pressure": _terms(
            """
            perseguir, persigue, insistir, insiste, presionar, presiona, exigir, exige,
            obligar, obliga, asegúrate de que, no aceptes un no, dar la lata
            """
        ),
        "gendered": _terms(
            """
            él, ella, novio, novia, esposo, esposa, marido, mujer, hombre, chico, chica,
            querido, querida, cansado, cansada, enfadado, enfadada, preocupado, preocupada
            """
        ),
        "address": _terms(
            "usted, ustedes, vosotros, vosotras, os, vuestro, vuestra, vuestros, vuestras"
        ),
    },
    warm=_any_case(r"\b(gracias|agradec\w*|salió bien|ha ido bien|fue bien)\b"),
    listen=_any_case(r"\bescuch"),
    back=_any_case(r"\brepite\b|con sus (propias )?palabras"),
    loved=_any_case(r"sentir que (me|te) quieren"),
    plan=_any_case(
        r"\b(plan\w*|acuerd\w*|acordar|elig\w*|elij\w*|elegir|decid\w*|escog\w*|propón)\b"
    ),
    filler=frozenset(
        _terms(
            """
            a, al, ante, con, de, del, desde, en, entre, hacia, hasta, para, por, sin, sobre,
            tras, el, la, los, las, lo, le, les, se, un, una, unos, unas, y, e, o, u, ni, que,
            qué, quien, quién, cual, cuál, como, cómo, cuando, cuándo, donde, dónde, porque,
            es, son, ser, está, están, fue, ha, has, hay, te, tu, tus, tú, ti, mi, mis, me,
            su, sus, ya, muy, más, también, no, si, sí, cada, uno, otro, otra, dos, este,
            esta, ese, esa, eso, esto, algo, todo, pareja, juntos, charla, mes, mensual,
            tema, solo, buen, momento, propón, vaya, bien
            """
        )
    ),
    misspelling={},
    paired_punctuation=(("¿", "?"), ("¡", "!")),
)


def _rules(locale: str) -> LocaleRules:
    assert locale in LOCALE_RULES, f"{locale}: add its phrase tables to LOCALE_RULES"
    return LOCALE_RULES[locale]


def _idea_words(text: str, locale: str = REFERENCE_LOCALE) -> str:
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.sub(r"\{\w+\}", " ", text.lower()))
    filler = _rules(locale).filler
    return " ".join(w for w in words if w not in filler)


def _similarity(a: Item, b: Item, locale: str = REFERENCE_LOCALE) -> float:
    """rapidfuzz's token_set_ratio of the two items' title + body, filler words removed."""
    return float(
        fuzz.token_set_ratio(
            _idea_words(f"{a['title']} {a['body']}", locale),
            _idea_words(f"{b['title']} {b['body']}", locale),
            processor=None,
        )
    )


def _closest_pairs(
    items: list[Item], locale: str = REFERENCE_LOCALE
) -> list[tuple[float, str, str]]:
    pairs = [
        (_similarity(a, b, locale), a["id"], b["id"])
        for n, a in enumerate(items)
        for b in items[n + 1 :]
    ]
    return sorted(pairs, key=lambda p: (-p[0], p[1], p[2]))


class TestNearDuplicates:
    """No two items of a kind say the same thing in other words.

    The score is rapidfuzz's token_set_ratio over title + body, after dropping function words
    and the words every item of a format repeats ("check-in theme", the exit phrase). It
    compares the words two texts share with the rest of each, so a rewording that keeps the
    idea's words scores high and two ideas that only share a frame score lower.

    The threshold, 72, comes from the data. On the first-edition catalog the closest pairs of
    different ideas scored 68.7 (ap-morning-drink / ap-slow-morning-moment) and 65.9
    (dn-virtual-tour / dn-online-game-night), while its real repeat, ci-q-grateful-today /
    ci-q-small-win ("one thing you're grateful for today" / "one small thing that went well
    today"), scored 74.7; a hug item reworded ("lasts a few seconds longer than usual") scores
    83.1 against the original. Drafting this edition it caught ci-q-hope-and-fear /
    ci-q-hope-for-us (74.3) and three pairs that shared a subject word in very short texts.
    What a word score cannot see is the same idea in new words: four different hugs score
    42-53 against each other, below unrelated pairs. That stays the editor's job, helped by
    the ten closest pairs this test prints for every kind (pytest -s or on failure).
    """

    def test_detector_catches_a_reworded_item(self) -> None:
        """The score flags a reworded idea and passes two ideas that share a subject."""
        hug = {
            "title": "A long, warm hug",
            "body": "Give {receiver} a proper hug today, the "
            "kind that lasts a few breaths longer than usual.",
        }
        reworded = {
            "title": "Hug them a little longer",
            "body": "Give {receiver} a hug today that lasts a few seconds longer than usual.",
        }
        other = {
            "title": "Open arms after a long day",
            "body": "If {receiver} comes home tired, "
            "open your arms for a hug before asking how the day went.",
        }
        assert _similarity(hug, reworded) > NEAR_DUPLICATE_THRESHOLD
        assert _similarity(hug, other) < NEAR_DUPLICATE_THRESHOLD

    def test_detector_works_in_spanish(self) -> None:
        """The same check with Spanish fillers: a reworded hug is caught, another idea is not."""
        hug = {
            "title": "Un abrazo largo y cálido",
            "body": "Dale a {receiver} un abrazo de verdad hoy, de los que duran unas "
            "respiraciones más de lo normal, si le apetece.",
        }
        reworded = {
            "title": "Un abrazo un poco más largo",
            "body": "Dale hoy a {receiver} un abrazo que dure unos segundos más de lo normal, "
            "si le apetece.",
        }
        other = {
            "title": "Brazos abiertos tras un día largo",
            "body": "Si {receiver} llega con el día a cuestas, abre los brazos antes de "
            "preguntar qué tal le ha ido, si le apetece.",
        }
        assert _similarity(hug, reworded, "es") > NEAR_DUPLICATE_THRESHOLD
        assert _similarity(hug, other, "es") < NEAR_DUPLICATE_THRESHOLD

    @locale_kind_param
    def test_no_near_duplicates(self, locale: str, kind: str) -> None:
        """No pair of items of a kind scores above the threshold (enforced for kinds on the
        second edition; the ten closest pairs are printed for every kind)."""
        pairs = _closest_pairs(_items(locale, kind), locale)
        print(f"\n{locale} {kind}: closest pairs (threshold {NEAR_DUPLICATE_THRESHOLD})")
        for score, a, b in pairs[:10]:
            print(f"  {score:5.1f}  {a}  {b}")
        if kind in KINDS_ON_SECOND_EDITION:
            assert [p for p in pairs if p[0] > NEAR_DUPLICATE_THRESHOLD] == []
