"""The demo's outbox folder: made by the demo, cleared by the demo, nothing else touched.

A folder becomes an outbox when the demo writes its marker file (`MARKER`) into it. At the
next run only the files the demo writes there (the SMTP catcher's `NNNNN.eml`, see
services/embedded/mailcatcher.py, and the calendar page `index.html`, services/demo.py) are
removed; any other file stays. A folder that is not
empty and has no marker is refused: it may hold the user's own files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

__all__ = ["CALENDAR", "MARKER", "OutboxRefused", "prepare_outbox"]

MARKER: Final = ".nudge-demo-outbox"
CALENDAR: Final = "index.html"
MARKER_TEXT: Final = (
    "This folder is an outbox of `nudge demo`. Its next run deletes the NNNNN.eml files\n"
    "and index.html here (and only those) before writing new ones.\n"
)
DEMO_FILE: Final = re.compile(r"\d{5}\.eml|index\.html")


class OutboxRefused(ValueError):
    """The folder is not one the demo may write into; `str()` says why (one line)."""


def prepare_outbox(outbox: Path) -> int:
    """Make `outbox` ready for a run: create it, or clear a previous run's emails.

    Returns how many old emails were removed. Raises OutboxRefused for a file, or for a
    folder with content that no previous demo run marked as its own.
    """
    if outbox.exists() and not outbox.is_dir():
        raise OutboxRefused(f"{outbox} is a file, not a folder")
    marker = outbox / MARKER
    if outbox.is_dir() and not marker.is_file() and any(outbox.iterdir()):
        raise OutboxRefused(
            f"{outbox} is not empty and is not a previous demo outbox: "
            "name a new or empty folder with --outbox"
        )
    outbox.mkdir(parents=True, exist_ok=True)
    removed = 0
    for path in outbox.iterdir():
        if DEMO_FILE.fullmatch(path.name) and path.is_file() and not path.is_symlink():
            path.unlink()
            removed += 1
    marker.write_text(MARKER_TEXT)
    return removed
