"""Turning a chosen item into an email (plain text + HTML) and a push payload. No I/O.

Names and any user text are filled in before rendering and escaped by Jinja2's autoescape in
HTML. Interface text lives in templates/<language>/strings.toml, chosen along the locale's
fallback chain (de-AT -> de -> en) with en-GB derived by the variant table: locales.py.
The unsubscribe pages (unsubscribe_routes.py) are rendered here too, with the same escaping.

The HTML part goes out as ASCII: every other character as a numeric character reference
(`&#160;`, `&#252;`), which HTML reads as that character in text and in attribute values
alike. Invariants: the email templates have no raw-text elements (`<style>`, `<script>`,
comments), where a reference would stay literal; and no C1 control character (U+0080-U+009F,
which HTML reads from a reference as Windows-1252) reaches them (the schemas refuse control
characters in every text a couple gives; the catalog and strings have none). An ASCII part
with short lines needs no transfer encoding (mime.py: 7bit), where one no-break space in a
date night's time used to cost a base64 pass over the whole HTML (~12 us an email).

An email is rendered through a plan (`_EmailPlan`), not the whole skeleton per message: most
of its context depends on (locale, kind, item, discreet) alone (`_Fixed`: the title, detail,
agenda, labels, and the body unless it names the partners), the same for every recipient of
an item, so those values are written into both skeletons once (escaped, as character
references in HTML) and only the dozen per-message values (names, time, links) are escaped,
converted and, in the text part, quoted-printable-encoded per email: the text's static lines
are encoded once (mime.QpPlan). Invariant: `_Fixed.values` is a function of that key (the
item is part of it, compared by value); a plan is checked against the skeletons' output on
the email that teaches it, and a shape that does not match keeps the skeletons. Property test:
tests/property/test_email_plan.py (the bytes of the rendering before plans, for any view).
The answers row (signed URLs, new for every email) is rendered once per (locale, kind,
actions) with a marker per URL and split there (`_row`); per email its URLs are written in
(escaped in HTML as autoescape does). Invariant: the row templates print each URL once, in
order, as `{{ action.url }}` (checked when a row is learned: else Jinja per email). In the
text plan the row's pieces are static parts and its URLs slots of their own (`_with_row`;
the answers' names are part of the plan's key), so that a URL alone at the end of its line
is quoted-printable-encoded by cutting it (mime.QpPlan's cut lines), not by b2a_qp; so is
any other value alone at a line's end (the turn line, the footer's line) when it is all
literal characters (else b2a_qp of its line alone: the time's no-break space). Such a
plan never reads the joined row, so per email the row's values are stand-ins of its types
and truthiness (`_row_stand_in`) and the row is joined only for a plan that reads it.

Per email, the strings with a name are written by f-string from their text around the name
(`_OneField`, per locale in `_Words`: invariant, `str.format` of a string whose one field is a
plain `{name}` is its literal text around `format(value)`, which an f-string writes the
same; any other form keeps str.format). No cache here holds personal data: the HTML of the
per-message values is kept only for interface strings and time lines (`_FIXED_HTML`); the
values that may hold a name are checked at once (ASCII, nothing to escape: written as they
are) and converted per email otherwise (tests/unit/test_render_caches.py inspects every
cache of render, mime and skeleton). A date night from the couple's jar is a new item per
message: `_fixed` (which reads no item id) sees it without its idea's id, so the jar's
emails of a language share one _Fixed and its plans, and nothing keeps the idea's id.

What shows outside the opened email or app is discreet when the couple asked for it: the push
title and body, the email subject and the inbox preview (preheader) are neutral strings; the
item, the names and whose turn it is appear only inside. The footer fits the kind: the
counselling line on check-ins and hard topics only; the operator's support link
(NUDGE_SUPPORT_URL) and the manage link (NUDGE_MANAGE_URL) only when set.
"""

from __future__ import annotations

import email
import email.policy
import functools
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr
from importlib import resources
from typing import Any, Final, Literal, NamedTuple
from urllib.parse import quote

import jinja2
import markupsafe

from couples_nudge.notifier.catalog import DEFAULT_LOCALE, Item
from couples_nudge.notifier.locales import (
    format_when,
    html_lang,
    strings_for,
    template_for,
)
from couples_nudge.notifier.mime import (
    _NEW,  # tuple.__new__: a NamedTuple from all its fields, without its Python __new__
    AUTO_SUBMITTED,
    Encoded,
    PlannedHtml,
    PlannedText,
    QpPlan,
    SevenBitPlan,
    build_email,
    picker,
    qp,
)
from couples_nudge.notifier.skeleton import (
    Prefilled,
    SkeletonRenderer,
    ascii_html_str,
    ascii_refs,
    escape_str,
    html_value,
    shape_of,
)
from couples_nudge_schemas import NudgeKind, PreferencesSetData

__all__ = [
    "NudgeView",
    "PageState",
    "action_title",
    "deep_link",
    "jar_texts",
    "message_domain",
    "render_email",
    "render_push",
    "render_unsubscribe_page",
    "view_for",
    "view_of",
]

PageState = Literal["confirm", "done", "invalid", "error"]
PUSH_BODY_MAX = 200  # characters; a catalog body is at most 160, names at most 40


class NudgeView(NamedTuple):
    """Everything the templates need for one partner; built by the delivery step.

    A NamedTuple, not a frozen dataclass: `view_for` makes one per message by
    `mime._NEW(NudgeView, (...))`, every field in order, where a frozen dataclass's __init__
    set its 16 fields by object.__setattr__ (~32k instructions a view, callgrind; ~0.5k
    now). Immutable as before; compared as a tuple. Its readers on the email's path take
    all fields at once, `view[:]` unpacked (`_fields`): a field read is a descriptor call
    (~100 instructions), unpacking the view itself goes through an iterator (a tuple
    subclass), and the slice is an exact tuple, unpacked in place."""

    kind: NudgeKind
    item: Item
    recipient: str  # the recipient's display name
    partner: str  # the other partner's display name
    turn: str | None = None  # display name of whose turn it is to plan, if any
    turn_is_recipient: bool = False
    discreet: bool = False
    locale: str = DEFAULT_LOCALE
    link: str | None = None  # deep link into the app: the push's URL, the email's button
    unsubscribe_url: str | None = None
    jar_idea: str | None = None  # a date night from the couple's own jar: their idea's text
    manage_url: str | None = None  # NUDGE_MANAGE_URL: where nudges are managed
    support_url: str | None = None  # NUDGE_SUPPORT_URL: support for people who feel unsafe
    when: datetime | None = None  # the nudge's scheduled instant (date night, check-in)
    timezone: str = "UTC"  # the recipient's zone, for `when`
    # Signed one-tap answers (actions.py): (action, URL) for done, skip, snooze, more.
    actions: tuple[tuple[str, str], ...] = ()

    @property
    def body(self) -> str:
        # Appreciation goes to the giver (the recipient) about the receiver (the partner).
        return self.item.body.format(receiver=self.partner, giver=self.recipient)


def deep_link(template: str | None, *, kind: str, couple_id: str, occurrence_id: str) -> str | None:
    """The URL a push opens, from settings.push_link; ids are percent-encoded."""
    if template is None:
        return None
    return template.format(
        kind=kind,
        couple_id=quote(couple_id, safe=""),
        occurrence_id=quote(occurrence_id, safe=""),
    )


def view_for(
    profile: PreferencesSetData,
    partner_id: str,
    kind: NudgeKind,
    item: Item,
    *,
    turn: str | None = None,
    link: str | None = None,
    unsubscribe_url: str | None = None,
    jar_idea: str | None = None,
    manage_url: str | None = None,
    support_url: str | None = None,
    when: datetime | None = None,
    actions: tuple[tuple[str, str], ...] = (),
) -> NudgeView:
    """The view of one nudge for one partner of a couple (`turn`: a partner id or None).

    The models' fields are read from their `__dict__`, which holds exactly their fields (the
    schema forbids extras): a pydantic field read goes through the model's `__getattr__`
    hook, ~0.7k instructions; three such reads here instead of eight to ten (h/notify13)."""
    return view_of(
        profile, partner_id, kind, item, turn, link, unsubscribe_url, jar_idea, manage_url,
        support_url, when, actions,
    )  # fmt: skip


def view_of(
    profile: PreferencesSetData,
    partner_id: str,
    kind: NudgeKind,
    item: Item,
    turn: str | None,
    link: str | None,
    unsubscribe_url: str | None,
    jar_idea: str | None,
    manage_url: str | None,
    support_url: str | None,
    when: datetime | None,
    actions: tuple[tuple[str, str], ...],
) -> NudgeView:
    """`view_for` by position, for the delivery's call per message: ten keywords cost ~1k
    instructions a call to bind (h/notify14)."""
    data = profile.__dict__
    first_model, second_model = data["partners"]
    first, second = first_model.__dict__, second_model.__dict__
    if first["partner_id"] == partner_id:
        partner, other = first, second
    elif second["partner_id"] == partner_id:
        partner, other = second, first
    else:
        raise ValueError("not a partner of this couple")
    name, other_name = partner["name"], other["name"]
    turn_name = None  # whose turn, as {partner_id: name, other's id: other's name}.get(turn)
    if turn:
        turn_name = (
            other_name if turn == other["partner_id"] else name if turn == partner_id else None
        )
    return _NEW(  # every field, in the class's order: a test pins it against the keywords
        NudgeView,
        (
            kind,
            item,
            name,  # recipient
            other_name,  # partner
            turn_name,  # turn
            turn == partner_id,  # turn_is_recipient
            data["discreet"],
            partner["locale"],
            link,
            unsubscribe_url,
            jar_idea,
            manage_url,
            support_url,
            when,
            partner["timezone"],
            actions,
        ),
    )


def _templates_root() -> Any:
    return resources.files("couples_nudge.notifier") / "templates"


@functools.cache
def _env() -> jinja2.Environment:
    root = str(_templates_root())
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(root),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # templates ship with the package; no mtime check per render
        keep_trailing_newline=True,
    )


@functools.cache
def _template(path: str) -> jinja2.Template:
    return _env().get_template(path)


@functools.cache
def _email_part(path: str) -> SkeletonRenderer:
    return SkeletonRenderer.load(_env(), path)


@functools.cache
def message_domain(sender: str) -> str:
    """The domain of the sender's address: where Message-IDs are made."""
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


# Invisible characters after the preheader keep inboxes from previewing the body after it.
# The preheader itself is hidden by display:none (mso-hide:all in Outlook) and nothing else:
# a 1px font or text in the background's colour is what spam filters score as hidden text
# (SpamAssassin's FONT_INVIS_MSGID and HTML_FONT_LOW_CONTRAST, 1.7 points on every email:
# tests/integration/test_deliverability.py).
_PREHEADER_PAD = markupsafe.Markup("&#8199;&#847;" * 40)  # noqa: S704 (a constant)


@functools.lru_cache(maxsize=256)
def _agenda(locale: str, steps: tuple[str, ...]) -> tuple[str, markupsafe.Markup]:
    """A monthly guide's steps as a numbered list: (plain text, escaped HTML).

    Rendered by their own small templates (a loop), so the email templates stay made of
    slots and ifs and keep their skeleton fast path (skeleton.py)."""
    label = strings_for(locale)["email"]["agenda"]
    text = _template(template_for(locale, "agenda.txt.j2")).render(label=label, steps=steps)
    html = _template(template_for(locale, "agenda.html.j2")).render(label=label, steps=steps)
    return text, markupsafe.Markup(html)  # noqa: S704 (autoescaped by Jinja2 above)


def action_title(locale: str, kind: str, action: str, *, discreet: bool = False) -> str:
    """The label of an action in a language; neutral for done and skip in discreet mode
    (push actions show on a lock screen)."""
    s = strings_for(locale)["actions"]
    if action in ("done", "skip"):
        return str(s[f"discreet_{action}"] if discreet else s[f"{action}_{kind}"])
    return str(s[action])


class _Row(NamedTuple):
    """An answers row's static text for one (locale, kind, actions), around its URLs."""

    text: tuple[str, ...]  # the plain-text row: len(actions) + 1 pieces
    html: tuple[str, ...]  # the HTML row (escaped by Jinja2): the same


_URL_MARK: Final = re.compile("\x1a([0-9]+)\x1a")  # no string of ours holds \x1a


def _actions_row(
    locale: str, kind: str, actions: tuple[tuple[str, str], ...]
) -> tuple[str, markupsafe.Markup]:
    """The answers row of an email: (plain text, escaped HTML). Its URLs are signed per
    partner and nudge, so the row is rendered once per (locale, kind, actions) with a marker
    for each URL (`_row`), and per email only the URLs are written in: as they are in the
    text, escaped as Jinja2's autoescape does (markupsafe.escape: skeleton.escape_str) in
    the HTML."""
    row = _row(locale, kind, tuple([action for action, _ in actions]))
    urls = [url for _, url in actions]
    if row is None:
        return _rendered_row(locale, kind, actions)
    html = _joined(row.html, [escape_str(url) for url in urls])
    return _joined(row.text, urls), markupsafe.Markup(html)  # noqa: S704 (escaped above)


@functools.lru_cache(maxsize=256)
def _row(locale: str, kind: str, actions: tuple[str, ...]) -> _Row | None:
    """The row's pieces around its URLs; None when the rendering does not show each URL once,
    in order, in both parts (then Jinja2 renders every row)."""
    marked = tuple((action, f"\x1a{n}\x1a") for n, action in enumerate(actions))
    text, html = _rendered_row(locale, kind, marked)
    pieces = _URL_MARK.split(text), _URL_MARK.split(html)
    order = [str(n) for n in range(len(actions))]
    if any(found[1::2] != order or "\x1a" in "".join(found) for found in pieces):
        return None
    return _Row(tuple(pieces[0][0::2]), tuple(pieces[1][0::2]))


def _rendered_row(
    locale: str, kind: str, actions: tuple[tuple[str, str], ...]
) -> tuple[str, markupsafe.Markup]:
    """The answers row rendered by its own small templates (a loop), so the email templates
    keep their skeleton fast path."""
    label = strings_for(locale)["actions"]["label"]
    rows = [{"title": action_title(locale, kind, a), "url": url} for a, url in actions]
    text = _template(template_for(locale, "actions.txt.j2")).render(label=label, actions=rows)
    html = _template(template_for(locale, "actions.html.j2")).render(label=label, actions=rows)
    return text, markupsafe.Markup(html)  # noqa: S704 (autoescaped by Jinja2 above)


@dataclass(frozen=True, slots=True)
class _Fixed:
    """What an email's context holds for every recipient of one item in one language: the
    values that depend on (locale, kind, item, discreet) alone."""

    values: dict[str, Any]
    names: frozenset[str]
    per_message: tuple[str, ...]  # the other names, in the order _per_message gives them
    # Per shape of the per-message values: the email's plan (None: this shape renders
    # through the skeletons and Jinja every time).
    plans: dict[tuple[object, ...], _EmailPlan | None]


@dataclass(frozen=True, slots=True)
class _EmailPlan:
    """Both parts of one (_Fixed, shape) with the fixed values written in: only the
    per-message values are escaped, converted and encoded per email."""

    text: Prefilled
    text_parts: tuple[str, ...]  # text.parts, the answers row's pieces written in (`_plan`)
    # Per slot of text_parts: its index in the per-message values, then the answers' URLs.
    text_slots: tuple[int, ...]
    text_ascii: bool  # the text's fixed parts are ASCII
    qp: QpPlan | None  # None: the text is encoded whole per email
    html: Prefilled
    html_parts: tuple[str, ...]  # html.parts, the answers row's pieces written in (`_plan`)
    html_slots: tuple[int, ...]  # per value of html_parts but the row's URLs: its index
    html_row: int  # where in the HTML values the answers' URLs go (-1: nowhere)
    html_7bit: SevenBitPlan | None  # None: checked whole per email (mime._seven_bit)
    reads_row: bool  # a slot holds the joined answers row (else its stand-ins serve)
    # text_slots' and html_slots' values picked by one C call (mime.picker); and whether every
    # HTML value is a plain str (the plan's key holds each value's type), then converted by
    # a map over ascii_html_str's cache instead of a comprehension per email.
    text_pick: Callable[[Sequence[Any]], Sequence[Any]]
    html_pick: Callable[[Sequence[Any]], Sequence[Any]]
    html_str: bool
    # Where among html_pick's values the time's line and the turn line are (`_FIXED_HTML`:
    # often an interface string or a time), and the others, which may hold a name: checked
    # at once (html_personal picks them), converted one by one only when one needs it.
    html_fixed_at: tuple[int, ...]
    html_personal_at: tuple[int, ...]
    html_personal: Callable[[Sequence[Any]], Sequence[Any]]


_PER_MESSAGE: Final[tuple[str, ...]] = (
    "when_line",
    "greeting",
    "recipient",
    "turn_line",
    "cta_url",
    "footer_why",
    "support_url",
    "manage_url",
    "unsubscribe_url",
    "jar_idea",
    "actions_text",
    "actions_html",
)
_NAMED_BODY: Final[tuple[str, ...]] = (
    "body",
    "preheader",
)  # per message when the body names the partners
_MAX_PLANS: Final = 64  # per _Fixed; beyond it, the skeletons (no unbounded growth)
_ROW_AT: Final = _PER_MESSAGE.index("actions_text")  # then actions_html
_WHEN_AT: Final = _PER_MESSAGE.index("when_line")
# The per-message values that are often an interface string or a time (`_FIXED_HTML`).
_MAYBE_FIXED: Final = frozenset({_WHEN_AT, _PER_MESSAGE.index("turn_line")})
assert _PER_MESSAGE[_ROW_AT + 1] == "actions_html"


@functools.lru_cache(maxsize=2048)
def _fixed(locale: str, kind: NudgeKind, item: Item, discreet: bool) -> _Fixed:
    s = strings_for(locale)
    steps = item.steps
    agenda_text, agenda_html = _agenda(locale, steps) if steps else ("", "")
    counselling = kind == "check_in" or item.hard_topic
    values: dict[str, Any] = {
        "lang": html_lang(locale),
        "subject": str(s["discreet"]["subject"]) if discreet else item.title,
        "preheader_pad": _PREHEADER_PAD,
        "heading": s["heading"][kind],
        "title": item.title,
        "detail": item.detail,
        "agenda_text": agenda_text,
        "agenda_html": agenda_html,
        "tip_label": s["email"]["tip"],
        "cta_label": s["cta"][kind],
        "footer_unsubscribe": s["footer"]["unsubscribe"],
        "footer_counselor": s["footer"]["counselor"] if counselling else None,
        "footer_support": s["footer"]["support"],
        "support_label": s["footer"]["support_link"],
        "manage_label": s["footer"]["manage"],
        "jar_label": s["jar"]["label"],
    }
    per_message = _PER_MESSAGE
    if "{" in item.body or "}" in item.body:  # formatted with the names (NudgeView.body)
        per_message += _NAMED_BODY
    else:  # str.format of a text without braces is that text
        values["body"] = item.body
        values["preheader"] = s["discreet"]["preheader"] if discreet else item.body
    return _Fixed(values, frozenset(values), per_message, {})


class _SeenItem(NamedTuple):
    """An item and its _Fixed, in `_FIXED_SEEN`."""

    item: Item  # held: its id (the key) cannot be another item's while the entry lives
    fixed: _Fixed


# `_fixed` of (id(item), locale, kind, discreet): an email's item is the catalog's own
# object (a jar item, new per message, is not kept: `_fixed_seen`), so its identity finds
# the _Fixed that `_fixed` gives it without Item.__hash__ (a Python function over 17
# fields, ~2k instructions with the lru_cache's key). Invariant: an entry holds its item,
# and is used only for that very object (`is`): the same item, so the same _Fixed as
# `_fixed` (Items are immutable).
_FIXED_SEEN: Final[dict[tuple[int, str, str, bool], _SeenItem]] = {}
_MAX_FIXED_SEEN: Final = 2048  # then cleared
_JAR_PREFIX: Final = "jar:"  # jar.CONTENT_PREFIX (jar.py imports this module; a test pins it)


def _fixed_seen(key: tuple[int, str, NudgeKind, bool], item: Item) -> _Fixed:
    """`_fixed` for a key of `_FIXED_SEEN` that is not there (or holds another item).

    A date night from the couple's jar (jar.jar_item: an id of `_JAR_PREFIX` and the idea's
    id, the interface's title and body) is new per message: neither kept here nor in
    `_fixed`'s cache with its idea's id, but as one item of the jar per language (`_fixed`
    reads no id), so every jar email of a language shares one _Fixed and its plans."""
    _, locale, kind, discreet = key
    if item.id.startswith(_JAR_PREFIX):
        return _fixed(locale, kind, replace(item, id=_JAR_PREFIX), discreet)
    fixed = _fixed(locale, kind, item, discreet)
    if len(_FIXED_SEEN) >= _MAX_FIXED_SEEN:
        _FIXED_SEEN.clear()
    _FIXED_SEEN[key] = _SeenItem(item, fixed)
    return fixed


def _per_message(
    view: NudgeView, fixed: _Fixed, row: tuple[str, str] | None = None
) -> tuple[Any, ...]:
    """The values of fixed.per_message for this view (what _context adds to fixed.values);
    `row`: the answers row's values to give (render_email_bytes' stand-ins), else joined."""
    (
        kind,
        _item,
        recipient,
        partner,
        turn,
        turn_is_recipient,
        discreet,
        locale,
        link,
        unsubscribe_url,
        jar_idea,
        manage_url,
        support_url,
        when,
        timezone,
        actions,
    ) = view[:]  # `_fields`
    words = _WORDS.get(locale) or _words_of(locale)
    if row is None:
        row = _actions_row(locale, kind, actions) if actions else ("", "")
    actions_text, actions_html = row
    if turn is None:
        turn_line = None
    elif turn_is_recipient:
        turn_line = words.turn_yours
    else:
        turn_line = words.turn_partner.format(turn)
    when_line = (
        format_when(when, timezone, locale, words.when)
        if when is not None and kind != "appreciation"
        else None
    )
    if when_line is not None and when_line not in _FIXED_HTML:
        _fixed_html(when_line)  # a time in a zone and language: no personal data
    values = (
        when_line,
        words.greeting.format(recipient),
        recipient,
        turn_line,
        link,
        words.why.format(partner),
        support_url,
        manage_url,
        unsubscribe_url,
        jar_idea,
        actions_text,
        actions_html,
    )
    if len(fixed.per_message) == len(values):
        return values
    body = view.body  # formatted with the names: once, for the preheader and the body
    return (*values, body, words.discreet_preheader if discreet else body)


class _OneField(NamedTuple):
    """An interface string with one field, `{name}` (`{partner}`), as its text around it:
    `format` is `str.format(**{field: value})` by one f-string. A string of another form
    (a second field, a conversion or format spec) keeps str.format (`whole`)."""

    before: str | None  # None: str.format of `whole`
    after: str
    whole: str
    field: str

    @classmethod
    def of(cls, text: str, field: str) -> _OneField:
        pieces = list(string.Formatter().parse(text))
        found = [
            (name, spec, conversion) for _, name, spec, conversion in pieces if name is not None
        ]
        if found != [(field, "", None)]:
            return cls(None, "", text, field)
        at = next(n for n, (_, name, _, _) in enumerate(pieces) if name is not None)
        before = "".join(literal for literal, _, _, _ in pieces[: at + 1])  # "{{": "{"
        after = "".join(literal for literal, _, _, _ in pieces[at + 1 :])
        return cls(before, after, text, field)

    def format(self, value: str) -> str:
        if self.before is None:
            return self.whole.format(**{self.field: value})
        return f"{self.before}{value}{self.after}"  # as str.format writes a value: format()


class _Words(NamedTuple):
    """The interface strings `_per_message` reads, per locale (`_WORDS`): one dict lookup
    in place of strings_for's cache and five nested lookups, and the strings with a name
    written by `_OneField`, not str.format (~3k instructions a call, callgrind)."""

    when: str
    greeting: _OneField
    why: _OneField
    turn_yours: str
    turn_partner: _OneField
    discreet_preheader: str


_WORDS: Final[dict[str, _Words]] = {}  # by locale: interface strings only, no personal data


def _words_of(locale: str) -> _Words:
    s = strings_for(locale)
    words = _Words(
        s["email"]["when"],
        _OneField.of(s["email"]["greeting"], "name"),
        _OneField.of(s["footer"]["why"], "partner"),
        str(s["turn"]["yours"]),
        _OneField.of(str(s["turn"]["partner"]), "name"),
        s["discreet"]["preheader"],
    )
    if len(_WORDS) < _MAX_WORDS:
        _WORDS[locale] = words
        _fixed_html(words.turn_yours)  # a per-message value that is an interface string
    return words


_MAX_WORDS: Final = 256  # locales are a handful; a bound all the same


def _context(view: NudgeView) -> dict[str, Any]:
    """Everything the email templates read, for one view."""
    fixed = _fixed(view.locale, view.kind, view.item, view.discreet)
    return {**fixed.values, **dict(zip(fixed.per_message, _per_message(view, fixed), strict=True))}


_READ_POLICY = email.policy.default.clone(utf8=True)  # internationalised addresses parse too


def render_email_bytes(
    view: NudgeView,
    *,
    sender: str,
    to_name: str,
    to_address: str,
    when: datetime,
    list_unsubscribe_post: bool = False,
    message_id: str | None = None,
    extra_headers: Sequence[tuple[str, str]] = (),
) -> bytes:
    """The email for one partner as SMTP wire bytes (see mime.py for why not EmailMessage).

    `message_id` (else a random one) and `extra_headers` come from the sender's side
    (delivery.py: a Message-ID that names the nudge, message_ids.py). Rendered through the
    email's plan (module docstring) when its shape has one, else as `_render_parts` does."""
    kind, item, _, _, _, _, discreet, locale, _, unsubscribe_url, _, _, _, _, _, actions = view[:]
    key = (id(item), locale, kind, discreet)  # the item by identity: no Item.__hash__
    seen = _FIXED_SEEN.get(key)
    fixed = seen.fixed if seen is not None and seen.item is item else _fixed_seen(key, item)
    names, urls = _answers(actions) if actions else _NO_ANSWERS
    stand_in = _row_stand_in(locale, kind, names) if names else None
    values = _per_message(view, fixed, stand_in)
    # Which values are truthy, and each one's type: finer than shape_of's key (so never a
    # wrong plan, at most a few more of them), made by two C loops instead of a Python one;
    # and the answers' names, whose row the text plan holds.
    shape = (*map(bool, values), *map(type, values), *names)
    plan = fixed.plans.get(shape, _UNSEEN)
    if stand_in is not None and (plan is None or plan.reads_row):  # _UNSEEN reads it
        row = _actions_row(locale, kind, actions)
        values = (*values[:_ROW_AT], *row, *values[_ROW_AT + 2 :])
    if plan is _UNSEEN:
        plan = _plan(view, fixed, values, shape)
    plain: str | Encoded
    text: str | PlannedText
    html: str | PlannedHtml
    if plan is None:
        ctx = {**fixed.values, **dict(zip(fixed.per_message, values, strict=True))}
        plain, html = _render_parts(view, ctx)
        text = plain
    else:
        source = (*values, *urls) if urls else values
        text_values = plan.text_pick(source)  # str (or Markup): join as str
        ascii = plan.text_ascii and "".join(text_values).isascii()  # then 7bit (mime.py)
        encoded = None if ascii or plan.qp is None else plan.qp.encode(text_values)
        if encoded is None:  # 7bit, or a CR: encoded whole
            plain = text = _joined(plan.text_parts, text_values)
        else:  # the text itself only for mime's standard-library path (rare)
            plain, text = encoded, _NEW(PlannedText, (plan.text_parts, text_values))
        picked = plan.html_pick(values)
        if plan.html_str:  # plain str: as they are, when ASCII with nothing to escape
            html_values = list(picked)
            personal = "".join(plan.html_personal(values))  # those that may hold a name
            if (
                not personal.isascii()
                or "&" in personal
                or "<" in personal
                or ">" in personal
                or ("'" in personal or '"' in personal)
            ):
                for at in plan.html_personal_at:
                    html_values[at] = ascii_html_str(html_values[at])
            for at in plan.html_fixed_at:  # the time's line, the turn line: often kept
                found = _FIXED_HTML.get(value := html_values[at])
                html_values[at] = ascii_html_str(value) if found is None else found
        else:
            html_values = [_html_str(v) if type(v) is str else _ascii_html(v) for v in picked]
        if plan.html_row >= 0:  # escaped as autoescape does, then ASCII (no cache: all new)
            html_values[plan.html_row : plan.html_row] = map(ascii_refs, map(escape_str, urls))
        html = (
            _NEW(PlannedHtml, (plan.html_7bit, html_values))  # no Python __new__
            if plan.html_7bit is not None
            else _joined(plan.html_parts, html_values)
        )
    extra: Sequence[tuple[str, str]] = AUTO_SUBMITTED  # its head line is written once (mime)
    if unsubscribe_url or extra_headers:
        extra = [*AUTO_SUBMITTED, *extra_headers]
        if unsubscribe_url:
            extra.append(("List-Unsubscribe", f"<{unsubscribe_url}>"))
            if list_unsubscribe_post:
                extra.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return build_email(  # by position: see its docstring
        fixed.values["subject"],
        sender,
        to_name,
        to_address,
        when,
        plain,
        html,
        extra,
        message_domain(sender),
        message_id,
        text,
    )


def _render_parts(view: NudgeView, ctx: Mapping[str, Any]) -> tuple[str, str]:
    """The text and (ASCII) HTML parts of an email through the skeletons (and Jinja)."""
    shape = shape_of(ctx)  # both parts render the same context
    return (
        _email_part(template_for(view.locale, "email.txt.j2")).render(ctx, shape),
        _email_part(template_for(view.locale, "email.html.j2")).render_ascii(ctx, shape),
    )


@functools.lru_cache(maxsize=256)
def _row_stand_in(
    locale: str, kind: str, names: tuple[str, ...]
) -> tuple[str, markupsafe.Markup] | None:
    """What stands in for the answers row in an email's values while its plan is looked up
    (`_per_message`): a plan whose slots do not hold the row (`_EmailPlan.reads_row`; the
    row's URLs are its own slots) never reads it, and the row is joined only for one that
    does. Invariant: the stand-ins are truthy and of the row's types (str, Markup), as
    `_actions_row` gives them for any URLs when each part of the row has a non-empty piece,
    so the plan's key (`shape`) is the same; None otherwise (then the row itself)."""
    row = _row(locale, kind, names)
    if row is None or not any(row.text) or not any(row.html):
        return None
    return _ROW_STAND_IN


_ROW_STAND_IN: Final = ("\x1a", markupsafe.Markup("\x1a"))  # never written into an email


def _answers(actions: tuple[tuple[str, str], ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The answers' names and URLs, apart."""
    if not actions:
        return _NO_ANSWERS
    names, urls = zip(*actions, strict=True)
    return names, urls


# The HTML (ascii_html_str) of values that hold no personal data: the interface strings a
# per-message value may be (`_Words`) and the time lines (`_per_message`), the same for many
# emails. Names, URLs and jar ideas are converted per email (`_html_str`), never kept: a
# per-email value is looked up here, not added.
_FIXED_HTML: Final[dict[str, str]] = {}
_MAX_FIXED_HTML: Final = 1024  # then cleared (time lines: one per instant, zone and locale)


def _fixed_html(value: str) -> None:
    """Keeps the HTML of a value that holds no personal data (the callers say so)."""
    if len(_FIXED_HTML) >= _MAX_FIXED_HTML:  # cleared of time lines; the words stay
        _FIXED_HTML.clear()
        for words in _WORDS.values():
            _FIXED_HTML[words.turn_yours] = ascii_html_str(words.turn_yours)
    _FIXED_HTML[value] = ascii_html_str(value)


def _html_str(value: str) -> str:
    """ascii_html_str of a plain str: from `_FIXED_HTML`, else made (and not kept)."""
    found = _FIXED_HTML.get(value)
    return ascii_html_str(value) if found is None else found


def _joined(parts: tuple[str, ...], values: Sequence[str]) -> str:
    out = [*parts, *values]  # then interleaved: part, value, part, ..., part
    out[0::2], out[1::2] = parts, values
    return "".join(out)


def _ascii_html(value: Any) -> str:
    """A value as the HTML skeleton writes it with render_ascii (skeleton.py)."""
    return html_value(value, ascii=True)


def _plan(
    view: NudgeView, fixed: _Fixed, values: tuple[Any, ...], shape: tuple[object, ...]
) -> _EmailPlan | None:
    """Learns the plan of this shape from one view, checked against the skeletons' output."""
    plan = None
    ctx = {**fixed.values, **dict(zip(fixed.per_message, values, strict=True))}
    full_shape = shape_of(ctx)
    text_renderer = _email_part(template_for(view.locale, "email.txt.j2"))
    html_renderer = _email_part(template_for(view.locale, "email.html.j2"))
    text = text_renderer.prefill(ctx, fixed.names, full_shape)
    html = html_renderer.prefill(ctx, fixed.names, full_shape, ascii=True)
    if text is not None and html is not None:
        slot = fixed.per_message.index
        text_parts, text_slots = _with_row(view, fixed, text.parts, tuple(map(slot, text.names)))
        html_parts, html_slots, html_row = _html_with_row(
            view, fixed, html.parts, tuple(map(slot, html.names))
        )
        plan = _EmailPlan(
            text=text,
            text_parts=text_parts,
            text_slots=text_slots,
            text_ascii="".join(text_parts).isascii(),
            qp=QpPlan.plan(
                text_parts,
                range(len(text_slots)),
                cut=range(len(text_slots)),  # any value alone at a line's end (module docstring)
                # The time's line through mime's cache (a no-break space): not the names.
                cached=[n for n, slot in enumerate(text_slots) if slot == _WHEN_AT],
            ),
            html=html,
            html_parts=html_parts,
            html_slots=html_slots,
            html_row=html_row,
            html_7bit=SevenBitPlan.plan(html_parts),
            reads_row=_ROW_AT in text_slots or _ROW_AT + 1 in html_slots,
            text_pick=picker(text_slots),
            html_pick=picker(html_slots),
            html_str=all(type(values[i]) is str for i in html_slots),
            html_fixed_at=tuple(n for n, i in enumerate(html_slots) if i in _MAYBE_FIXED),
            html_personal_at=tuple(n for n, i in enumerate(html_slots) if i not in _MAYBE_FIXED),
            html_personal=picker(tuple(i for i in html_slots if i not in _MAYBE_FIXED)),
        )
        expected_text, expected_html = _render_parts(view, ctx)
        answer_urls = _answers(view.actions)[1]
        source = (*values, *answer_urls)
        text_values = [str(source[i]) for i in text_slots]
        html_values = [_ascii_html(values[i]) for i in html_slots]
        if html_row >= 0:
            html_values[html_row:html_row] = [_ascii_html(url) for url in answer_urls]
        if (
            _joined(text_parts, text_values) != expected_text
            or _joined(html_parts, html_values) != expected_html
            or (
                plan.qp is not None
                and (encoded := plan.qp.encode(text_values)) is not None
                and encoded.data != qp(expected_text)
            )
        ):
            plan = None
    if len(fixed.plans) < _MAX_PLANS:
        fixed.plans[shape] = plan
    return plan


_NO_ANSWERS: Final[tuple[tuple[str, ...], tuple[str, ...]]] = ((), ())


def _with_row(
    view: NudgeView, fixed: _Fixed, parts: tuple[str, ...], slots: tuple[int, ...]
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """The text's parts and slots with the answers row written in: its static pieces as
    parts, its URLs as slots of their own (numbered after the per-message values), so that
    the quoted-printable plan sees each URL alone on its line (mime.QpPlan's cut lines).
    As given when the row has no pieces (`_row`) or the text holds it other than once."""
    row = _row(view.locale, view.kind, _answers(view.actions)[0]) if view.actions else None
    actions = fixed.per_message.index("actions_text")
    if row is None or slots.count(actions) != 1:
        return parts, slots
    k, first = slots.index(actions), len(fixed.per_message)
    urls = range(first, first + len(view.actions))
    return _spliced(parts, k, row.text), (*slots[:k], *urls, *slots[k + 1 :])


def _html_with_row(
    view: NudgeView, fixed: _Fixed, parts: tuple[str, ...], slots: tuple[int, ...]
) -> tuple[tuple[str, ...], tuple[int, ...], int]:
    """The HTML's parts with the answers row written in (its pieces as ASCII), the slots
    without the row's, and where its URLs go among the values (-1: the row stays a value,
    as for `_with_row`). With no LF in any value, the part can go 7bit from its plan
    (mime.SevenBitPlan), not checked whole."""
    row = _row(view.locale, view.kind, _answers(view.actions)[0]) if view.actions else None
    actions = fixed.per_message.index("actions_html")
    if row is None or slots.count(actions) != 1:
        return parts, slots, -1
    k = slots.index(actions)
    pieces = tuple(map(ascii_refs, row.html))
    return _spliced(parts, k, pieces), (*slots[:k], *slots[k + 1 :]), k


def _spliced(parts: tuple[str, ...], k: int, pieces: tuple[str, ...]) -> tuple[str, ...]:
    """`parts` with the pieces around a value's slots in place of its slot k."""
    joined = (parts[k] + pieces[0], *pieces[1:-1], pieces[-1] + parts[k + 1])
    return (*parts[:k], *joined, *parts[k + 2 :])


_UNSEEN: Final = _EmailPlan(
    Prefilled((), ()),
    (),
    (),
    False,
    None,
    Prefilled((), ()),
    (),
    (),
    -1,
    None,
    True,
    picker(()),
    picker(()),
    False,
    (),
    (),
    picker(()),
)


def render_email(
    view: NudgeView,
    *,
    sender: str,
    to: str,
    when: datetime,
    list_unsubscribe_post: bool = False,
) -> EmailMessage:
    """The same email as a parsed EmailMessage (for reviewing, tests and `nudge render`)."""
    name, address = parseaddr(to)
    raw = render_email_bytes(
        view,
        sender=sender,
        to_name=name,
        to_address=address,
        when=when,
        list_unsubscribe_post=list_unsubscribe_post,
    )
    # Parsed from LF line ends, as a mail client shows it; the wire bytes keep CRLF.
    message = email.message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=_READ_POLICY)
    assert isinstance(message, EmailMessage)
    return message


def render_push(view: NudgeView) -> dict[str, Any]:
    """Title, body, URL and kind of a push. Discreet: neutral title and body (a lock screen
    shows both), no names, no item, no jar idea; otherwise a date night also says whose turn
    it is, and a date night from the couple's jar shows their idea."""
    s = strings_for(view.locale)
    if view.discreet:
        title, body = s["discreet"]["push_title"], s["discreet"]["push_body"]
    else:
        title, body = view.item.title, view.body
        if view.jar_idea is not None:
            body = f"{s['jar']['label']} {view.jar_idea}"
        if view.turn is not None:
            turn = s["turn"]["push_yours" if view.turn_is_recipient else "push_partner"]
            body = _shortened(f"{turn.format(name=view.turn)} {body}", PUSH_BODY_MAX)
    push: dict[str, Any] = {"title": title, "body": body, "url": view.link, "kind": view.kind}
    if view.actions:  # one-tap answers: Web Push `actions`, APNs category, FCM data
        push["actions"] = [
            {
                "action": action,
                "title": action_title(view.locale, view.kind, action, discreet=view.discreet),
                "url": url,
            }
            for action, url in view.actions
        ]
    if view.manage_url:
        push["manage_url"] = view.manage_url
    return push


def jar_texts(locale: str) -> tuple[str, str]:
    """The title and body of a date night drawn from the couple's jar (the idea goes apart)."""
    jar = strings_for(locale)["jar"]
    return str(jar["title"]), str(jar["body"])


def _shortened(text: str, limit: int) -> str:
    """`text`, cut at a word boundary with an ellipsis when longer than `limit`."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"


def render_unsubscribe_page(
    state: PageState,
    *,
    scope: str | None = None,
    action_url: str | None = None,
    all_url: str | None = None,
    locale: str = DEFAULT_LOCALE,
) -> str:
    """The HTML page an unsubscribe link shows: confirm (with buttons), done, invalid, error."""
    s = strings_for(locale)
    page = s["unsubscribe"]
    what = s["scope"][scope] if scope is not None else ""
    ctx = {
        "lang": html_lang(locale),
        "title": page[f"{state}_title"].format(what=what),
        "text": page[f"{state}_text"].format(what=what),
        "button": page["confirm_button"].format(what=what),
        "all_button": page["confirm_all_button"],
        "action_url": action_url if state == "confirm" else None,
        "all_url": all_url if state == "confirm" else None,
    }
    return _env().get_template(template_for(locale, "unsubscribe.html.j2")).render(ctx)
