"""Regional word forms of one source text (US -> UK English). Pure.

The catalog is written once, in US English; a locale such as en-GB is derived from it with a
table of whole-word replacements (catalog/<language>/variants.toml, one section per locale).
A replacement matches whole words only, in any case, and keeps the case of what it replaced:
"Color" becomes "Colour", "COLOR" becomes "COLOUR", and "colorful" is left alone unless the
table lists it too. Inflected forms are listed one by one (realize, realized, realizes, ...):
the table says exactly what changes, and nothing is guessed from a word's ending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["Variants", "parse_variants"]


def _cased_like(found: str, replacement: str) -> str:
    if len(found) > 1 and found.isupper():
        return replacement.upper()
    if found[0].isupper():
        return replacement[0].upper() + replacement[1:]
    return replacement


class Variants:
    """One locale's replacements, keyed by the lower-case source word or phrase."""

    __slots__ = ("_pattern", "table")

    def __init__(self, table: Mapping[str, str]) -> None:
        bad = [word for word in table if word != word.lower() or not word.strip()]
        if bad:
            raise ValueError(f"variant keys must be lower-case words: {bad}")
        self.table: Mapping[str, str] = dict(table)
        # Longest first, so a listed phrase wins over a listed word inside it.
        words = sorted(table, key=lambda w: (-len(w), w))
        self._pattern = (
            re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b", re.IGNORECASE)
            if words
            else None
        )

    def apply(self, text: str) -> str:
        """`text` with every listed word replaced, case kept; other text unchanged."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: _cased_like(m[0], self.table[m[0].lower()]), text)


def parse_variants(data: Mapping[str, object]) -> dict[str, Variants]:
    """The tables of a parsed variants.toml: {"en-GB": Variants(...)}."""
    tables: dict[str, Variants] = {}
    for locale, table in data.items():
        if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
            raise ValueError(f"[{locale}] must map words to words")
        tables[locale] = Variants({str(k): str(v) for k, v in table.items()})
    return tables
