"""The rendered email of one fixed nudge, byte for byte: any template change shows up in review.

The HTML was checked in headless Chromium (desktop and 375 px wide). After an intended
template change, regenerate with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest
tests/unit/test_render_golden.py` (the run then fails once, saying it rewrote the files), look
at tests/golden/date-night.html in a browser, and commit the new files with the change.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest

from services.notifier.catalog import Item
from services.notifier.render import NudgeView, render_email

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
)


def rendered() -> dict[str, str]:
    message = render_email(
        VIEW,
        sender="Nudges <nudges@example.org>",
        to="Maya <maya@example.org>",
        when=datetime(2026, 12, 4, 18, 0, tzinfo=UTC),
        list_unsubscribe_post=True,
    )
    html, text = message.get_body(("html",)), message.get_body(("plain",))
    assert isinstance(html, EmailMessage)
    assert isinstance(text, EmailMessage)
    return {"date-night.html": str(html.get_content()), "date-night.txt": str(text.get_content())}


class TestGoldenEmail:
    @pytest.mark.parametrize("name", ["date-night.html", "date-night.txt"])
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
