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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr
from importlib import resources
from typing import Any, Literal
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
from couples_nudge.notifier.mime import build_email
from couples_nudge.notifier.skeleton import SkeletonRenderer, shape_of
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
]

PageState = Literal["confirm", "done", "invalid", "error"]
PUSH_BODY_MAX = 200  # characters; a catalog body is at most 160, names at most 40


@dataclass(frozen=True, slots=True)
class NudgeView:
    """Everything the templates need for one partner; built by the delivery step."""

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
    """The view of one nudge for one partner of a couple (`turn`: a partner id or None)."""
    first, second = profile.partners
    if first.partner_id == partner_id:
        partner, other = first, second
    elif second.partner_id == partner_id:
        partner, other = second, first
    else:
        raise ValueError("not a partner of this couple")
    return NudgeView(
        kind=kind,
        item=item,
        recipient=partner.name,
        partner=other.name,
        turn={partner_id: partner.name, other.partner_id: other.name}.get(turn) if turn else None,
        turn_is_recipient=turn == partner_id,
        discreet=profile.discreet,
        locale=partner.locale,
        link=link,
        unsubscribe_url=unsubscribe_url,
        jar_idea=jar_idea,
        manage_url=manage_url,
        support_url=support_url,
        when=when,
        timezone=partner.timezone,
        actions=actions,
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


@functools.lru_cache(maxsize=1024)
def _actions_row(
    locale: str, kind: str, actions: tuple[tuple[str, str], ...]
) -> tuple[str, markupsafe.Markup]:
    """The answers row of an email: (plain text, escaped HTML), rendered by its own small
    templates (a loop) so the email templates keep their skeleton fast path."""
    label = strings_for(locale)["actions"]["label"]
    rows = [{"title": action_title(locale, kind, a), "url": url} for a, url in actions]
    text = _template(template_for(locale, "actions.txt.j2")).render(label=label, actions=rows)
    html = _template(template_for(locale, "actions.html.j2")).render(label=label, actions=rows)
    return text, markupsafe.Markup(html)  # noqa: S704 (autoescaped by Jinja2 above)


def _turn_line(view: NudgeView, s: Mapping[str, Any]) -> str | None:
    if view.turn is None:
        return None
    if view.turn_is_recipient:
        return str(s["turn"]["yours"])
    return str(s["turn"]["partner"]).format(name=view.turn)


def _context(view: NudgeView) -> dict[str, Any]:
    s = strings_for(view.locale)
    steps = view.item.steps
    agenda_text, agenda_html = _agenda(view.locale, steps) if steps else ("", "")
    shown_when = view.when if view.kind != "appreciation" else None
    counselling = view.kind == "check_in" or view.item.hard_topic
    actions_text, actions_html = (
        _actions_row(view.locale, view.kind, view.actions) if view.actions else ("", "")
    )
    body = view.body  # formatted with the names: once, for the preheader and the body
    return {
        "lang": html_lang(view.locale),
        "subject": _subject(view, s),
        # What an inbox shows beside the subject: neutral too in discreet mode.
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
        "actions_html": actions_html,
    }


def _subject(view: NudgeView, s: Mapping[str, Any]) -> str:
    return str(s["discreet"]["subject"]) if view.discreet else view.item.title


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
    (delivery.py: a Message-ID that names the nudge, message_ids.py)."""
    ctx = _context(view)
    shape = shape_of(ctx)  # both parts render the same context
    extra = [("Auto-Submitted", "auto-generated"), *extra_headers]
    if view.unsubscribe_url:
        extra.append(("List-Unsubscribe", f"<{view.unsubscribe_url}>"))
        if list_unsubscribe_post:
            extra.append(("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))
    return build_email(
        subject=ctx["subject"],
        sender=sender,
        to_name=to_name,
        to_address=to_address,
        when=when,
        text=_email_part(template_for(view.locale, "email.txt.j2")).render(ctx, shape),
        html=_email_part(template_for(view.locale, "email.html.j2")).render_ascii(ctx, shape),
        extra_headers=extra,
        message_domain=message_domain(sender),
        message_id=message_id,
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
