"""WCAG 2.x colour contrast of an email's text, computed from its inline CSS.

`text_runs` walks the HTML (html.parser) and gives every visible piece of text with the colour,
background, size and weight its elements give it (inline `style` only, as an email has: no
style sheet); `contrast` is WCAG's ratio of two colours. What a display:none subtree holds (the
preheader) is not shown, so not measured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from html.parser import HTMLParser

__all__ = ["TextRun", "contrast", "text_runs"]

_VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta"})
_DECLARATION = re.compile(r"([a-z-]+)\s*:\s*([^;]+)")
_HEX = re.compile(r"#[0-9a-fA-F]{6}\b")


@dataclass(frozen=True, slots=True)
class TextRun:
    text: str
    color: str  # #rrggbb
    background: str  # #rrggbb
    size: float  # CSS px
    bold: bool

    @property
    def large(self) -> bool:
        """WCAG's large text: 18pt (24px), or 14pt (18.66px) bold."""
        return self.size >= 24 or (self.bold and self.size >= 18.66)

    @property
    def ratio(self) -> float:
        return contrast(self.color, self.background)


def _luminance(colour: str) -> float:
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG's contrast ratio of two #rrggbb colours (1 to 21)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@dataclass(frozen=True, slots=True)
class _Box:
    tag: str
    color: str
    background: str
    size: float
    bold: bool
    hidden: bool


class _Walker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack = [_Box("", "#000000", "#ffffff", 16.0, False, False)]
        self.runs: list[TextRun] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        box = replace(self.stack[-1], tag=tag)
        if tag in {"b", "strong", "th", "h1", "h2", "h3"}:
            box = replace(box, bold=True)
        style = dict(attrs).get("style") or ""
        for name, value in _DECLARATION.findall(style.lower()):
            value = value.strip()
            if name == "color" and (found := _HEX.search(value)):
                box = replace(box, color=found.group())
            elif name in {"background", "background-color"} and (found := _HEX.search(value)):
                box = replace(box, background=found.group())
            elif name == "font-size" and value.endswith("px"):
                box = replace(box, size=float(value[:-2]))
            elif name == "font-weight":
                heavy = value.isdigit() and int(value) >= 700
                box = replace(box, bold=value in {"bold", "bolder"} or heavy)
            elif name == "display" and value == "none":
                box = replace(box, hidden=True)
        self.stack.append(box)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        while len(self.stack) > 1:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        box = self.stack[-1]
        text = " ".join(data.split())
        if text and not box.hidden and box.tag not in {"title", "head"}:
            self.runs.append(TextRun(text, box.color, box.background, box.size, box.bold))


def text_runs(html: str) -> list[TextRun]:
    """Every visible piece of text of `html`, with the colours and size it is shown in."""
    walker = _Walker()
    walker.feed(html)
    walker.close()
    return walker.runs
