"""The manage page's wording of a kind's state (services/notifier/pages.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from couples_nudge.notifier.pages import KindState, render_manage_page

UNTIL = datetime(2026, 12, 24, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("locale", "expected"),
    [
        ("en", "Snoozed until Thursday, December 24, 2026 at 7:00\u00a0PM"),
        ("en-GB", "Snoozed until Thursday, 24 December 2026 at 19:00"),
        ("de", "Pausiert bis Donnerstag, 24. Dezember 2026 um 19:00"),
        ("es", "En pausa hasta el jueves, 24 de diciembre de 2026, a las 19:00"),
    ],
)
def test_a_snooze_says_until_when(locale: str, expected: str) -> None:
    """A snoozed kind reads "Snoozed until <date>" in the partner's language and zone (it
    read "Snoozed: <date>", which says when it began as well as when it ends)."""
    html = render_manage_page(
        [KindState("check_in", "snoozed", UNTIL)],
        locale=locale,
        timezone="Europe/Berlin",
        action_url="https://nudges.example.org/manage/k1.cGF5bG9hZA.c2lnbmF0dXJl",
        saved=False,
    )
    assert expected in html
