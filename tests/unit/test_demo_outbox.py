"""`nudge demo --outbox DIR` never deletes what the demo did not write."""

from __future__ import annotations

from pathlib import Path

import pytest

from couples_nudge.demo_outbox import MARKER, OutboxRefused, prepare_outbox
from tests.support.cli import nudge


class TestPrepareOutbox:
    def test_a_new_folder_is_made_and_marked(self, tmp_path: Path) -> None:
        """A path that does not exist becomes an outbox with the demo's marker."""
        outbox = tmp_path / "a" / "outbox"
        assert prepare_outbox(outbox) == 0
        assert [p.name for p in outbox.iterdir()] == [MARKER]

    def test_an_empty_folder_is_used(self, tmp_path: Path) -> None:
        """An existing empty folder is fine."""
        assert prepare_outbox(tmp_path) == 0
        assert (tmp_path / MARKER).is_file()

    def test_a_folder_of_the_users_is_refused_and_left_alone(self, tmp_path: Path) -> None:
        """Not empty and never an outbox: refused, every file kept as it was."""
        (tmp_path / "thesis.txt").write_text("years of work")
        (tmp_path / "00001.eml").write_text("the user's own mail")
        with pytest.raises(OutboxRefused, match="not a previous demo outbox"):
            prepare_outbox(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["00001.eml", "thesis.txt"]
        assert (tmp_path / "00001.eml").read_text() == "the user's own mail"

    def test_a_previous_outbox_loses_only_the_demos_emails(self, tmp_path: Path) -> None:
        """Only the catcher's NNNNN.eml go; other files and folders in it stay."""
        prepare_outbox(tmp_path)
        for n in (1, 2, 3):
            (tmp_path / f"{n:05d}.eml").write_bytes(b"demo mail")
        (tmp_path / "notes.txt").write_text("mine")
        (tmp_path / "keep.eml").write_text("mine too")
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "00004.eml").write_text("in a subfolder")
        assert prepare_outbox(tmp_path) == 3
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            MARKER,
            "keep.eml",
            "notes.txt",
            "sub",
        ]
        assert (tmp_path / "sub" / "00004.eml").exists()

    def test_the_previous_calendar_page_goes_and_the_users_pages_stay(self, tmp_path: Path) -> None:
        """index.html is the demo's (its calendar); any other HTML file is the user's."""
        prepare_outbox(tmp_path)
        (tmp_path / "index.html").write_text("the last run's calendar")
        (tmp_path / "notes.html").write_text("mine")
        (tmp_path / "index.htm").write_text("mine too")
        assert prepare_outbox(tmp_path) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER, "index.htm", "notes.html"]

    def test_a_file_is_refused(self, tmp_path: Path) -> None:
        """--outbox naming a file is refused; the file is kept."""
        path = tmp_path / "outbox"
        path.write_text("a file")
        with pytest.raises(OutboxRefused, match="is a file"):
            prepare_outbox(path)
        assert path.read_text() == "a file"


class TestDemoCommand:
    def test_a_users_folder_is_refused_in_one_line_with_exit_2(self, tmp_path: Path) -> None:
        """`nudge demo --outbox DIR` on a folder with a user's file: exit 2, file kept."""
        precious = tmp_path / "precious.txt"
        precious.write_text("do not delete")
        ran = nudge("demo", "--outbox", str(tmp_path), "--seconds", "2", "--days", "1")
        assert ran.code == 2, ran.err
        [line] = ran.err_lines
        assert "not a previous demo outbox" in line
        assert precious.read_text() == "do not delete"
