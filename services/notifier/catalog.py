"""The content catalog: TOML files under catalog/<locale>/, loaded once. See catalog/README.md.

A locale without a folder of its own is served from its language's folder; when that folder's
variants.toml has a table for the locale (en-GB), the items' texts go through it once, on the
first request for that locale (services/notifier/variants.py).
"""

from __future__ import annotations

import dataclasses
import functools
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Final, Literal, TypeVar, get_args

from couples_nudge.notifier.variants import Variants, parse_variants
from couples_nudge_schemas import CheckInFormat, FocusArea, LoveLanguage, NudgeKind

__all__ = [
    "DEFAULT_LOCALE",
    "Assumption",
    "Catalog",
    "CheckInFormat",
    "Cost",
    "Deck",
    "Effort",
    "Item",
    "Setting",
    "load_catalog",
]

DEFAULT_LOCALE: Final = "en"
_FILES: Final[tuple[NudgeKind, ...]] = ("date_night", "check_in", "appreciation")
_VARIANTS_FILE: Final = "variants.toml"

Cost = Literal["free", "low", "paid"]
Setting = Literal["home", "out", "apart", "any"]
Effort = Literal["small", "medium", "big"]
Assumption = Literal["living_together", "mobility", "no_children_home"]
Deck = Literal["love_map", "open_ended"]


@dataclass(frozen=True, slots=True)
class Item:
    """One catalog item. The second edition's fields (cost onwards) are explicit in every
    catalog file; the defaults serve items built in code and say "assumes nothing"."""

    id: str
    kind: NudgeKind
    title: str
    body: str
    detail: str
    focus: frozenset[FocusArea]
    love_languages: frozenset[LoveLanguage]
    format: CheckInFormat | None = None
    cost: Cost = "free"
    free_variant: str | None = None  # on paid items: a free item of the same kind
    setting: Setting = "any"
    effort: Effort = "small"
    assumes: frozenset[Assumption] = frozenset()
    deck: Deck | None = None  # check-in questions only
    hard_topic: bool = False
    steps: tuple[str, ...] = ()  # monthly guides only: the agenda, in order


# English locales that write as British English does (colour, favourite, the cinema, a torch):
# served by the en-GB table, where they have none of their own. Canadian English mixes both
# spellings (colour, but also program and pajamas) and keeps the catalog's US English.
SPELLS_AS: Final[Mapping[str, str]] = {
    "en-AU": "en-GB",
    "en-NZ": "en-GB",
    "en-IE": "en-GB",
    "en-ZA": "en-GB",
    "en-IN": "en-GB",
}


class Catalog:
    def __init__(
        self,
        items_by_locale: dict[str, tuple[Item, ...]],
        variants: Mapping[str, Variants] | None = None,
    ) -> None:
        self._items = items_by_locale
        self._variants = variants or {}  # by locale tag, e.g. "en-GB"
        self._pools: dict[tuple[NudgeKind, str], tuple[Item, ...]] = {}  # items() per nudge
        self._by_id: dict[tuple[NudgeKind, str], dict[str, Item]] = {}

    @property
    def locales(self) -> frozenset[str]:
        return frozenset(self._items)

    def items(self, kind: NudgeKind, locale: str = DEFAULT_LOCALE) -> tuple[Item, ...]:
        pool = self._pools.get((kind, locale))
        if pool is None:
            pool = self._pools[kind, locale] = self._select(kind, locale)
        return pool

    def own_items(self, kind: NudgeKind, locale: str) -> tuple[Item, ...]:
        """The items of a locale's own folder only (no fallback): for coverage reports."""
        return tuple(i for i in self._items.get(locale, ()) if i.kind == kind)

    def variants(self, locale: str) -> Variants | None:
        """The variant table that derives `locale` from its language (en-GB), if any; a
        locale that spells as another does (`SPELLS_AS`) gets that one's."""
        return self._variants.get(locale) or self._variants.get(SPELLS_AS.get(locale, ""))

    def localized(self, item: Item, locale: str) -> Item:
        """The same item (same id) in `locale`; the item itself where the locale lacks it.

        Choice runs on the default locale's items, so both partners of a shared nudge get the
        same item whatever their languages; each reads it in their own."""
        key = (item.kind, locale)
        by_id = self._by_id.get(key)
        if by_id is None:
            by_id = self._by_id[key] = {i.id: i for i in self.items(item.kind, locale)}
        return by_id.get(item.id, item)

    def _select(self, kind: NudgeKind, locale: str) -> tuple[Item, ...]:
        own = self._items.get(locale)
        chosen = own or self._items.get(locale.split("-")[0])
        pool = chosen if chosen is not None else self._items[DEFAULT_LOCALE]
        items = tuple(item for item in pool if item.kind == kind)
        variants = self.variants(locale) if own is None else None
        return tuple(_varied(i, variants) for i in items) if variants else items


def _varied(item: Item, variants: Variants) -> Item:
    return dataclasses.replace(
        item,
        title=variants.apply(item.title),
        body=variants.apply(item.body),
        detail=variants.apply(item.detail),
        steps=tuple(variants.apply(step) for step in item.steps),
    )


_T = TypeVar("_T", bound=str)

_FORMATS: Final[tuple[CheckInFormat, ...]] = get_args(CheckInFormat)
_COSTS: Final[tuple[Cost, ...]] = get_args(Cost)
_SETTINGS: Final[tuple[Setting, ...]] = get_args(Setting)
_EFFORTS: Final[tuple[Effort, ...]] = get_args(Effort)
_ASSUMPTIONS: Final[tuple[Assumption, ...]] = get_args(Assumption)
_DECKS: Final[tuple[Deck, ...]] = get_args(Deck)


def _known(item_id: object, key: str, value: object, allowed: tuple[_T, ...]) -> _T:
    for option in allowed:
        if value == option:
            return option
    raise ValueError(f"catalog item {item_id}: {key} = {value!r} is not one of {allowed}")


def _item(raw: dict[str, object]) -> Item:
    item_id = raw["id"]

    def strings(key: str) -> frozenset[str]:
        value = raw.get(key, [])
        assert isinstance(value, list)
        return frozenset(str(v) for v in value)

    def one(key: str, allowed: tuple[_T, ...], default: _T) -> _T:
        return _known(item_id, key, raw.get(key, default), allowed)

    def optional(key: str, allowed: tuple[_T, ...]) -> _T | None:
        return _known(item_id, key, raw[key], allowed) if key in raw else None

    steps = raw.get("steps", [])
    assert isinstance(steps, list)
    free_variant = raw.get("free_variant")
    return Item(
        id=str(item_id),
        kind=raw["kind"],  # type: ignore[arg-type]  # checked by tests/unit/test_catalog_data.py
        title=str(raw["title"]),
        body=str(raw["body"]),
        detail=str(raw.get("detail", "")),
        focus=strings("focus"),  # type: ignore[arg-type]
        love_languages=strings("love_languages"),  # type: ignore[arg-type]
        format=optional("format", _FORMATS),
        cost=one("cost", _COSTS, "free"),
        free_variant=str(free_variant) if free_variant is not None else None,
        setting=one("setting", _SETTINGS, "any"),
        effort=one("effort", _EFFORTS, "small"),
        assumes=frozenset(_known(item_id, "assumes", a, _ASSUMPTIONS) for a in strings("assumes")),
        deck=optional("deck", _DECKS),
        hard_topic=raw.get("hard_topic") is True,
        steps=tuple(str(step) for step in steps),
    )


@functools.cache
def load_catalog() -> Catalog:
    root = resources.files("couples_nudge.notifier") / "catalog"
    by_locale: dict[str, tuple[Item, ...]] = {}
    variants: dict[str, Variants] = {}
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name.startswith(("_", ".")):
            continue
        items: list[Item] = []
        for kind in _FILES:
            path = folder / f"{kind}.toml"
            if path.is_file():
                items += [_item(raw) for raw in tomllib.loads(path.read_text("utf-8"))["item"]]
        by_locale[folder.name] = tuple(items)
        table = folder / _VARIANTS_FILE
        if table.is_file():
            variants |= parse_variants(tomllib.loads(table.read_text("utf-8")))
    return Catalog(by_locale, variants)
