"""`nudge render FILE --kind KIND`: the files a content reviewer opens."""

from __future__ import annotations

import email
import email.policy
import json
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner

from couples_nudge.cli import app
from couples_nudge.notifier.render_cli import every_locale
from tests.support.events import EXAMPLES, example

MAYA_SAM = EXAMPLES / "maya-and-sam.json"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["render", *args])
    return result.exit_code, result.output


def eml(path: Path) -> EmailMessage:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


class TestRenderCommand:
    def test_writes_eml_html_and_push_for_each_partner(self, tmp_path: Path) -> None:
        """Without --partner, both partners get an .eml, an .html and a .push.json."""
        code, output = run(str(MAYA_SAM), "--kind", "check_in", "--out", str(tmp_path))
        assert code == 0, output
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            f"maya-sam-{who}-check_in.{ext}"
            for who in ("maya", "sam")
            for ext in ("eml", "html", "push.json")
        ]

    def test_files_agree_with_each_other(self, tmp_path: Path) -> None:
        """The .html is the .eml's HTML part; the push title is its subject; one-click headers."""
        run(str(MAYA_SAM), "--kind", "date_night", "--partner", "maya", "--out", str(tmp_path))
        message = eml(tmp_path / "maya-sam-maya-date_night.eml")
        html = message.get_body(("html",))
        assert html is not None
        on_the_wire = html.get_content().replace("\r\n", "\n")  # .eml files use CRLF
        assert on_the_wire == (tmp_path / "maya-sam-maya-date_night.html").read_text()
        push = json.loads((tmp_path / "maya-sam-maya-date_night.push.json").read_text())
        assert set(push) == {"title", "body", "url", "kind"}
        assert push["title"] == message["Subject"]
        assert str(message["To"]) == "Maya <maya@example.test>"
        assert str(message["List-Unsubscribe"]).startswith("<https://nudges.invalid/unsubscribe/")
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    def test_chosen_item_and_turn(self, tmp_path: Path) -> None:
        """--item picks a catalog item and --turn names who plans, as the date night would."""
        code, output = run(
            str(MAYA_SAM),
            "--kind",
            "date_night",
            "--partner",
            "sam",
            "--item",
            "dn-cooking-class",
            "--turn",
            "maya",
            "--out",
            str(tmp_path),
        )
        assert code == 0, output
        assert "dn-cooking-class" in output
        message = eml(tmp_path / "maya-sam-sam-date_night.eml")
        text = message.get_body(("plain",))
        assert text is not None
        assert message["Subject"] == "Take a cooking class together"
        assert "It's Maya's turn to plan this one." in text.get_content()

    def test_appreciation_is_about_the_other_partner(self, tmp_path: Path) -> None:
        """Each partner's appreciation nudge names the other partner."""
        run(str(MAYA_SAM), "--kind", "appreciation", "--out", str(tmp_path))
        maya = json.loads((tmp_path / "maya-sam-maya-appreciation.push.json").read_text())
        sam = json.loads((tmp_path / "maya-sam-sam-appreciation.push.json").read_text())
        assert "Sam" in maya["body"]
        assert "Maya" in sam["body"]

    def test_discreet_profile(self, tmp_path: Path) -> None:
        """A discreet couple's files show the neutral subject and push title."""
        event = example()
        event["data"]["discreet"] = True
        source = tmp_path / "discreet.json"
        source.write_text(json.dumps(event))
        run(str(source), "--kind", "check_in", "--partner", "maya", "--out", str(tmp_path / "o"))
        assert eml(tmp_path / "o/maya-sam-maya-check_in.eml")["Subject"] == (
            "A reminder from your app"
        )
        push = json.loads((tmp_path / "o/maya-sam-maya-check_in.push.json").read_text())
        assert push["title"] == "Reminder"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--partner", "nobody"], "no partner 'nobody'"),
            (["--item", "dn-does-not-exist"], "no check_in item 'dn-does-not-exist'"),
        ],
    )
    def test_bad_options(self, tmp_path: Path, args: list[str], message: str) -> None:
        """An unknown partner or item exits 2 with a clear message and writes nothing."""
        code, output = run(str(MAYA_SAM), "--kind", "check_in", "--out", str(tmp_path), *args)
        assert code == 2
        assert message in output
        assert list(tmp_path.iterdir()) == []

    def test_not_a_preferences_event(self, tmp_path: Path) -> None:
        """A file holding another event type is refused."""
        source = tmp_path / "pause.json"
        source.write_text(
            json.dumps(
                {
                    "type": "preferences.paused.v1",
                    "event_id": "7b0f7f0e-3c1a-4d59-9a55-0c3f1d2a8b02",
                    "occurred_at": "2026-11-01T09:00:00Z",
                    "producer": "tests",
                    "data": {"couple_id": "maya-sam"},
                }
            )
        )
        code, output = run(str(source), "--kind", "check_in", "--out", str(tmp_path / "o"))
        assert code == 2
        assert "not preferences.set.v1" in output


class TestEveryLanguageAndDiscreet:
    def test_every_language(self, tmp_path: Path) -> None:
        """--locale all writes the same item once per language with strings and per regional
        variant, each declaring its language; en-GB reads British spelling."""
        code, output = run(
            str(MAYA_SAM), "--kind", "check_in", "--partner", "maya", "--locale", "all",
            "--out", str(tmp_path),
        )  # fmt: skip
        assert code == 0, output
        locales = every_locale()
        assert {"en", "en-GB"} <= set(locales)
        for locale in locales:
            html = (tmp_path / f"maya-sam-maya-check_in-{locale}.html").read_text()
            assert f'<html lang="{locale}">' in html
        drawn = {part.split(")")[0] for part in output.split("(ci-")[1:]}
        assert len(drawn) == 1  # the same item in every language
        gb = (tmp_path / "maya-sam-maya-check_in-en-GB.html").read_text()
        assert "counsellor" in gb
        assert "counselor" not in gb

    def test_discreet_override(self, tmp_path: Path) -> None:
        """--discreet shows what a discreet couple's lock screen and inbox would show."""
        code, output = run(
            str(MAYA_SAM), "--kind", "date_night", "--partner", "sam", "--discreet",
            "--out", str(tmp_path),
        )  # fmt: skip
        assert code == 0, output
        push = json.loads((tmp_path / "maya-sam-sam-date_night.push.json").read_text())
        assert (push["title"], push["body"]) == ("Reminder", "Open the app to see it.")
        assert eml(tmp_path / "maya-sam-sam-date_night.eml")["Subject"] == (
            "A reminder from your app"
        )

    def test_bad_locale(self, tmp_path: Path) -> None:
        """A locale that is not a language tag is refused as a usage error."""
        code, output = run(
            str(MAYA_SAM), "--kind", "check_in", "--locale", "../x", "--out", str(tmp_path)
        )
        assert code == 2
        assert "--locale" in output
