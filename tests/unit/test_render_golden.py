"""The rendered emails of two fixed nudges, byte for byte: any template change shows up in review.

A date night in en-GB (name escaping, the turn line, a tip, its date, the button to the app,
the support and manage links; no counselling line) and a monthly check-in guide in en-US (its
agenda and date, the counselling line).

The HTML was checked in headless Chromium (desktop and 375 px wide). After an intended
template change, regenerate with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest
tests/unit/test_render_golden.py` (the run then fails once, saying it rewrote the files), look
at tests/golden/*.html in a browser, and commit the new files with the change.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from couples_nudge.notifier.catalog import Item
from couples_nudge.notifier.render import NudgeView, render_email

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
ITEM = Item(
    id="dn-golden",
    kind="date_night",
    title="Cook something new together",
    body="Pick a cuisine neither of you has cooked before & make it together, start to finish.",
    detail="Split the jobs: one reads the recipe aloud, the other chops. Music on, phones away.",
    focus=frozenset({"experiential"}),
    love_languages=frozenset({"quality_time"}),
)
VIEW = NudgeView(
    kind="date_night",
    item=ITEM,
    recipient="Maya",
    partner='Sam "Sunny" <O\'Neil>',
    turn='Sam "Sunny" <O\'Neil>',
    unsubscribe_url="https://nudges.example.org/unsubscribe/k1.cGF5bG9hZA.c2ln?x=1&y=2",
    link="https://app.example.org/open/date_night/c1?o=c1%2Fd%2Fboth%401&x=<1>",
    manage_url="https://app.example.org/settings/nudges",
    support_url="https://support.example.org/",
    when=datetime(2026, 12, 11, 18, 0, tzinfo=UTC),
    timezone="Europe/London",
    locale="en-GB",
)


GUIDE = Item(
    id="ci-golden",
    kind="check_in",
    title="Money, gently",
    body="Check-in theme: money & how it feels. Only if you both feel ready; or pick another time.",
    detail="Start with feelings, not spreadsheets.",
    focus=frozenset({"conflict"}),
    love_languages=frozenset(),
    format="monthly_guide",
    steps=(
        "Each thank the other for one money decision that helped.",
        "Take turns on how money feels; the listener says back the <feeling>, not the figures.",
        "Share what would help you feel loved when money is on your mind.",
        'Agree on one small step, like a "no-spend" weekend.',
    ),
    hard_topic=True,
)
GUIDE_VIEW = NudgeView(
    kind="check_in",
    item=GUIDE,
    recipient="Maya",
    partner="Sam",
    when=datetime(2026, 12, 6, 19, 30, tzinfo=UTC),
    timezone="America/New_York",
)


def _parts(view: NudgeView, name: str) -> dict[str, str]:
    message = render_email(
        view,
        sender="Nudges <nudges@example.org>",
        to="Maya <maya@example.org>",
        when=datetime(2026, 12, 4, 18, 0, tzinfo=UTC),
        list_unsubscribe_post=True,
    )
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert isinstance(html, EmailMessage)
    assert isinstance(text, EmailMessage)
    return {f"{name}.html": str(html.get_content()), f"{name}.txt": str(text.get_content())}


def rendered() -> dict[str, str]:
    return _parts(VIEW, "date-night") | _parts(GUIDE_VIEW, "check-in-guide")


class TestGoldenEmail:
    @pytest.mark.parametrize(
        "name",
        ["date-night.html", "date-night.txt", "check-in-guide.html", "check-in-guide.txt"],
    )
    def test_matches_the_reviewed_rendering(self, name: str) -> None:
        """The HTML and text parts equal the reviewed golden files."""
        actual = rendered()[name]
        path = GOLDEN / name
        if os.environ.get("UPDATE_GOLDEN") == "1":
            path.write_text(actual, encoding="utf-8")
            pytest.fail(f"rewrote {path}; review it and run again without UPDATE_GOLDEN")
        assert actual == path.read_text(encoding="utf-8")

    def test_golden_html_escapes_the_names(self) -> None:
        """The reviewed file itself shows the tricky name escaped, never as markup."""
        golden = (GOLDEN / "date-night.html").read_text(encoding="utf-8")
        assert "&lt;O&#39;Neil&gt;" in golden
        assert "<O'Neil>" not in golden

    def test_golden_guide_escapes_the_steps(self) -> None:
        """The reviewed guide shows its steps as a list, escaped, in both parts."""
        html = (GOLDEN / "check-in-guide.html").read_text(encoding="utf-8")
        text = (GOLDEN / "check-in-guide.txt").read_text(encoding="utf-8")
        assert '<li\nstyle="margin:0 0 4px 0;">Each thank the other' in html
        assert "the &lt;feeling&gt;, not the figures" in html
        assert "&#34;no-spend&#34; weekend" in html
        assert "2. Take turns on how money feels; the listener says back the <feeling>" in text
