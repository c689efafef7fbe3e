"""The manage page and the answer page in every language of the catalog, opened in a real
headless Chromium at phone (390 px) and desktop width: no sideways scrolling, the language is
declared, the screenshot is a real page. NUDGE_SHOTS=<folder> keeps the screenshots."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from couples_nudge.notifier.pages import KindState, render_answer_page, render_manage_page
from couples_nudge.notifier.render_cli import every_locale
from tests.integration.test_dashboard import browse, png_facts
from tests.integration.test_email_in_browser import PROBE, WIDTHS, keep

ACTION = "https://nudges.example.org/manage/k1.cGF5bG9hZA.c2lnbmF0dXJl"


def manage_html(locale: str) -> str:
    """Every state a kind can be in: on, snoozed until a date, stopped; a saved notice."""
    return render_manage_page(
        [
            KindState("date_night", "on", None),
            KindState("check_in", "snoozed", datetime(2026, 12, 24, 18, 0, tzinfo=UTC)),
            KindState("appreciation", "stopped", None),
        ],
        locale=locale,
        timezone="Europe/Berlin",
        action_url=ACTION,
        saved=True,
    )


def answer_html(locale: str) -> str:
    return render_answer_page(
        "confirm", locale=locale, kind="date_night", action="skip", action_url=ACTION
    )


@pytest.mark.parametrize("page", ["manage", "answer"])
@pytest.mark.parametrize("width", WIDTHS, ids=list(WIDTHS))
@pytest.mark.parametrize("locale", every_locale())
async def test_page_fits_the_screen(locale: str, width: str, page: str, tmp_path: Path) -> None:
    """The page in this language fits the window without sideways scrolling, declares its
    language, works without JavaScript (plain forms) and its screenshot is a real page."""
    w, h = WIDTHS[width]
    html = manage_html(locale) if page == "manage" else answer_html(locale)
    assert f'<html lang="{locale}">' in html
    assert "<script" not in html
    assert 'method="post"' in html
    file = tmp_path / f"{page}.html"
    file.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    size = f"--window-size={w},{h}"
    dom = (await browse(file.as_uri(), tmp_path / "profile", size, "--dump-dom")).decode()
    assert 'data-overflow="false"' in dom
    shot = tmp_path / f"{page}-{locale}-{width}.png"
    file.write_text(html, encoding="utf-8")
    await browse(file.as_uri(), tmp_path / "profile2", size, f"--screenshot={shot}")
    got_w, got_h, distinct = png_facts(shot.read_bytes())
    assert (got_w, got_h) == (w, h)
    assert distinct > 50
    if folder := os.environ.get("NUDGE_SHOTS"):
        keep(shot, Path(folder))
