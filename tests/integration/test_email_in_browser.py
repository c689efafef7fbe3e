"""One email per available language, opened in a real headless Chromium at phone (390 px)
and desktop width: it fills the window without sideways scrolling, and the screenshots are
real pages (tests/integration/test_dashboard.py drives the browser; chromium is required in
CI by NUDGE_REQUIRE_TOOLS). Set NUDGE_SHOTS=<folder> to keep the screenshots for a look.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.render import NudgeView, render_email
from couples_nudge.notifier.render_cli import every_locale
from tests.integration.test_dashboard import browse, png_facts

WHEN = datetime(2026, 12, 11, 18, 0, tzinfo=UTC)
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}
# Appended to a copy of the email only: reports whether the page scrolls sideways.
PROBE = (
    "<script>document.documentElement.dataset.overflow = "
    "String(document.documentElement.scrollWidth > window.innerWidth);</script>"
)


def email_html(locale: str) -> str:
    """A date night with everything an email can show: date, turn, tip, button, links."""
    catalog = load_catalog()
    item = catalog.localized(catalog.items("date_night")[0], locale)
    view = NudgeView(
        kind="date_night",
        item=item,
        recipient="Maya",
        partner="Samuel-Alexander",
        turn="Samuel-Alexander",
        locale=locale,
        link="https://app.example.org/open/date_night/maya-sam?occurrence=maya-sam%2Fd%2Fboth",
        unsubscribe_url="https://nudges.example.org/unsubscribe/k1.cGF5bG9hZA.c2lnbmF0dXJl",
        manage_url="https://app.example.org/settings/nudges",
        support_url="https://support.example.org/",
        when=WHEN,
        timezone="Europe/Berlin",
    )
    message = render_email(
        view, sender="Nudges <nudges@example.org>", to="Maya <maya@example.org>", when=WHEN
    )
    html = message.get_body(("html",))
    assert html is not None
    return str(html.get_content())


@pytest.mark.parametrize("width", WIDTHS, ids=list(WIDTHS))
@pytest.mark.parametrize("locale", every_locale())
async def test_email_fits_the_screen(locale: str, width: str, tmp_path: Path) -> None:
    """The email in this language fits the window without sideways scrolling, declares its
    language, and its screenshot is a real page (not one flat colour)."""
    w, h = WIDTHS[width]
    page = tmp_path / "email.html"
    html = email_html(locale)
    assert f'<html lang="{locale}">' in html
    page.write_text(html.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    size = f"--window-size={w},{h}"
    dom = (await browse(page.as_uri(), tmp_path / "profile", size, "--dump-dom")).decode()
    assert 'data-overflow="false"' in dom
    shot = tmp_path / f"email-{locale}-{width}.png"
    page.write_text(html, encoding="utf-8")
    await browse(page.as_uri(), tmp_path / "profile2", size, f"--screenshot={shot}")
    got_w, got_h, distinct = png_facts(shot.read_bytes())
    assert (got_w, got_h) == (w, h)
    assert distinct > 50
    if folder := os.environ.get("NUDGE_SHOTS"):
        keep(shot, Path(folder))


def keep(shot: Path, folder: Path) -> None:
    """Copy a screenshot where a person can look at it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, folder / shot.name)
