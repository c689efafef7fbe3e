"""A date night drawn from the couple's jar, rendered: their idea escaped, said to come from
their jar, whose turn it is, and kept off lock screens and subjects in discreet mode."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

from couples_nudge.notifier.jar import JarIdea, jar_item
from couples_nudge.notifier.render import NudgeView, render_email, render_push

WHEN = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
IDEA = JarIdea("roof", '<b>Picnic</b> & "stars" on the {roof}', "maya")
IDEA_HTML = "&lt;b&gt;Picnic&lt;/b&gt; &amp; &#34;stars&#34; on the {roof}"


def view(**changes: Any) -> NudgeView:
    fields: dict[str, Any] = {
        "kind": "date_night",
        "item": jar_item(IDEA, "en"),
        "recipient": "Maya",
        "partner": "Sam",
        "turn": "Sam",
        "jar_idea": IDEA.text,
    }
    return NudgeView(**(fields | changes))


def parts(message: EmailMessage) -> tuple[str, str]:
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return str(text.get_content()), str(html.get_content())


def email(v: NudgeView) -> EmailMessage:
    return render_email(v, sender="Nudges <n@example.org>", to="Maya <m@example.org>", when=WHEN)


class TestJarEmail:
    def test_the_idea_is_escaped_in_html_and_plain_in_text(self) -> None:
        """HTML gets the idea escaped by autoescape; the text part has it as written."""
        text, html = parts(email(view()))
        assert IDEA_HTML in html
        assert IDEA.text not in html
        assert f"From your date jar: {IDEA.text}" in text

    def test_says_it_comes_from_their_jar_and_whose_turn_it_is(self) -> None:
        """The label, the idea and the turn line are all in the email."""
        text, html = parts(email(view()))
        assert "From your date jar:" in html
        assert "It's Sam's turn to plan this one." in text
        assert "It&#39;s Sam&#39;s turn to plan this one." in html

    def test_the_subject_never_carries_the_idea(self) -> None:
        """Subject: the jar's title, or the neutral one in discreet mode; never the idea."""
        assert email(view())["Subject"] == "Date night from your jar"
        discreet = email(view(discreet=True))
        assert discreet["Subject"] == "A reminder from your app"
        assert "Picnic" not in str(discreet["Subject"])

    def test_a_catalog_date_night_has_no_jar_block(self) -> None:
        """Without a jar idea the label does not appear."""
        text, html = parts(email(view(jar_idea=None)))
        assert "From your date jar:" not in text
        assert "From your date jar:" not in html


class TestJarPush:
    def test_the_push_says_the_idea_came_from_their_jar(self) -> None:
        """Push body: whose turn, the label and the idea (plain text: a push is not HTML)."""
        push = render_push(view())
        assert push["title"] == "Date night from your jar"
        assert push["body"] == f"Sam's turn to plan: From your date jar: {IDEA.text}"

    def test_discreet_mode_keeps_the_idea_off_the_lock_screen(self) -> None:
        """Discreet: neutral title, and a body without the idea."""
        push = render_push(view(discreet=True))
        assert push["title"] == "Reminder"
        assert "Picnic" not in push["body"]


class TestJarItem:
    def test_content_id_names_the_idea_not_its_text(self) -> None:
        """The outcome's content id is jar:<idea id>, at most 64 characters."""
        item = jar_item(JarIdea("x" * 48, "Some idea", "sam"), "en")
        assert item.id == "jar:" + "x" * 48
        assert len(item.id) <= 64
        assert "Some idea" not in (item.title + item.body)
