"""An email rendered through its plan (render.py: fixed values written in once per item and
language, the text's static lines quoted-printable once) is byte for byte the email of the
reference: Jinja on the whole context, as the notifier rendered it before plans."""

from __future__ import annotations

import binascii
import email
import email.policy
import itertools
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import markupsafe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from couples_nudge.notifier import mime, render
from couples_nudge.notifier.actions import ONE_TAP
from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.locales import format_when, html_lang, strings_for, template_for
from couples_nudge.notifier.mime import PlannedHtml, QpPlan, SevenBitPlan, build_email
from couples_nudge.notifier.render import (
    _PREHEADER_PAD,
    NudgeView,
    _actions_row,
    _agenda,
    _email_part,
    _env,
    _fixed,
    _row,
    action_title,
    message_domain,
    render_email_bytes,
)
from couples_nudge.notifier.skeleton import ascii_refs
from couples_nudge_schemas import NudgeKind

KINDS: tuple[NudgeKind, ...] = ("date_night", "check_in", "appreciation")
LOCALES = ("en", "de", "es", "en-GB", "de-AT", "fr")
ITEMS = [
    load_catalog().localized(item, locale)
    for kind in KINDS
    for item in load_catalog().items(kind)[:6]
    for locale in LOCALES
]
# Any text a partner could give, and more: newlines, CR, tabs, dots, "=", no-break spaces,
# what HTML escapes, emoji; lines near quoted-printable's 76 characters.
TEXT = st.lists(
    st.sampled_from([*"ab .=\t\n\r_<>&'\"{}", "\u00a0", "\u00fc", "\U0001f496", "x" * 30, "\x00"]),
    max_size=12,
).map("".join)
NAME = st.one_of(st.sampled_from(["Alex", "Sam", "Jo & Kim", "Zoë", "O'Brien"]), TEXT)
URL = st.one_of(st.none(), st.just("https://x.test/u?t=a&b=<c>"), st.just("https://a.test/n"))


@st.composite
def views(draw: st.DrawFn) -> NudgeView:
    item = draw(st.sampled_from(ITEMS))
    if draw(st.booleans()):  # a body that names the partners, or any text at all
        item = replace(item, body=draw(st.sampled_from(["{receiver}!", "{giver} {receiver}"])))
    if draw(st.booleans()):
        item = replace(item, title=draw(TEXT), detail=draw(TEXT))
    recipient, partner = draw(NAME), draw(NAME)
    locale = draw(st.sampled_from(LOCALES))
    return NudgeView(
        kind=item.kind,
        item=item,
        recipient=recipient,
        partner=partner,
        turn=draw(st.sampled_from([None, recipient, partner])),
        turn_is_recipient=draw(st.booleans()),
        discreet=draw(st.booleans()),
        locale=locale,
        link=draw(URL),
        unsubscribe_url=draw(URL),
        jar_idea=draw(st.none() | TEXT),
        manage_url=draw(URL),
        support_url=draw(URL),
        when=draw(st.none() | st.just(datetime(2026, 12, 4, 18, tzinfo=UTC))),
        timezone=draw(st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"])),
        actions=draw(
            st.sampled_from([(), (("done", "https://x.test/a/1"), ("more", "<m>&"))])
            | st.lists(st.tuples(st.sampled_from(["done", "snooze"]), TEXT), max_size=3).map(tuple)
        ),
    )


def _reference_row(
    locale: str, kind: NudgeKind, actions: tuple[tuple[str, str], ...]
) -> tuple[str, str]:
    """render._actions_row as it was before its row plans: both small templates per email."""
    label = strings_for(locale)["actions"]["label"]
    rows = [{"title": action_title(locale, kind, a), "url": url} for a, url in actions]
    text = _env().get_template(template_for(locale, "actions.txt.j2"))
    html = _env().get_template(template_for(locale, "actions.html.j2"))
    return text.render(label=label, actions=rows), html.render(label=label, actions=rows)


def _turn_line(view: NudgeView, s: Mapping[str, Any]) -> str | None:
    """render._turn_line as it was before `_per_message` wrote it inline (the reference)."""
    if view.turn is None:
        return None
    if view.turn_is_recipient:
        return str(s["turn"]["yours"])
    return str(s["turn"]["partner"]).format(name=view.turn)


def _reference_context(view: NudgeView) -> dict[str, Any]:
    """render._context as it was before plans (kept here as the reference)."""
    s = strings_for(view.locale)
    steps = view.item.steps
    agenda_text, agenda_html = _agenda(view.locale, steps) if steps else ("", "")
    shown_when = view.when if view.kind != "appreciation" else None
    counselling = view.kind == "check_in" or view.item.hard_topic
    actions_text, actions_html = (
        _reference_row(view.locale, view.kind, view.actions) if view.actions else ("", "")
    )
    body = view.body
    return {
        "lang": html_lang(view.locale),
        "subject": str(s["discreet"]["subject"]) if view.discreet else view.item.title,
        "preheader": s["discreet"]["preheader"] if view.discreet else body,
        "preheader_pad": _PREHEADER_PAD,
        "heading": s["heading"][view.kind],
        "title": view.item.title,
        "when_line": format_when(shown_when, view.timezone, view.locale, s["email"]["when"])
        if shown_when is not None
        else None,
        "greeting": s["email"]["greeting"].format(name=view.recipient),
        "recipient": view.recipient,
        "body": body,
        "detail": view.item.detail,
        "agenda_text": agenda_text,
        "agenda_html": agenda_html,
        "tip_label": s["email"]["tip"],
        "turn_line": _turn_line(view, s),
        "cta_url": view.link,
        "cta_label": s["cta"][view.kind],
        "footer_why": s["footer"]["why"].format(partner=view.partner),
        "footer_unsubscribe": s["footer"]["unsubscribe"],
        "footer_counselor": s["footer"]["counselor"] if counselling else None,
        "footer_support": s["footer"]["support"],
        "support_label": s["footer"]["support_link"],
        "support_url": view.support_url,
        "manage_label": s["footer"]["manage"],
        "manage_url": view.manage_url,
        "unsubscribe_url": view.unsubscribe_url,
        "jar_label": s["jar"]["label"],
        "jar_idea": view.jar_idea,
        "actions_text": actions_text,
        "actions_html": markupsafe.Markup(actions_html),  # noqa: S704 (autoescaped by Jinja2)
    }


def _reference(view: NudgeView, **kw: Any) -> bytes:
    """The email by Jinja on the whole context, through build_email as before plans."""
    ctx = _reference_context(view)
    text = _env().get_template(template_for(view.locale, "email.txt.j2")).render(ctx)
    html = _env().get_template(template_for(view.locale, "email.html.j2")).render(ctx)
    extra = [("Auto-Submitted", "auto-generated")]
    if view.unsubscribe_url:
        extra.append(("List-Unsubscribe", f"<{view.unsubscribe_url}>"))
        extra.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return build_email(
        subject=ctx["subject"],
        text=text,
        html=ascii_refs(html),
        extra_headers=extra,
        message_domain=message_domain(kw["sender"]),
        **{k: v for k, v in kw.items() if k != "list_unsubscribe_post"},
    )


@pytest.fixture(autouse=True)
def _fixed_serials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both renderings of an email get the same boundary (a serial per message)."""
    monkeypatch.setattr(mime, "_SERIALS", itertools.repeat(7))


KW: dict[str, Any] = {
    "sender": "Nudges <nudges@example.test>",
    "to_name": "Alex",
    "to_address": "alex@example.test",
    "when": datetime(2026, 12, 4, 18, 0, 5, tzinfo=UTC),
    "list_unsubscribe_post": True,
}


class TestEmailPlans:
    @settings(max_examples=400, deadline=None)
    @given(view=views())
    def test_the_email_is_the_reference_s_for_any_view(self, view: NudgeView) -> None:
        """Learning a plan, and every email of a plan seen before: the reference's bytes."""
        expected = _reference(view, **KW)
        assert render_email_bytes(view, **KW) == expected
        assert render_email_bytes(view, **KW) == expected

    def test_benchmark_like_emails_go_through_plans(self) -> None:
        """A date night in English (a no-break space in its time: quoted-printable) is
        rendered by its plan, so the speed-up is real, not a silent fallback."""
        item = load_catalog().items("date_night")[0]
        # Earlier tests' random views are not this test's: their plans (some shapes have
        # none) and their skeleton shapes (each renderer learns at most 512, then falls back
        # to Jinja) would decide what it sees, by the order the tests run in.
        _fixed.cache_clear()
        render._FIXED_SEEN.clear()  # what render_email_bytes finds first (by identity)
        _email_part.cache_clear()
        for name in ("Alex", "Sam", "Zoë"):
            view = NudgeView(
                kind="date_night",
                item=item,
                recipient=name,
                partner="Sam",
                turn=name,
                turn_is_recipient=True,
                when=datetime(2026, 12, 4, 18, tzinfo=UTC) + timedelta(hours=len(name)),
                timezone="Europe/Berlin",
            )
            assert render_email_bytes(view, **KW) == _reference(view, **KW)
        plans = _fixed("en", "date_night", item, False).plans
        assert plans
        assert all(plan is not None for plan in plans.values())

    def test_an_address_the_fast_head_refuses_gets_the_planned_text(self) -> None:
        """A non-ASCII address goes through the standard library (mime._slow), which takes
        the text part as a str: an email from its plan gives the reference's bytes there
        too (the plain text handed beside the encoded part is the email's)."""
        kw = {**KW, "to_address": "zo\u00eb@example.test"}
        item = load_catalog().items("date_night")[0]
        for name in ("Alex", "Zo\u00eb"):
            view = NudgeView(
                kind="date_night",
                item=item,
                recipient=name,
                partner="Sam",
                turn="Sam",
                when=datetime(2026, 12, 4, 18, tzinfo=UTC),
                timezone="Europe/Berlin",
            )
            expected = _parts(_reference(view, **kw))  # the standard library's boundaries
            for _ in range(2):  # the plan learned, then used
                assert _parts(render_email_bytes(view, **kw)) == expected

    def test_a_plan_holding_the_answers_urls_never_joins_the_row(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The answers row's stand-ins serve the plan's key; the row is joined only to learn
        the plan (then compared with the reference), not per email after it."""
        item = load_catalog().items("date_night")[0]
        joined: list[object] = []
        real = render._actions_row

        def counted(*args: Any) -> tuple[str, markupsafe.Markup]:
            joined.append(args)
            return real(*args)

        monkeypatch.setattr(render, "_actions_row", counted)
        _fixed.cache_clear()
        render._FIXED_SEEN.clear()  # what render_email_bytes finds first (by identity)
        for n in range(3):
            actions = tuple((a, f"https://x.test/a/{a}.{n}") for a in ONE_TAP)
            view = NudgeView(
                kind="date_night",
                item=item,
                recipient="Alex",
                partner="Sam",
                when=datetime(2026, 12, 4, 18, tzinfo=UTC),
                timezone="Europe/Berlin",
                actions=actions,
            )
            assert render_email_bytes(view, **KW) == _reference(view, **KW)
        plan = next(iter(_fixed("en", "date_night", item, False).plans.values()))
        assert plan is not None
        assert not plan.reads_row
        assert len(joined) == 1


def _parts(raw: bytes) -> list[str]:
    """An email's text and HTML, decoded."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    return [str(part.get_content()) for part in message.walk() if not part.is_multipart()]


class TestActionsRow:
    @settings(max_examples=300, deadline=None)
    @given(
        locale=st.sampled_from(LOCALES),
        kind=st.sampled_from(KINDS),
        actions=st.lists(
            st.tuples(st.sampled_from(["done", "skip", "snooze", "more"]), st.one_of(URL, TEXT)),
            max_size=5,
        ),
    )
    def test_the_row_is_jinja_s_for_any_urls(
        self, locale: str, kind: NudgeKind, actions: list[tuple[str, str | None]]
    ) -> None:
        """The row written from its pieces, any URLs (what HTML escapes, CR, LF, NUL): the
        text and HTML Jinja renders from the row's templates."""
        row = tuple((action, url or "") for action, url in actions)
        assert _actions_row(locale, kind, row) == _reference_row(locale, kind, row)

    def test_every_shipped_row_has_pieces(self) -> None:
        """The shipped templates show each URL once, in order: rows go through `_row`."""
        for locale, kind in itertools.product(LOCALES, KINDS):
            assert _row(locale, kind, ("done", "skip", "snooze", "more")) is not None


SAMPLE = st.lists(
    st.sampled_from([*"ab .=\t\n_", "\u00a0", "\u00fc", "x" * 25, "\x00", "\x7f"]),
    max_size=40,
).map("".join)


# Values as signed URLs are: long runs of literal characters; and what b2a_qp encodes.
URL_LIKE = st.lists(
    st.sampled_from(["https://x.test/a/", "Yz0-_.~", "x" * 70, ".", " ", "=", "\u00fc", "\n"]),
    max_size=8,
).map("".join)


@st.composite
def cut_lines_alone(
    draw: st.DrawFn,
) -> tuple[list[str], list[int], list[str], set[int]]:
    """A text whose values each end a line after a prefix: (parts, slots, values, cached)."""
    statics = draw(st.lists(SAMPLE, min_size=2, max_size=5))
    prefixes = st.sampled_from(["", "- Done: ", "p" * 74, "\u00fc: ", "a\n"])
    parts = [statics[0] + "\n" + draw(prefixes)]
    parts += ["\n" + static + "\n" + draw(prefixes) for static in statics[1:]]
    parts[-1] = parts[-1].rpartition("\n")[0] + "\n"
    slots = draw(st.lists(st.integers(0, 3), min_size=len(parts) - 1, max_size=len(parts) - 1))
    values = draw(st.lists(st.one_of(URL_LIKE, SAMPLE), min_size=4, max_size=4))
    return parts, slots, values, draw(st.sets(st.integers(0, 3)))


class TestQpPlan:
    @settings(max_examples=2000, deadline=None)
    @given(
        parts=st.lists(SAMPLE, min_size=1, max_size=6),
        values=st.lists(SAMPLE, min_size=3, max_size=3),
        data=st.data(),
    )
    def test_equals_b2a_qp_of_the_whole_text(
        self, parts: list[str], values: list[str], data: st.DataObject
    ) -> None:
        """Soft breaks at 76 characters, trailing spaces and tabs, lone dots, "=", 8-bit
        bytes: a plan's encoding is binascii.b2a_qp's of the whole text (CRLF line ends)."""
        slots = data.draw(
            st.lists(st.integers(0, 2), min_size=len(parts) - 1, max_size=len(parts) - 1)
        )
        text = parts[0] + "".join(
            values[i] + part for i, part in zip(slots, parts[1:], strict=True)
        )
        expected = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
        plan = QpPlan.plan(parts, slots)
        assert plan is not None
        encoded = plan.encode(values)
        assert encoded is not None
        assert encoded.data == expected

    @settings(max_examples=3000, deadline=None)
    @given(
        parts=st.lists(SAMPLE, min_size=1, max_size=6),
        values=st.lists(st.one_of(URL_LIKE, SAMPLE), min_size=3, max_size=3),
        data=st.data(),
    )
    def test_cut_lines_equal_b2a_qp_of_the_whole_text(
        self, parts: list[str], values: list[str], data: st.DataObject
    ) -> None:
        """A line of a static prefix (of any length, any characters) and a value in `cut`
        is encoded as b2a_qp would: long literal values cut at 76 characters, others
        (spaces at the end, "=", 8-bit, LF, NUL) through b2a_qp."""
        n = len(parts) - 1
        slots = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
        cut = data.draw(st.sets(st.integers(0, 2)))
        cached = data.draw(st.sets(st.integers(0, 2)))  # through mime._qp_line's cache or not
        for i in range(1, len(parts)):  # most values alone at the end of their line
            if data.draw(st.booleans()):
                parts[i - 1] += data.draw(st.sampled_from(["\n", "\n- Done: ", "\n" + "p" * 74]))
                parts[i] = "\n" + parts[i]
        text = parts[0] + "".join(
            values[i] + part for i, part in zip(slots, parts[1:], strict=True)
        )
        expected = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
        plan = QpPlan.plan(parts, slots, cut, cached)
        assert plan is not None
        encoded = plan.encode(values)
        assert encoded is not None
        assert encoded.data == expected

    @settings(max_examples=3000, deadline=None)
    @given(case=cut_lines_alone())
    def test_a_text_of_cut_lines_alone_equals_b2a_qp_of_the_whole_text(
        self, case: tuple[list[str], list[int], list[str], set[int]]
    ) -> None:
        """Every value alone at the end of its line (mime._CutLines: one join per email,
        every value checked at once): b2a_qp's encoding, for literal values (short or long,
        after any prefix) and for any other (spaces at the end, "=", 8-bit, LF, CR, one
        character), cached lines among them or not."""
        parts, slots, values, cached = case
        text = parts[0] + "".join(
            values[i] + part for i, part in zip(slots, parts[1:], strict=True)
        )
        plan = QpPlan.plan(parts, slots, cut=range(4), cached=cached)
        if plan is None:  # a CR or the cut character in the static text
            return
        encoded = plan.encode(values)
        if encoded is None:  # a CR in a value: the caller encodes the whole text
            assert "\r" in "".join(values[i] for i in slots) or "\x1a" in text
            return
        expected = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
        assert encoded.data == expected

    def test_a_plan_of_cut_lines_alone_joins_once(self) -> None:
        """A text whose values all end their lines is planned as _CutLines (the fast path the
        property test above compares with b2a_qp); a slot in a line's middle is not."""
        plan = QpPlan.plan(["a\n", "\n- Done: ", "\n"], [0, 1], cut=[0, 1], cached=[0])
        assert plan is not None
        assert plan.cut_lines is not None
        assert [line.slot for _, line in plan.cut_lines.cached] == [0]
        middle = QpPlan.plan(["a ", " b\n"], [0], cut=[0])
        assert middle is not None
        assert middle.cut_lines is None

    def test_a_url_alone_on_its_line_is_cut_without_b2a_qp(self) -> None:
        """A cut line's literal value is only cut into lines (76 at most, the last); the
        prefix's column counts, and 8-bit characters in it count three."""
        plan = QpPlan.plan(["\u00fc: ", "\n"], [0], cut=[0])
        assert plan is not None
        assert not plan.slots
        assert [line.first for _, line in plan.lines] == [75 - 8]
        for prefix in ["", "\u00fc: ", "p" * 74, "p" * 75, "\u00fc" * 25]:
            plan = QpPlan.plan([prefix, "\n"], [0], cut=[0])
            assert plan is not None
            for n in range(2, 320):  # every length around each soft break
                url = "https://x.test/" + "a.-" * 110
                expected = binascii.b2a_qp(f"{prefix}{url[:n]}\n".encode(), istext=True)
                encoded = plan.encode([url[:n]])
                assert encoded is not None
                assert encoded.data == expected.replace(b"\n", b"\r\n"), (prefix, n)
        assert plan.encode(["a\rb"]) is None

    def test_only_the_time_line_is_cached(self) -> None:
        """mime._qp_line's cache holds the time's line (a no-break space), never a line with
        a name: a greeting or footer with an accented name is encoded per email."""
        mime._qp_line.cache_clear()
        when = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
        for name in ("Zo\u00eb", "Ren\u00e9e"):
            view = NudgeView(
                kind="date_night",
                item=load_catalog().items("date_night")[0],
                recipient=name,
                partner="J\u00fcrgen",
                turn=name,
                when=when,
                timezone="Europe/Berlin",
            )
            render_email_bytes(
                view, sender="N <n@example.org>", to_name=name, to_address="a@b.test", when=when
            )
        # One entry: the time's line, the same for both emails; no greeting, no footer.
        assert mime._qp_line.cache_info().currsize == 1

    def test_static_lines_are_encoded_once(self) -> None:
        """Only the lines that hold a slot are left to encode per message, in one pass."""
        plan = QpPlan.plan(["a\nb ", "\nc\nd\n", ""], [0, 1])
        assert plan is not None
        assert plan.statics == (b"a\r\n", b"c\r\nd\r\n", b"")
        assert plan.parts == ("b ", "\n\x1a\n", "")
        encoded = plan.encode(["=", "x"])
        assert encoded is not None
        assert encoded.data == b"a\r\nb =3D\r\nc\r\nd\r\nx"

    def test_a_cr_or_the_cut_character_is_left_to_the_caller(self) -> None:
        plan = QpPlan.plan(["a", "\nb"], [0])
        assert plan is not None
        assert plan.encode(["\r"]) is None
        assert plan.encode(["\x1a"]) is None
        assert QpPlan.plan(["a\x1a", "b"], [0]) is None
        assert QpPlan.plan(["a\r", "b"], [0]) is None


LINE = st.lists(
    st.sampled_from(
        [*"ab<=_\n\r", "\x00", "\u00fc", "x" * 200, "=_nudge_B", "=_nud", "ge_", "_B", "B"]
    ),
    max_size=12,
).map("".join)


class TestSevenBitPlan:
    @settings(max_examples=1000, deadline=None)
    @given(parts=st.lists(LINE, min_size=1, max_size=5), data=st.data())
    def test_equals_checking_the_whole_part(self, parts: list[str], data: st.DataObject) -> None:
        """Lines around 998 characters, CR, NUL, non-ASCII, the boundary across a value:
        what the plan makes 7bit is what mime._seven_bit makes of the whole part."""
        values = data.draw(st.lists(LINE, min_size=len(parts) - 1, max_size=len(parts) - 1))
        plan = SevenBitPlan.plan(parts)
        text = parts[0] + "".join(v + p for v, p in zip(values, parts[1:], strict=True))
        expected = mime._seven_bit(text, "=_nudge_B")
        if plan is None:
            assert (
                not "".join(parts).isascii()
                or expected is None
                or "\r" in "".join(parts)
                or any(len(line) > 998 for line in "\x00".join(parts).split("\n"))
            )
            return
        encoded = plan.encode(values, "=_nudge_B")
        if encoded is not None:
            assert encoded == ("7bit", expected)
        assert PlannedHtml(plan, values).text() == text

    def test_a_long_line_of_values_is_checked_whole(self) -> None:
        plan = SevenBitPlan.plan(["<p>", "</p>\n"])
        assert plan is not None
        assert plan.encode(["x" * 992], "=_b") is None  # 999 characters: left to the caller
        assert plan.encode(["x" * 991], "=_b") is not None  # 998: 7bit
        assert plan.encode(["x" * 10], "=_b") == ("7bit", b"<p>xxxxxxxxxx</p>\r\n")
        assert plan.encode(["a=_b"], "=_b") is None

    def test_values_longer_than_a_line_go_7bit_when_each_line_takes_its_own(self) -> None:
        """The answers' URLs of an email with links are longer together than one line may
        be: each line of values within its own slack is still 7bit; one over it is not."""
        plan = SevenBitPlan.plan(["<a>", "</a>\n<b>", "", "</b>\n"])
        assert plan is not None
        assert plan.encode(["x" * 991, "y" * 900, "z" * 91], "=_b") == (
            "7bit",
            f"<a>{'x' * 991}</a>\r\n<b>{'y' * 900}{'z' * 91}</b>\r\n".encode(),
        )
        assert plan.encode(["x" * 992, "y", "z"], "=_b") is None
        assert plan.encode(["x", "y" * 900, "z" * 92], "=_b") is None

    def test_values_within_the_value_slack_fit_however_they_are_spread(self) -> None:
        """value_slack is the least of each line's slack over its slots: values no longer
        than it fit every line (no sum per line); the per-line check still decides above."""
        plan = SevenBitPlan.plan(["<a>", "</a>\n<b>", "", "</b>\n"])
        assert plan is not None
        assert plan.value_slack == 991 // 2
        assert plan.encode(["x" * 495, "y" * 495, "z" * 495], "=_b") == (
            "7bit",
            f"<a>{'x' * 495}</a>\r\n<b>{'y' * 495}{'z' * 495}</b>\r\n".encode(),
        )
        assert plan.encode(["x", "y" * 496, "z" * 496], "=_b") is None
        assert plan.encode(["x" * 496, "y" * 495, "z" * 496], "=_b") is not None

    def test_the_boundary_is_searched_where_a_value_could_hold_or_end_it(self) -> None:
        """A boundary of ours starts "=_nudge_": no search when no value holds a "=" and
        no part holds or ends with a start of it; across a part and a value it is found."""
        plan = SevenBitPlan.plan(["<p>", "</p>\n"])
        assert plan is not None
        assert plan.boundary_free
        assert plan.encode(["x=_nudge_B"], "=_nudge_B") is None
        assert plan.encode(["x_nudge_B"], "=_nudge_B") is not None
        assert plan.encode(["x_b"], "_b") is None  # another boundary: searched
        ending = SevenBitPlan.plan(["<p>=_nu", "</p>\n"])
        assert ending is not None
        assert not ending.boundary_free
        assert ending.encode(["dge_B"], "=_nudge_B") is None
        assert ending.encode(["dge_C"], "=_nudge_B") is not None
        holding = SevenBitPlan.plan(["<p>=_nudge_B", "</p>\n"])
        assert holding is not None
        assert not holding.boundary_free
        assert holding.encode(["x"], "=_nudge_B") is None
