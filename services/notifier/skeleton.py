"""Rendering a Jinja template ~10x faster by rendering it once per shape. Pure.

An email template is static text with a dozen `{{ variable }}` slots and a few `{% if %}`
blocks. Jinja re-runs all of it per message (~100 us: context setup, ~150 yields, escaping).
Here a template is rendered once per *shape* -- which variables are truthy (and the type of
each falsy one: "" and None print differently), which is all the `{% if %}` blocks look at --
with a unique marker in each slot, and the output is split at the
markers. A message is then the static parts joined with its own values, escaped exactly as
Jinja's autoescape does (markupsafe.escape) in HTML and as is in text.

The Jinja template stays the only source of truth, and correctness never depends on this
shortcut: skeletons are used only for templates made of text, `{{ name }}` and
`{% if name %}` / `{% if not name %}` / `{% else %}` (checked on Jinja's syntax tree; a filter,
a comparison or a loop means plain Jinja for that template), and the first message of every
shape is also rendered by Jinja and compared.

`render_ascii` gives an HTML email's part as ASCII (every other character as its numeric
character reference: render.py says why). It relies on that conversion going character by
character, so converting the output equals converting each piece of it: the static parts are
converted once, when their skeleton is learned, and only the values per message (most are
ASCII already: one `isascii` each), instead of a pass of replace and encode over the whole
~5 KB part per email.

No value is cached here (values hold names): escaping a str is a few `in` searches and, only
when one finds something, five replaces (escape_str).

`prefill` writes the values of some names into a skeleton's static text (escaped and
converted as `_fill` would): render.py's email plans, whose fixed values are the same for
every recipient of an item, fill only the rest per message. It relies on `_fill` writing each
value on its own, independent of its neighbours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import jinja2
import markupsafe
from jinja2 import nodes

__all__ = [
    "Prefilled",
    "Shape",
    "SkeletonRenderer",
    "ascii_html_str",
    "ascii_refs",
    "escape_str",
    "html_value",
    "shape_of",
]

_MARK: Final = "\x1a"  # not escaped by HTML escaping, never in our values
_SLOT: Final = re.compile(f"{_MARK}([A-Za-z_][A-Za-z0-9_]*){_MARK}")
_MAX_SHAPES: Final = 512  # per renderer; beyond it, plain Jinja (no unbounded growth)
Shape = tuple[tuple[str, ...], tuple[str, ...]]  # the context's names, what is falsy (shape_of)


@dataclass(frozen=True, slots=True)
class _Skeleton:
    parts: tuple[str, ...]  # static text around the slots: len(names) + 1 parts
    names: tuple[str, ...]  # the variable in each slot, in order
    ascii_parts: tuple[str, ...] = ()  # the parts as ascii_refs (render_ascii)


class SkeletonRenderer:
    """Renders one Jinja template through cached skeletons, falling back to Jinja."""

    def __init__(self, template: jinja2.Template, tree: nodes.Template, *, html: bool) -> None:
        self.template = template
        self.html = html  # escape values as the template's autoescape does
        self.simple = _simple(tree)  # else: always plain Jinja
        self._shapes: dict[Shape, _Skeleton | None] = {}

    @classmethod
    def load(cls, env: jinja2.Environment, name: str) -> SkeletonRenderer:
        """The template `name` from the environment's loader, autoescaped as Jinja decides."""
        assert env.loader is not None
        source, _, _ = env.loader.get_source(env, name)
        template = env.get_template(name)
        return cls(template, env.parse(source), html=_autoescaped(env, name))

    @classmethod
    def from_string(cls, env: jinja2.Environment, source: str) -> SkeletonRenderer:
        return cls(env.from_string(source), env.parse(source), html=_autoescaped(env, None))

    def render(self, context: Mapping[str, Any], shape: Shape | None = None) -> str:
        """`shape`: shape_of(context), when the caller renders one context more than once."""
        if not self.simple:
            return self.template.render(context)
        shape = shape or shape_of(context)
        skeleton = self._shapes.get(shape, _UNSEEN)
        if skeleton is _UNSEEN:
            return self._learn(shape, context)
        if skeleton is None:  # this shape cannot be rendered by a skeleton
            return self.template.render(context)
        return self._fill(skeleton, context)

    def render_ascii(self, context: Mapping[str, Any], shape: Shape | None = None) -> str:
        """`ascii_refs(self.render(context, shape))`, for an HTML template (module docstring)."""
        if not self.simple:
            return ascii_refs(self.template.render(context))
        shape = shape or shape_of(context)
        skeleton = self._shapes.get(shape, _UNSEEN)
        if skeleton is _UNSEEN or skeleton is None:  # learned by `render`, or plain Jinja
            return ascii_refs(self.render(context, shape))
        return self._fill(skeleton, context, ascii=True)

    def prefill(
        self,
        context: Mapping[str, Any],
        fixed: frozenset[str],
        shape: Shape | None = None,
        *,
        ascii: bool = False,
    ) -> Prefilled | None:
        """The skeleton of `context`'s shape with the values of the `fixed` names written in
        (escaped, and as ascii_refs when `ascii`, as `_fill` does): what stays is the slots
        of the other names. Joining its parts with those values, escaped the same way, gives
        this renderer's output for any context of that shape holding these fixed values.
        None when the template or the shape has no skeleton."""
        if not self.simple:
            return None
        shape = shape or shape_of(context)
        if self._shapes.get(shape, _UNSEEN) is _UNSEEN:
            self.render(context, shape)  # learns it
        skeleton = self._shapes.get(shape)
        if skeleton is None or skeleton is _UNSEEN:
            return None
        source = skeleton.ascii_parts if ascii else skeleton.parts
        parts, names = [source[0]], []
        for name, part in zip(skeleton.names, source[1:], strict=True):
            if name in fixed:
                parts[-1] += self._one(context[name], ascii=ascii) + part
            else:
                names.append(name)
                parts.append(part)
        return Prefilled(tuple(parts), tuple(names))

    def _one(self, value: Any, *, ascii: bool) -> str:
        """One value as `_fill` writes it."""
        if not self.html:
            return value if type(value) is str else str(value)
        return html_value(value, ascii=ascii)

    def _fill(self, skeleton: _Skeleton, context: Mapping[str, Any], ascii: bool = False) -> str:
        values = [context[name] for name in skeleton.names]
        parts = skeleton.parts
        if self.html:
            # A plain str escaped as markupsafe does (escape_str), Markup as it is.
            values = [escape_str(v) if type(v) is str else markupsafe.escape(v) for v in values]
            if ascii:
                parts = skeleton.ascii_parts
                values = [v if v.isascii() else ascii_refs(v) for v in values]
        else:
            values = [v if type(v) is str else str(v) for v in values]
        out = [*parts, *values]  # then interleaved: part, value, part, ..., part
        out[0::2], out[1::2] = parts, values
        return "".join(out)

    def _learn(self, shape: Shape, context: Mapping[str, Any]) -> str:
        expected = self.template.render(context)
        if len(self._shapes) >= _MAX_SHAPES:
            return expected
        marked = {
            name: f"{_MARK}{name}{_MARK}" if value else value for name, value in context.items()
        }
        pieces = _SLOT.split(self.template.render(marked))
        parts = tuple(pieces[0::2])
        skeleton: _Skeleton | None = _Skeleton(
            parts, tuple(pieces[1::2]), tuple(map(ascii_refs, parts)) if self.html else ()
        )
        if skeleton is not None and (
            _MARK in "".join(skeleton.parts) or self._fill(skeleton, context) != expected
        ):
            skeleton = None
        self._shapes[shape] = skeleton
        return expected


_UNSEEN: Final = _Skeleton((), ())


@dataclass(frozen=True, slots=True)
class Prefilled:
    """A skeleton with some of its values written into its static text (`prefill`)."""

    parts: tuple[str, ...]  # static text around the remaining slots: len(names) + 1 parts
    names: tuple[str, ...]  # the variable in each remaining slot, in order


def html_value(value: Any, *, ascii: bool = False) -> str:
    """One value as the HTML skeleton writes it: escaped (a str through the cache, Markup as
    is), and with `ascii` its non-ASCII characters as references (`render_ascii`)."""
    if ascii and type(value) is str:
        return ascii_html_str(value)
    text = escape_str(value) if type(value) is str else str(markupsafe.escape(value))
    return ascii_refs(text) if ascii else text


def ascii_html_str(value: str) -> str:
    """`html_value(value, ascii=True)` of a plain str (not Markup): `ascii_refs(escape_str(
    value))` in one call. Not cached: values hold names (render.py keeps the HTML of its
    interface strings and time lines, which hold none, in a cache of its own)."""
    if "&" in value or ">" in value or "<" in value or "'" in value or '"' in value:
        value = escape_str(value)
    if value.isascii():
        return value
    return value.encode("ascii", "xmlcharrefreplace").decode("ascii")


def escape_str(text: str) -> str:
    """`str(markupsafe.escape(text))` of a plain str (not Markup), as markupsafe's own
    pure-Python escape writes it (markupsafe/_native.py): "&" first, then the other four.
    Cheaper than markupsafe.escape's C loop per character and its Markup (a Python
    __new__). A signed URL holds none of the five: five `in` (memchr scans) tell it, where
    each str.replace counts its character byte by byte first (~1k instructions on a URL).
    Property test: tests/property/test_skeleton_render.py."""
    if "&" in text or ">" in text or "<" in text or "'" in text or '"' in text:
        return (
            text.replace("&", "&amp;")
            .replace(">", "&gt;")
            .replace("<", "&lt;")
            .replace("'", "&#39;")
            .replace('"', "&#34;")
        )
    return text


def ascii_refs(text: str) -> str:
    """HTML with every non-ASCII character as a numeric character reference (`&#252;`)."""
    if text.isascii():
        return text
    return text.encode("ascii", "xmlcharrefreplace").decode("ascii")  # a C loop per character


def _autoescaped(env: jinja2.Environment, name: str | None) -> bool:
    return bool(env.autoescape(name) if callable(env.autoescape) else env.autoescape)


_ALLOWED: Final = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.If)


def _simple(tree: nodes.Node) -> bool:
    """Only text, {{ name }} and {% if [not] name %}: output depends on truthiness alone."""
    for node in tree.find_all(nodes.Node):
        if isinstance(node, nodes.Not) and isinstance(node.node, nodes.Name):
            continue
        if not isinstance(node, _ALLOWED):
            return False
        if isinstance(node, nodes.If) and not isinstance(node.test, nodes.Name | nodes.Not):
            return False
    return True


def shape_of(context: Mapping[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Per variable: truthy (""), or which falsy value ("" and None print differently, so they
    differ in shape). The names in the context's order: a context built in another order is
    another shape (learned once more), never a wrong one."""
    return tuple(context), tuple(["" if v else type(v).__name__ for v in context.values()])
