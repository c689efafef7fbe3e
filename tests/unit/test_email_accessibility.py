"""The HTML part of every kind of email, in every language, read as assistive technology and
WCAG 2.2 read it: text contrast computed from the inline CSS (tests/support/wcag.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from html.parser import HTMLParser

import pytest

from couples_nudge.notifier.catalog import Item, load_catalog
from couples_nudge.notifier.locales import strings_for
from couples_nudge.notifier.render import NudgeView, render_email
from couples_nudge.notifier.render_cli import every_locale
from tests.support.wcag import text_runs
from tests.unit.test_render_golden import VIEW as GOLDEN_VIEW

WHEN = datetime(2026, 12, 11, 18, 0, tzinfo=UTC)
ANSWERS = tuple(
    (action, f"https://nudges.example.org/a/{action}") for action in ("done", "skip", "snooze")
)


def _item(kind: str, locale: str, *, steps: bool = False, detail: bool = True) -> Item:
    catalog = load_catalog()
    for item in catalog.items(kind, locale):  # type: ignore[arg-type]
        if bool(item.steps) == steps and bool(item.detail) == detail:
            return catalog.localized(item, locale)
    raise AssertionError(f"no {kind} item with steps={steps} and detail={detail}")


def views(locale: str) -> dict[str, NudgeView]:
    """Each kind with everything its email can show: time, turn, tip, jar idea, agenda,
    answers, the counselling line and every footer link."""
    # The reviewed golden email's view (every link, a turn, a time), in this language.
    date_night = GOLDEN_VIEW._replace(item=_item("date_night", locale), locale=locale)
    return {
        "date_night": date_night,
        "jar": date_night._replace(jar_idea="Paint each other's portrait"),
        "check_in": date_night._replace(
            kind="check_in", item=_item("check_in", locale, steps=True), turn=None, actions=ANSWERS
        ),
        "appreciation": date_night._replace(
            kind="appreciation", item=_item("appreciation", locale), turn=None
        ),
    }


def part_of(view: NudgeView, subtype: str) -> str:
    """The email's text part ("plain") or HTML part ("html"), decoded."""
    message = render_email(
        view, sender="Nudges <nudges@example.org>", to="Maya <maya@example.org>", when=WHEN
    )
    part = message.get_body((subtype,))
    assert isinstance(part, EmailMessage)
    return str(part.get_content())


def html_of(view: NudgeView) -> str:
    return part_of(view, "html")


CASES = [(locale, kind) for locale in every_locale() for kind in views("en")]


class TestContrast:
    @pytest.mark.parametrize(("locale", "kind"), CASES)
    def test_text_meets_wcag_aa(self, locale: str, kind: str) -> None:
        """Every visible text meets WCAG AA contrast against its background: 4.5:1, or 3:1
        for large text (24px, or 18.66px bold). The footer (why, support, unsubscribe) and
        the small labels included."""
        runs = text_runs(html_of(views(locale)[kind]))
        assert runs
        low = [
            (run.text[:40], run.color, run.background, round(run.ratio, 2))
            for run in runs
            if run.ratio < (3 if run.large else 4.5)
        ]
        assert low == []


class _Headings(HTMLParser):
    """The document's headings, in order: (level, text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.headings: list[tuple[int, str]] = []
        self._level = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self._level = int(tag[1])
            self.headings.append((self._level, ""))

    def handle_endtag(self, tag: str) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            self._level = 0

    def handle_data(self, data: str) -> None:
        if self._level:
            level, text = self.headings[-1]
            self.headings[-1] = (level, text + data)


def headings(html: str) -> list[tuple[int, str]]:
    parser = _Headings()
    parser.feed(html)
    return parser.headings


class TestHeadings:
    @pytest.mark.parametrize(("locale", "kind"), CASES)
    def test_title_and_sections(self, locale: str, kind: str) -> None:
        """A screen reader's list of headings is the email's outline: the title as the one
        h1, then an h2 for each labelled part (the jar idea, the agenda, the tip, the answers),
        in the order they are read."""
        view = views(locale)[kind]
        strings = strings_for(locale)
        sections = [
            label
            for label, shown in [
                (strings["jar"]["label"], view.jar_idea),
                (strings["email"]["agenda"], view.item.steps),
                (strings["email"]["tip"], view.item.detail),
                (strings["actions"]["label"], view.actions),
            ]
            if shown
        ]
        outline = [(1, view.item.title), *((2, label) for label in sections)]
        assert headings(html_of(view)) == outline


class TestPlainText:
    @pytest.mark.parametrize(("locale", "kind"), CASES)
    @pytest.mark.parametrize("links", [True, False], ids=["links", "no-links"])
    def test_paragraphs_one_blank_line_apart(self, locale: str, kind: str, links: bool) -> None:
        """The text part reads as paragraphs one blank line apart (after the answers too) and
        ends with its last line, not with a blank one."""
        view = views(locale)[kind]
        if not links:
            view = view._replace(link=None, unsubscribe_url=None, manage_url=None, actions=())
        text = part_of(view, "plain")
        assert "\n\n\n" not in text
        assert text.endswith("\n")
        assert not text.endswith("\n\n")
