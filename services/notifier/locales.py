"""Which language serves a partner's locale, its interface strings, and its dates. No I/O
beyond reading the packaged files once.

A locale falls back along its chain, `de-AT -> de -> en`: the first folder of
templates/<folder>/ with a strings.toml serves it. The email templates are shared: a folder
may hold its own copy of a template, else the English one is used (only strings differ).
A regional locale without a folder of its own (en-GB) gets its language's strings through the
catalog's variant table (catalog/<language>/variants.toml), the same one source as the items.
Dates and times are formatted by Babel (CLDR) for the partner's locale.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Mapping
from datetime import datetime
from importlib import resources
from typing import Any, Final
from zoneinfo import ZoneInfo

import babel
import babel.dates

from couples_nudge.notifier.catalog import DEFAULT_LOCALE, load_catalog
from couples_nudge.notifier.variants import Variants

__all__ = [
    "chain",
    "folder_for",
    "format_when",
    "html_lang",
    "strings_for",
    "template_for",
    "text_languages",
]


def _root() -> Any:
    return resources.files("couples_nudge.notifier") / "templates"


def chain(locale: str) -> tuple[str, ...]:
    """The folders to try for `locale`, most specific first: de-AT, de, en."""
    language = locale.split("-")[0]
    tried = [locale, language, DEFAULT_LOCALE]
    return tuple(dict.fromkeys(tried))


@functools.cache
def folder_for(locale: str) -> str:
    """The templates folder whose strings serve `locale`."""
    for candidate in chain(locale):
        if (_root() / candidate / "strings.toml").is_file():
            return candidate
    return DEFAULT_LOCALE


@functools.cache
def text_languages() -> tuple[str, ...]:
    """Every folder with interface strings: the languages emails can be written in."""
    return tuple(
        sorted(f.name for f in _root().iterdir() if f.is_dir() and (f / "strings.toml").is_file())
    )


def _varied(value: object, variants: Variants) -> object:
    if isinstance(value, str):
        return variants.apply(value)
    if isinstance(value, Mapping):
        return {k: _varied(v, variants) for k, v in value.items()}
    return value


@functools.cache
def strings_for(locale: str) -> Mapping[str, Any]:
    """The interface strings for `locale` (en-GB: English through the variant table)."""
    folder = folder_for(locale)
    strings: dict[str, Any] = tomllib.loads((_root() / folder / "strings.toml").read_text("utf-8"))
    variants = load_catalog().variants(locale) if folder != locale else None
    if variants is not None:
        varied = _varied(strings, variants)
        assert isinstance(varied, dict)
        return varied
    return strings


@functools.cache
def template_for(locale: str, name: str) -> str:
    """The template path for `locale`: its folder's own copy, else the shared English one."""
    folder = folder_for(locale)
    if (_root() / folder / name).is_file():
        return f"{folder}/{name}"
    return f"{DEFAULT_LOCALE}/{name}"


@functools.cache
def html_lang(locale: str) -> str:
    """The `lang` of a page: the partner's locale when its language serves it, else the
    fallback folder's (an unknown xx-YY reads English, so it is marked en)."""
    folder = folder_for(locale)
    return locale if locale.split("-")[0] == folder.split("-")[0] else folder


_NO_LOCALE: Final = babel.Locale.parse(DEFAULT_LOCALE)


@functools.cache
def _babel_locale(locale: str) -> babel.Locale:
    for candidate in (html_lang(locale), folder_for(locale)):
        try:
            return babel.Locale.parse(candidate, sep="-")
        except (babel.UnknownLocaleError, ValueError):
            continue
    return _NO_LOCALE


@functools.lru_cache(maxsize=4096)
def format_when(when: datetime, timezone: str, locale: str, pattern: str) -> str:
    """`when` in the partner's zone and language: `pattern` fills {date} (the full date) and
    {time} (short time), e.g. "Friday, 11 December 2026 at 19:00" for en-GB. Cached: the
    couples of one busy instant share a handful of (zone, locale) pairs (~40 us uncached)."""
    try:
        local = when.astimezone(ZoneInfo(timezone))
    except (OverflowError, ValueError):  # within hours of year 9999 (a snooze "for ever")
        local = when
    language = _babel_locale(locale)
    text = pattern.format(
        date=babel.dates.format_date(local.date(), "full", locale=language),
        time=babel.dates.format_time(local.time(), "short", locale=language),
    )
    # CLDR's narrow no-break space ("7:00 PM") as a plain no-break space: same rendering, and
    # an English email stays a one-byte-per-character string (~30 us less per message).
    return text.replace("\u202f", "\u00a0")
