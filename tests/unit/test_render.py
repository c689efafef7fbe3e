"""Specification of couples_nudge.notifier.render: a chosen item as an email and a push payload.

Interface strings are the English ones from templates/en/strings.toml. In HTML, Jinja2's
autoescape writes < > & " ' as &lt; &gt; &amp; &#34; &#39;.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email.message import EmailMessage
from html import unescape
from typing import Any

import pytest

from couples_nudge.notifier import render
from couples_nudge.notifier.catalog import Item, load_catalog
from couples_nudge.notifier.render import (
    NudgeView,
    PageState,
    deep_link,
    render_email,
    render_push,
    render_unsubscribe_page,
    view_for,
)
from couples_nudge_schemas import NudgeKind, PreferencesSetData

WHEN = datetime(2026, 6, 10, 7, 0, tzinfo=UTC)  # a Wednesday
SENDER = "Nudges <nudges@example.org>"
UNSUBSCRIBE = "https://nudges.example.org/u/c1/maya?sig=abc&k=all"
TRICKY = '<b>Sam & "Jo"</b>'
TRICKY_HTML = "&lt;b&gt;Sam &amp; &#34;Jo&#34;&lt;/b&gt;"
# 40 characters, the longest name the schema accepts, with every HTML-special character.
LONGEST = "Zoë 'Z' <Ó Briain> & Anne-Marie \"Łukasz\""

APPRECIATION = Item(
    id="ap-test",
    kind="appreciation",
    title="Say a specific thank you",
    body="Tell {receiver} one thing you noticed today. Signed, {giver}",
    detail="Small and specific beats grand and vague.",
    focus=frozenset({"emotional"}),
    love_languages=frozenset({"words_of_affirmation"}),
)
DATE_NIGHT = Item(
    id="dn-test",
    kind="date_night",
    title="Cook something new together",
    body="Pick a cuisine neither of you has cooked before and make it together.",
    detail="",
    focus=frozenset({"experiential"}),
    love_languages=frozenset(),
)


def view(item: Item = APPRECIATION, **changes: Any) -> NudgeView:
    fields: dict[str, Any] = {
        "kind": item.kind,
        "item": item,
        "recipient": "Maya",
        "partner": "Sam",
    }
    return NudgeView(**(fields | changes))


def email(v: NudgeView, *, post: bool = False) -> EmailMessage:
    return render_email(
        v, sender=SENDER, to="Maya <maya@example.org>", when=WHEN, list_unsubscribe_post=post
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    """(plain text, html) bodies, decoded."""
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage)
    assert isinstance(html, EmailMessage)
    return str(text.get_content()), str(html.get_content())


class TestEmailStructure:
    def test_multipart_alternative(self) -> None:
        """An email is multipart/alternative: plain text first, then HTML, both UTF-8."""
        message = email(view())
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
        assert {p.get_content_charset() for p in message.iter_parts()} == {"utf-8"}

    def test_headers(self) -> None:
        """Sender, recipient, date, an auto-generated marker and a Message-ID at our domain."""
        message = email(view())
        assert message["From"] == SENDER
        assert message["To"] == "Maya <maya@example.org>"
        assert message["Date"] == "Wed, 10 Jun 2026 07:00:00 +0000"
        assert message["Auto-Submitted"] == "auto-generated"
        assert str(message["Message-ID"]).startswith("<")
        assert str(message["Message-ID"]).endswith("@example.org>")

    def test_subject_is_item_title(self) -> None:
        """Outside discreet mode, the subject is the item's title."""
        assert email(view())["Subject"] == "Say a specific thank you"

    def test_greeting_body_detail_and_footer(self) -> None:
        """Both parts greet the recipient, carry the body and tip, and say why they get it."""
        for part in parts(email(view())):
            assert "A moment of appreciation" in part
            assert "Hi Maya," in part
            assert "Tell Sam one thing you noticed today. Signed, Maya" in part
            assert "Small and specific beats grand and vague." in part
            assert "You get these nudges because you and Sam set them up together." in part

    @pytest.mark.parametrize(
        ("kind", "heading"),
        [
            ("date_night", "Date night"),
            ("check_in", "Time for a check-in"),
            ("appreciation", "A moment of appreciation"),
        ],
    )
    def test_heading_per_kind(self, kind: NudgeKind, heading: str) -> None:
        """The text part opens with the kind's heading."""
        item = load_catalog().items(kind)[0]
        text, html = parts(email(view(item)))
        assert text.startswith(f"{heading}\n")
        assert f">{heading}</td>" in html

    @pytest.mark.parametrize(
        ("locale", "lang"), [("en", "en"), ("en-GB", "en-GB"), ("en-US", "en-US"), ("fr-CA", "en")]
    )
    def test_html_language(self, locale: str, lang: str) -> None:
        """The HTML declares the language it is written in: the recipient's locale when its
        language serves it, else the fallback's (fr-CA without French strings reads en)."""
        text, html = parts(email(view(locale=locale)))
        assert f'<html lang="{lang}">' in html
        assert "Hi Maya," in text


class TestEscaping:
    def test_recipient_name(self) -> None:
        """A recipient's name is escaped in HTML and verbatim in plain text."""
        text, html = parts(email(view(recipient=TRICKY)))
        assert f"Hi {TRICKY}," in text
        assert f"Hi {TRICKY_HTML}," in html
        assert "<b>Sam" not in html

    def test_partner_name_in_body_and_footer(self) -> None:
        """The other partner's name is escaped wherever it appears in HTML."""
        text, html = parts(email(view(partner=TRICKY)))
        assert f"Tell {TRICKY} one thing" in text
        assert f"you and {TRICKY} set them up" in text
        assert f"Tell {TRICKY_HTML} one thing" in html
        assert f"you and {TRICKY_HTML} set them up" in html
        assert "<b>Sam" not in html
        assert '"Jo"' not in html

    def test_turn_name(self) -> None:
        """The name in the turn line is escaped in HTML too."""
        text, html = parts(email(view(DATE_NIGHT, turn=TRICKY)))
        assert f"It's {TRICKY}'s turn to plan this one." in text
        assert f"It&#39;s {TRICKY_HTML}&#39;s turn to plan this one." in html

    def test_unsubscribe_url(self) -> None:
        """The unsubscribe URL's & is escaped in the HTML link and kept in the text part."""
        text, html = parts(email(view(unsubscribe_url=UNSUBSCRIBE)))
        assert f"Unsubscribe from these nudges: {UNSUBSCRIBE}" in text
        assert 'href="https://nudges.example.org/u/c1/maya?sig=abc&amp;k=all"' in html

    def test_push_is_plain_text(self) -> None:
        """Push payloads carry names verbatim: they are not HTML."""
        assert render_push(view(partner=TRICKY))["body"].startswith(f"Tell {TRICKY} one thing")


class TestDiscreet:
    def test_neutral_subject(self) -> None:
        """In discreet mode the subject says nothing about the nudge."""
        message = email(view(discreet=True))
        assert message["Subject"] == "A reminder from your app"
        _, html = parts(message)
        assert "<title>A reminder from your app</title>" in html
        assert "Say a specific thank you" not in str(message["Subject"])

    def test_neutral_push_title(self) -> None:
        """In discreet mode the push title is neutral."""
        assert render_push(view(discreet=True))["title"] == "Reminder"

    def test_normal_push_title(self) -> None:
        """Otherwise the push title is the item's title."""
        assert render_push(view())["title"] == "Say a specific thank you"

    @pytest.mark.parametrize("item", [APPRECIATION, DATE_NIGHT], ids=lambda i: i.kind)
    def test_nothing_on_a_lock_screen_or_in_an_inbox_list(self, item: Item) -> None:
        """Push title and body, subject and inbox preview carry none of the item's title, body
        or tip, no name and no turn; the opened email still has the content."""
        v = view(item, discreet=True, recipient="Maya", partner="Sammy", turn="Sammy")
        message = email(v)
        _, html = parts(message)
        preheader = html.split('opacity:0;">', 1)[1].split("&#8199;", 1)[0]
        push = render_push(v)
        outside = [push["title"], push["body"], str(message["Subject"]), preheader]
        assert outside == [
            "Reminder",
            "Open the app to see it.",
            "A reminder from your app",
            "Open to read it.",
        ]
        secrets = [item.title, v.body, "Maya", "Sammy", "turn"]
        for shown in outside:
            for secret in secrets:
                assert secret.lower() not in shown.lower()
        assert v.body in html


class TestTurnLine:
    @pytest.mark.parametrize(
        ("turn", "is_recipient", "line"),
        [
            ("Maya", True, "It's your turn to plan this one."),
            ("Sam", False, "It's Sam's turn to plan this one."),
        ],
    )
    def test_whose_turn(self, turn: str, is_recipient: bool, line: str) -> None:
        """The recipient reads "your turn" when it is theirs, else the other partner's name."""
        text, html = parts(email(view(DATE_NIGHT, turn=turn, turn_is_recipient=is_recipient)))
        assert line in text
        assert line.replace("'", "&#39;") in html

    def test_no_turn(self) -> None:
        """Without a turn there is no turn line."""
        for part in parts(email(view(DATE_NIGHT))):
            assert "turn to plan" not in part
        assert "turn" not in render_push(view(DATE_NIGHT))["body"]

    @pytest.mark.parametrize(
        ("turn", "is_recipient", "start"),
        [("Maya", True, "Your turn to plan: Pick"), ("Sam", False, "Sam's turn to plan: Pick")],
    )
    def test_push_says_whose_turn(self, turn: str, is_recipient: bool, start: str) -> None:
        """A date-night push starts with whose turn it is, before the idea."""
        v = view(DATE_NIGHT, turn=turn, turn_is_recipient=is_recipient)
        assert render_push(v)["body"].startswith(start)

    def test_a_long_push_is_cut_at_a_word(self) -> None:
        """A 160-character idea after a 40-character name stays within 200 characters."""
        long = replace(DATE_NIGHT, body="word " * 31 + "end.")
        body = render_push(view(long, turn=LONGEST))["body"]
        assert len(body) <= 200
        assert body.endswith("word\u2026")


class TestAppreciationBody:
    def test_about_the_receiver_for_the_giver(self) -> None:
        """{receiver} is the other partner, {giver} the recipient of the nudge."""
        assert view(recipient="Maya", partner="Sam").body == (
            "Tell Sam one thing you noticed today. Signed, Maya"
        )
        assert view(recipient="Sam", partner="Maya").body == (
            "Tell Maya one thing you noticed today. Signed, Sam"
        )

    def test_catalog_items_name_the_receiver(self) -> None:
        """Every appreciation in the catalog names the other partner and no placeholder is left."""
        for item in load_catalog().items("appreciation"):
            body = view(item, recipient="Maya", partner="Samwise").body
            assert "Samwise" in body
            assert "{" not in body

    def test_names_are_not_reformatted(self) -> None:
        """A name that looks like a placeholder is inserted as it is."""
        assert view(partner="{giver}").body.startswith("Tell {giver} one thing")


class TestListUnsubscribe:
    def test_without_url(self) -> None:
        """Without an unsubscribe URL there are no List-Unsubscribe headers and no link."""
        message = email(view(), post=True)
        assert "List-Unsubscribe" not in message
        assert "List-Unsubscribe-Post" not in message
        for part in parts(message):
            assert "Unsubscribe from these nudges" not in part

    def test_with_url(self) -> None:
        """With a URL, List-Unsubscribe names it in angle brackets and the footer links to it."""
        message = email(view(unsubscribe_url=UNSUBSCRIBE))
        assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
        assert "List-Unsubscribe-Post" not in message
        _, html = parts(message)
        assert ">Unsubscribe from these nudges</a>" in html

    def test_one_click(self) -> None:
        """RFC 8058 one-click adds List-Unsubscribe-Post when asked for."""
        message = email(view(unsubscribe_url=UNSUBSCRIBE), post=True)
        assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


class TestPush:
    def test_payload(self) -> None:
        """A push carries title, body, the deep link and the kind."""
        payload = render_push(view(link="https://app.example.org/n/1"))
        assert payload == {
            "title": "Say a specific thank you",
            "body": "Tell Sam one thing you noticed today. Signed, Maya",
            "url": "https://app.example.org/n/1",
            "kind": "appreciation",
        }


def _every_item() -> list[Item]:
    catalog = load_catalog()
    return [i for kind in ("date_night", "check_in", "appreciation") for i in catalog.items(kind)]


class TestWholeCatalog:
    def test_longest_name_is_forty(self) -> None:
        """The long test name is exactly the schema's maximum length."""
        assert len(LONGEST) == 40

    @pytest.mark.parametrize("discreet", [False, True], ids=["normal", "discreet"])
    @pytest.mark.parametrize("item", _every_item(), ids=lambda i: i.id)
    def test_renders(self, item: Item, discreet: bool) -> None:
        """Every catalog item renders as email and push, with 40-character names escaped in
        HTML, no placeholder left, and a push body of at most 200 characters."""
        v = view(
            item,
            recipient=LONGEST,
            partner=LONGEST,
            turn=LONGEST if item.kind == "date_night" else None,
            discreet=discreet,
            unsubscribe_url=UNSUBSCRIBE,
        )
        text, html = parts(email(v, post=True))
        push = render_push(v)
        assert f"Hi {LONGEST}," in text
        assert "<&#211; Briain>" not in html
        assert "&lt;&#211; Briain&gt;" in html  # escaped, and ASCII: see TestAsciiHtml
        assert "{receiver}" not in text + html + push["body"]
        assert "{giver}" not in text + html + push["body"]
        assert len(push["body"]) <= 200
        assert 0 < len(push["title"]) <= 40


class TestHeadline:
    def test_title_under_the_heading(self) -> None:
        """Both parts show the kind's heading and then the item's title as the headline."""
        text, html = parts(email(view()))
        assert text.startswith("A moment of appreciation\nSay a specific thank you\n")
        assert ">Say a specific thank you</h1>" in html

    def test_tip_is_labelled(self) -> None:
        """The detail is introduced as a tip."""
        text, html = parts(email(view()))
        assert "A tip: Small and specific beats grand and vague." in text
        assert ">A tip</h2>" in html


def preheader(html: str) -> str:
    """The hidden text an inbox shows beside the subject."""
    start = html.index('<div style="display:none;')
    return html[html.index(">", start) + 1 : html.index("&#8199;", start)]


class TestPreheader:
    def test_is_the_body(self) -> None:
        """The inbox preview shows the nudge itself, escaped."""
        _, html = parts(email(view(partner=TRICKY)))
        assert preheader(html) == f"Tell {TRICKY_HTML} one thing you noticed today. Signed, Maya"

    def test_neutral_when_discreet(self) -> None:
        """In discreet mode the preview is as neutral as the subject."""
        _, html = parts(email(view(discreet=True)))
        assert preheader(html) == "Open to read it."


PROFILE = PreferencesSetData.model_validate(
    {
        "couple_id": "c1",
        "revision": 1,
        "partners": [
            {
                "partner_id": "p1",
                "name": "Maya",
                "timezone": "UTC",
                "locale": "en-GB",
                "channels": ["email"],
                "email": "maya@example.org",
            },
            {"partner_id": "p2", "name": "Sam", "timezone": "UTC", "channels": ["webhook"]},
        ],
        "nudges": {},
        "discreet": True,
    },
    strict=False,
)


class TestViewFor:
    def test_names_and_settings_from_the_profile(self) -> None:
        """The recipient, the other partner, locale and discreet mode come from the profile."""
        v = view_for(
            PROFILE,
            "p1",
            "appreciation",
            APPRECIATION,
            link="https://l",
            unsubscribe_url="https://u",
        )
        assert (v.recipient, v.partner, v.locale, v.discreet) == ("Maya", "Sam", "en-GB", True)
        assert (v.link, v.unsubscribe_url, v.turn) == ("https://l", "https://u", None)

    @pytest.mark.parametrize(
        ("recipient", "turn", "name", "mine"),
        [("p1", "p1", "Maya", True), ("p1", "p2", "Sam", False), ("p2", "p1", "Maya", False)],
    )
    def test_turn(self, recipient: str, turn: str, name: str, mine: bool) -> None:
        """The turn names a partner; it is "yours" exactly for that partner."""
        v = view_for(PROFILE, recipient, "date_night", DATE_NIGHT, turn=turn)
        assert (v.turn, v.turn_is_recipient) == (name, mine)

    @pytest.mark.parametrize("turn", [None, "", "p1", "p2", "p9"])
    def test_every_field_as_the_keyword_view(self, turn: str | None) -> None:
        """view_for builds its NudgeView by position (tuple.__new__): equal, field by field,
        to the keyword construction it replaced."""
        when = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
        actions = (("done", "https://a/d"), ("skip", "https://a/s"))
        v = view_for(
            PROFILE,
            "p2",
            "date_night",
            DATE_NIGHT,
            turn=turn,
            link="https://l",
            unsubscribe_url="https://u",
            jar_idea="a picnic",
            manage_url="https://m",
            support_url="https://s",
            when=when,
            actions=actions,
        )
        names = {"p1": "Maya", "p2": "Sam"}
        expected = NudgeView(
            kind="date_night",
            item=DATE_NIGHT,
            recipient="Sam",
            partner="Maya",
            turn=names.get(turn) if turn else None,
            turn_is_recipient=turn == "p2",
            discreet=True,
            locale=PROFILE.partners[1].locale,
            link="https://l",
            unsubscribe_url="https://u",
            jar_idea="a picnic",
            manage_url="https://m",
            support_url="https://s",
            when=when,
            timezone="UTC",
            actions=actions,
        )
        assert type(v) is NudgeView
        assert v._asdict() == expected._asdict()
        # view_of, the delivery's positional call (h/notify14), gives the same view.
        by_position = render.view_of(
            PROFILE, "p2", "date_night", DATE_NIGHT, turn, "https://l", "https://u", "a picnic",
            "https://m", "https://s", when, actions,
        )  # fmt: skip
        assert by_position._asdict() == expected._asdict()


class TestViewFields:
    def test_the_order_render_unpacks(self) -> None:
        """render_email_bytes and _per_message unpack `view[:]` in this order, and view_for
        builds a view by position: a field moved or added must change them too."""
        assert NudgeView._fields == (
            "kind",
            "item",
            "recipient",
            "partner",
            "turn",
            "turn_is_recipient",
            "discreet",
            "locale",
            "link",
            "unsubscribe_url",
            "jar_idea",
            "manage_url",
            "support_url",
            "when",
            "timezone",
            "actions",
        )


class TestFixedByIdentity:
    def test_the_item_itself_finds_its_fixed_values(self) -> None:
        """render_email_bytes finds an item's _Fixed by the item's identity, held in the entry:
        the lru_cache's own _Fixed; an entry holding another item is never used."""
        v = view(DATE_NIGHT, turn="Sam", when=WHEN, unsubscribe_url=UNSUBSCRIBE)
        first = parts(email(v))
        key = (id(DATE_NIGHT), v.locale, v.kind, v.discreet)
        seen = render._FIXED_SEEN[key]
        assert seen.item is DATE_NIGHT
        assert seen.fixed is render._fixed(v.locale, v.kind, DATE_NIGHT, v.discreet)
        # Another item under this id (as if the id were reused): not this item's values.
        other = replace(DATE_NIGHT, title="Another title")
        other_fixed = render._fixed(v.locale, v.kind, other, v.discreet)
        render._FIXED_SEEN[key] = render._SeenItem(other, other_fixed)
        assert parts(email(v)) == first
        assert render._FIXED_SEEN[key].item is DATE_NIGHT


class TestDeepLink:
    def test_ids_are_percent_encoded(self) -> None:
        """Placeholders are filled in; ids are encoded so they stay one path/query component."""
        link = deep_link(
            "https://app.example.org/n/{kind}?o={occurrence_id}&c={couple_id}",
            kind="check_in",
            couple_id="c1",
            occurrence_id="c1/m/both@1796000000",
        )
        assert link == "https://app.example.org/n/check_in?o=c1%2Fm%2Fboth%401796000000&c=c1"

    def test_none_without_template(self) -> None:
        """Without a configured template a push has no link."""
        assert deep_link(None, kind="check_in", couple_id="c1", occurrence_id="x") is None


class TestUnsubscribePage:
    def test_action_urls_are_escaped(self) -> None:
        """Form actions are attribute-escaped."""
        page = render_unsubscribe_page(
            "confirm", scope="check_in", action_url='https://x/"><b>', all_url="https://x/a&b"
        )
        assert 'action="https://x/&#34;&gt;&lt;b&gt;"' in page
        assert 'action="https://x/a&amp;b"' in page
        assert "Stop check-in nudges?" in page

    @pytest.mark.parametrize("state", ["done", "invalid", "error"])
    def test_only_the_confirmation_has_buttons(self, state: PageState) -> None:
        """Done, invalid and error pages offer no form, even if given URLs."""
        page = render_unsubscribe_page(
            state, scope="all", action_url="https://x/1", all_url="https://x/2"
        )
        assert "<form" not in page


GUIDE = Item(
    id="ci-test-guide",
    kind="check_in",
    title="A monthly check-in",
    body="Talk about the month together.",
    detail="",
    focus=frozenset({"emotional"}),
    love_languages=frozenset(),
    format="monthly_guide",
    steps=("Say thanks & why", "Listen, then say back <what> you heard", "Plan one thing"),
)


class TestAgenda:
    def test_steps_as_a_numbered_list(self) -> None:
        """A guide's steps follow the body as a numbered agenda, escaped in HTML."""
        text, html = parts(email(view(GUIDE, kind="check_in")))
        assert (
            "Talk about the month together.\n\nYour check-in, step by step\n"
            "1. Say thanks & why\n2. Listen, then say back <what> you heard\n3. Plan one thing\n"
        ) in text
        assert ">Your check-in, step by step</h2>\n<ol" in html
        assert '<li\nstyle="margin:0 0 4px 0;">Say thanks &amp; why</li>' in html
        assert "say back &lt;what&gt; you heard" in html

    @pytest.mark.parametrize("item", [APPRECIATION, DATE_NIGHT])
    def test_no_agenda_without_steps(self, item: Item) -> None:
        """Items without steps have no agenda block."""
        for part in parts(email(view(item))):
            assert "step by step" not in part

    def test_not_in_push(self) -> None:
        """A push carries the body only; the agenda is for the email."""
        assert render_push(view(GUIDE, kind="check_in"))["body"] == "Talk about the month together."

    def test_catalog_guide_in_uk_english(self) -> None:
        """An en-GB partner's agenda comes from the variant table like the rest of the item."""
        (item,) = [
            i for i in load_catalog().items("check_in", "en-GB") if i.id == "ci-monthly-home"
        ]
        text, _ = parts(email(view(item, kind="check_in", locale="en-GB")))
        assert "your favourite and least favourite spot" in text
        assert "favorite" not in text


# Four one-tap answers with links as long as actions.py signs them (~200 characters).
ANSWERS = tuple(
    (action, f"https://nudges.example.org/a/{action}/" + "k" * 180)
    for action in ("done", "skip", "snooze", "more")
)


class TestAsciiHtml:
    """The HTML part is ASCII: other characters as numeric character references (render.py),
    so it needs no transfer encoding; a browser reads the same text."""

    def test_references_read_back_as_the_characters(self) -> None:
        """Names, a no-break space in the time, German text: ASCII, and the same text once
        the references are read; sent as 7bit when no line is too long for it."""
        (item,) = [i for i in load_catalog().items("check_in", "de") if i.id == "ci-monthly-home"]
        for v, encoding in (
            (view(recipient=LONGEST, partner="Zoë"), "7bit"),
            (view(DATE_NIGHT, kind="date_night", when=WHEN, locale="en-US"), "7bit"),
            # Its agenda, once written as references, is over 998 characters: a line a step.
            (view(item, kind="check_in", locale="de"), "7bit"),
            # The one-tap answers, four signed links: a line a button.
            (view(DATE_NIGHT, kind="date_night", when=WHEN, actions=ANSWERS), "7bit"),
            # One line too long for 7bit, whatever the template does: base64.
            (view(recipient="Zoë " + "x" * 1000), "base64"),
        ):
            message = email(v)
            rich = message.get_body(("html",))
            assert rich is not None
            assert rich["Content-Transfer-Encoding"] == encoding
            _, html = parts(message)
            assert html.isascii()
            assert "&#" in html
        _, html = parts(email(view(recipient=LONGEST)))
        assert "Hi Zo&#235; &#39;Z&#39; &lt;&#211; Briain&gt;" in html
        assert f"Hi {LONGEST}," in unescape(html)


class TestGerman:
    """A German partner (de, de-AT, de-CH) gets the German catalog and templates/de strings."""

    @pytest.mark.parametrize("locale", ["de", "de-AT"])
    def test_email_in_german(self, locale: str) -> None:
        """Heading, agenda label, footer and the item itself are German."""
        (item,) = [i for i in load_catalog().items("check_in", locale) if i.id == "ci-monthly-home"]
        text, html = parts(email(view(item, kind="check_in", locale=locale)))
        assert f'<html lang="{locale}">' in html  # the partner's own locale, for hyphenation
        assert "Hallo Maya," in text  # the greeting is a string of the language too
        for part in (text, unescape(html)):  # the HTML's ü is &#252; (TestAsciiHtml)
            assert "Zeit für euren Check-in" in part
            assert "Euer Check-in, Schritt für Schritt" in part
            assert "weil Sam und du sie gemeinsam eingerichtet habt" in part
            assert item.steps[0].split(",")[0] in part

    def test_push_and_turn_line(self) -> None:
        """A discreet German push is neutral; the turn line names who plans."""
        v = view(DATE_NIGHT, kind="date_night", locale="de", turn="Sam")
        assert "Diesmal ist Sam mit dem Planen dran." in parts(email(v))[0]
        assert render_push(view(DATE_NIGHT, locale="de", discreet=True))["title"] == "Erinnerung"

    def test_unsubscribe_page(self) -> None:
        """The unsubscribe page asks in German, with the scope in its sentence."""
        page = render_unsubscribe_page(
            "confirm", scope="all", action_url="https://x/1", locale="de"
        )
        assert "Möchtest du alle Impulse abbestellen?" in page
        assert '<html lang="de">' in page


def _spanish_items() -> list[Item]:
    kinds: tuple[NudgeKind, ...] = ("date_night", "check_in", "appreciation")
    return [item for kind in kinds for item in load_catalog().items(kind, "es")]


class TestSpanish:
    """A Spanish-speaking partner (es, es-MX, ...) gets the es catalog, strings and greeting."""

    @pytest.mark.parametrize("locale", ["es", "es-MX"])
    def test_email_in_spanish(self, locale: str) -> None:
        """Heading, greeting, agenda label, footer and html lang are Spanish."""
        (item,) = [i for i in load_catalog().items("check_in", locale) if i.id == "ci-monthly-home"]
        text, html = parts(email(view(item, kind="check_in", locale=locale)))
        assert f'<html lang="{locale}">' in html
        assert text.startswith("Hora de hablar\n¿Cómo se siente la casa?\n")
        assert "¡Hola, Maya!" in text
        assert "Tu charla, paso a paso\n1. " in text
        assert "porque los configuraste junto con Sam." in text
        assert "Hi Maya" not in text + html

    def test_whose_turn(self) -> None:
        """The turn line names the planner in Spanish."""
        text, _ = parts(email(view(DATE_NIGHT, kind="date_night", locale="es", turn="Sam")))
        assert "Esta vez le toca organizar a Sam." in text

    def test_unsubscribe_page(self) -> None:
        """The unsubscribe page speaks Spanish too."""
        page = render_unsubscribe_page("confirm", scope="check_in", locale="es")
        assert '<html lang="es">' in page
        assert "¿Dejar de recibir los recordatorios de charlas?" in page

    @pytest.mark.parametrize("item", _spanish_items(), ids=lambda i: i.id)
    def test_every_item_renders(self, item: Item) -> None:
        """Every es item renders with 40-character names, no placeholder left."""
        v = view(item, recipient=LONGEST, partner=LONGEST, locale="es", discreet=False)
        text, html = parts(email(v))
        push = render_push(v)
        assert f"¡Hola, {LONGEST}!" in text
        assert "{receiver}" not in text + html + push["body"]
        assert 0 < len(push["title"]) <= 40
