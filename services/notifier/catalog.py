"""The content catalog: TOML files under catalog/<locale>/, loaded once. See catalog/README.md."""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Final

from schemas import FocusArea, LoveLanguage, NudgeKind

__all__ = ["DEFAULT_LOCALE", "Catalog", "Item", "load_catalog"]

DEFAULT_LOCALE: Final = "en"
_FILES: Final[tuple[NudgeKind, ...]] = ("date_night", "check_in", "appreciation")


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    kind: NudgeKind
    title: str
    body: str
    detail: str
    focus: frozenset[FocusArea]
    love_languages: frozenset[LoveLanguage]
    format: str | None = None


class Catalog:
    def __init__(self, items_by_locale: dict[str, tuple[Item, ...]]) -> None:
        self._items = items_by_locale
        self._pools: dict[tuple[NudgeKind, str], tuple[Item, ...]] = {}  # items() per nudge

    @property
    def locales(self) -> frozenset[str]:
        return frozenset(self._items)

    def items(self, kind: NudgeKind, locale: str = DEFAULT_LOCALE) -> tuple[Item, ...]:
        pool = self._pools.get((kind, locale))
        if pool is None:
            pool = self._pools[kind, locale] = self._select(kind, locale)
        return pool

    def _select(self, kind: NudgeKind, locale: str) -> tuple[Item, ...]:
        chosen = self._items.get(locale) or self._items.get(locale.split("-")[0])
        pool = chosen if chosen is not None else self._items[DEFAULT_LOCALE]
        return tuple(item for item in pool if item.kind == kind)


def _item(raw: dict[str, object]) -> Item:
    def strings(key: str) -> frozenset[str]:
        value = raw.get(key, [])
        assert isinstance(value, list)
        return frozenset(str(v) for v in value)

    return Item(
        id=str(raw["id"]),
        kind=raw["kind"],  # type: ignore[arg-type]  # checked by tests/unit/test_catalog_data.py
        title=str(raw["title"]),
        body=str(raw["body"]),
        detail=str(raw.get("detail", "")),
        focus=strings("focus"),  # type: ignore[arg-type]
        love_languages=strings("love_languages"),  # type: ignore[arg-type]
        format=str(raw["format"]) if "format" in raw else None,
    )


@functools.cache
def load_catalog() -> Catalog:
    root = resources.files("services.notifier") / "catalog"
    by_locale: dict[str, tuple[Item, ...]] = {}
    for folder in root.iterdir():
        if not folder.is_dir() or folder.name.startswith(("_", ".")):
            continue
        items: list[Item] = []
        for kind in _FILES:
            path = folder / f"{kind}.toml"
            if path.is_file():
                items += [_item(raw) for raw in tomllib.loads(path.read_text("utf-8"))["item"]]
        by_locale[folder.name] = tuple(items)
    return Catalog(by_locale)
