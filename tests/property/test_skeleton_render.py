"""The skeleton renderer gives exactly what Jinja gives, for our templates and for any values."""

from __future__ import annotations

from typing import Any

import jinja2
import markupsafe
from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.notifier.render import _context, _email_part
from couples_nudge.notifier.skeleton import (
    SkeletonRenderer,
    ascii_html_str,
    ascii_refs,
    escape_str,
    html_value,
)

TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x1a"),
    max_size=40,
)
MAYBE = st.one_of(st.none(), st.just(""), TEXT)
CONTEXT = st.fixed_dictionaries(
    {
        "lang": st.sampled_from(["en", "de"]),
        "subject": TEXT,
        "preheader": TEXT,
        "preheader_pad": st.just(markupsafe.Markup("&#8199;&#847;")),
        "heading": TEXT,
        "title": TEXT,
        "recipient": TEXT,
        "body": TEXT,
        "detail": MAYBE,
        "tip_label": TEXT,
        "turn_line": MAYBE,
        "footer_why": TEXT,
        "footer_unsubscribe": TEXT,
        "footer_counselor": MAYBE,
        "unsubscribe_url": st.one_of(st.none(), st.just("https://x.test/u?t=a&b=<c>")),
        "when_line": MAYBE,
        "agenda_text": MAYBE,
        "agenda_html": st.one_of(st.just(""), st.just(markupsafe.Markup("<ol><li>a</li></ol>"))),
        "actions_text": MAYBE,
        "actions_html": st.one_of(st.just(""), st.just(markupsafe.Markup("<a href='x'>a</a>"))),
        "greeting": TEXT,
        "cta_url": st.one_of(st.none(), st.just("https://app.test/n?k=a&o=<1>")),
        "cta_label": TEXT,
        "footer_support": TEXT,
        "support_label": TEXT,
        "support_url": st.one_of(st.none(), st.just("https://help.test/?a=1&b='2'")),
        "manage_label": TEXT,
        "manage_url": st.one_of(st.none(), st.just("https://app.test/manage")),
        # a date night from the couple's own jar: their idea, escaped like any input
        "jar_label": TEXT,
        "jar_idea": MAYBE,
    }
)


class TestOurTemplates:
    @settings(max_examples=300, deadline=None)
    @given(context=CONTEXT)
    def test_email_parts_match_jinja_for_any_values(self, context: dict[str, Any]) -> None:
        """Names with <, &, quotes, emoji; missing detail, agenda, turn or unsubscribe link:
        the same bytes as Jinja, first render (learning) and every render after it."""
        for part in ("en/email.html.j2", "en/email.txt.j2"):
            renderer = _email_part(part)
            expected = renderer.template.render(context)
            assert renderer.render(context) == expected
            assert renderer.render(context) == expected

    @settings(max_examples=300, deadline=None)
    @given(context=CONTEXT)
    def test_the_html_part_as_ascii_is_jinja_s_converted(self, context: dict[str, Any]) -> None:
        """render_ascii (static parts converted when learned, values per message) gives
        Jinja's output converted whole: learning, filling, and a shape seen before."""
        renderer = _email_part("en/email.html.j2")
        expected = ascii_refs(renderer.template.render(context))
        assert renderer.render_ascii(context) == expected
        assert renderer.render_ascii(context) == expected
        assert renderer.render_ascii(context).isascii()

    def test_the_email_templates_are_rendered_by_skeletons(self) -> None:
        """Our templates only test truthiness, so every shape gets a skeleton (the speed-up
        is real, not a silent fallback to Jinja)."""
        from couples_nudge.notifier.catalog import load_catalog
        from couples_nudge.notifier.render import NudgeView

        item = load_catalog().items("date_night")[0]
        view = NudgeView(kind="date_night", item=item, recipient="Maya", partner="Sam")
        for part in ("en/email.html.j2", "en/email.txt.j2"):
            renderer = _email_part(part)
            renderer.render(_context(view))
            assert renderer.simple, part
            assert renderer._shapes, part
            assert all(skeleton is not None for skeleton in renderer._shapes.values()), part


class TestFallback:
    def test_a_filter_on_a_value_falls_back_to_jinja(self) -> None:
        env = jinja2.Environment(autoescape=True)
        renderer = SkeletonRenderer.from_string(env, "<b>{{ name|upper }}</b>")
        assert renderer.render({"name": "maya"}) == "<b>MAYA</b>"
        assert renderer.render({"name": "sam & jo"}) == "<b>SAM &amp; JO</b>"
        assert not renderer.simple

    def test_a_comparison_on_a_value_falls_back_to_jinja(self) -> None:
        """Even when the first sample would match a skeleton: "en" first, then "de"."""
        env = jinja2.Environment(autoescape=True)
        source = "{% if lang == 'de' %}Hallo{% else %}Hi{% endif %} {{ name }}"
        renderer = SkeletonRenderer.from_string(env, source)
        assert renderer.render({"lang": "en", "name": "Sam"}) == "Hi Sam"
        assert renderer.render({"lang": "de", "name": "Maya"}) == "Hallo Maya"
        assert not renderer.simple

    def test_if_not_and_else_keep_their_skeleton(self) -> None:
        env = jinja2.Environment(autoescape=True)
        source = "{% if not a %}-{% else %}<i>{{ a }}</i>{% endif %}{% if b %}{{ b }}{% endif %}"
        renderer = SkeletonRenderer.from_string(env, source)
        for a, b in [("", "x"), ("<&>", None), ("q", "r"), (None, "")]:
            assert renderer.render({"a": a, "b": b}) == env.from_string(source).render(a=a, b=b)
        assert renderer.simple
        assert all(skeleton is not None for skeleton in renderer._shapes.values())

    def test_empty_string_and_none_are_different_shapes(self) -> None:
        renderer = SkeletonRenderer.from_string(
            jinja2.Environment(autoescape=True), "[{{ detail }}]"
        )
        assert renderer.render({"detail": ""}) == "[]"
        assert renderer.render({"detail": None}) == "[None]"
        assert renderer.render({"detail": "x"}) == "[x]"


class TestHtmlValue:
    @settings(max_examples=500, deadline=None)
    @given(value=TEXT)
    def test_a_str_is_escaped_then_made_ascii_once_cached(self, value: str) -> None:
        """ascii_html_str (render.py's per-email HTML values) is html_value's plain way:
        markupsafe's escape, then every non-ASCII character as a reference; asked twice."""
        expected = ascii_refs(str(markupsafe.escape(value)))
        assert ascii_html_str(value) == expected
        assert ascii_html_str(value) == expected
        assert html_value(value, ascii=True) == expected

    @settings(max_examples=500, deadline=None)
    @given(value=st.text(alphabet=st.sampled_from([*"&<>'\"a;#\u00fc"]), max_size=20) | TEXT)
    def test_escape_str_is_markupsafe_s(self, value: str) -> None:
        """The replace chain escapes exactly as markupsafe.escape (Jinja's autoescape)."""
        assert escape_str(value) == str(markupsafe.escape(value))

    def test_markup_is_written_as_it_is(self) -> None:
        assert html_value(markupsafe.Markup("<b>\u00fc</b>"), ascii=True) == "<b>&#252;</b>"
