"""Rendering keeps no personal data in its module-level caches: a partner's name, address
or jar idea passed through render_email_bytes is held by none of render's, mime's or
skeleton's caches (lru_caches and module dicts, inspected through what they reference)."""

from __future__ import annotations

import functools
import gc
import types
from datetime import UTC, datetime
from typing import Any

from couples_nudge.notifier import jar, mime, render, skeleton
from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.jar import JarIdea, jar_item
from couples_nudge.notifier.render import NudgeView, render_email_bytes

WHEN = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
# Marked names: plain ASCII, and with what is quoted, escaped and made ASCII.
NAMES = ("Qzephyrine", "Zo\u00eb Qxandu-O'Brien", "Qwil & <Jo>")
IDEA = JarIdea("qidea0123456789", "Qpicnic on the roof", "p1")
MARKS = ("Qzephyrine", "Qxandu", "Qwil", "qidea0123456789", "Qpicnic", "qaddress")


def _strings_reachable(root: object) -> list[str]:
    """Every str reachable from `root` through containers and records, not through modules,
    classes or functions (their code and defaults are no cache)."""
    seen: set[int] = set()
    found: list[str] = []
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.append(obj)
        elif isinstance(obj, bytes):
            found.append(obj.decode("latin-1"))
        elif not isinstance(obj, types.ModuleType | type | types.FunctionType | types.CodeType):
            stack.extend(gc.get_referents(obj))
    return found


def _caches() -> dict[str, Any]:
    """The module-level lru_caches and dicts of render, mime and skeleton."""
    out = {}
    for module in (render, mime, skeleton):
        for name, value in vars(module).items():
            if isinstance(value, functools._lru_cache_wrapper | dict) and not name.startswith("__"):
                out[f"{module.__name__}.{name}"] = value
    return out


class TestNoPersonalDataInCaches:
    def test_names_addresses_and_jar_ideas_are_not_retained(self) -> None:
        """Emails for marked names (as partner, recipient, whose turn; with signed links) and a
        jar idea leave none of them in any cache of the three modules; the caches do hold
        this module's interface strings and the time's line (the inspection sees them)."""
        catalog_item = load_catalog().items("date_night")[0]
        for n, name in enumerate(NAMES):
            other = NAMES[n - 1]
            for item, idea in ((catalog_item, None), (jar_item(IDEA, "en"), IDEA.text)):
                for turn in (name, other):
                    view = NudgeView(
                        kind="date_night",
                        item=item,
                        recipient=name,
                        partner=other,
                        turn=turn,
                        turn_is_recipient=turn == name,
                        when=WHEN,
                        timezone="Europe/Berlin",
                        jar_idea=idea,
                        unsubscribe_url=f"https://x.test/u/{name}",
                        actions=(("done", "https://x.test/a/1"), ("skip", "https://x.test/a/2")),
                    )
                    render_email_bytes(
                        view,
                        sender="Nudges <n@example.org>",
                        to_name=name,
                        to_address=f"qaddress{n}@example.test",
                        when=WHEN,
                    )
        held = {name: _strings_reachable(cache) for name, cache in _caches().items()}
        leaks = {
            cache: sorted({s for s in strings if any(mark in s for mark in MARKS)})
            for cache, strings in held.items()
        }
        assert {cache: found for cache, found in leaks.items() if found} == {}
        everything = [s for strings in held.values() for s in strings]
        assert any("7:00" in s for s in everything)  # the inspection reaches cached values

    def test_the_jar_prefix_is_jars(self) -> None:
        """render tells a jar item by jar.CONTENT_PREFIX (jar.py imports render)."""
        assert render._JAR_PREFIX == jar.CONTENT_PREFIX

    def test_jar_emails_of_a_language_share_one_plan(self) -> None:
        """Two ideas' date nights: one _Fixed for both (the idea's id is no part of it)."""
        first = jar_item(JarIdea("a" * 16, "x", "p"), "en")
        second = jar_item(JarIdea("b" * 16, "y", "p"), "en")
        assert render._fixed_seen((id(first), "en", "date_night", False), first) is (
            render._fixed_seen((id(second), "en", "date_night", False), second)
        )


class TestFixedHtml:
    def test_a_full_cache_keeps_the_interface_strings(self) -> None:
        """Cleared when full of time lines, it still holds each locale's turn line."""
        render._words_of("en")
        for n in range(render._MAX_FIXED_HTML + 1):
            render._fixed_html(f"Friday at {n}")
        assert render._words_of("en").turn_yours in render._FIXED_HTML
        assert len(render._FIXED_HTML) <= render._MAX_FIXED_HTML
