"""Turning a chosen item into an email (plain text + HTML) and a push payload. No I/O.

Names and any user text are filled in before rendering and escaped by Jinja2's autoescape in
HTML. Interface text lives in templates/<locale>/strings.toml; unknown locales fall back to en.
The unsubscribe pages (unsubscribe_routes.py) are rendered here too, with the same escaping.
"""

from __future__ import annotations

import email
import email.policy
import functools
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import parseaddr
from importlib import resources
from typing import Any, Literal
from urllib.parse import quote

import jinja2
import markupsafe

from schemas import NudgeKind, PreferencesSetData
from services.notifier.catalog import DEFAULT_LOCALE, Item
from services.notifier.mime import build_email
from services.notifier.skeleton import SkeletonRenderer

__all__ = [
    "NudgeView",
    "PageState",
    "deep_link",
    "jar_texts",
    "message_domain",
    "render_email",
    "render_push",
    "render_unsubscribe_page",
    "view_for",
]

PageState = Literal["confirm", "done", "invalid", "error"]


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
    link: str | None = None  # deep link for push
    unsubscribe_url: str | None = None
    jar_idea: str | None = None  # a date night from the couple's own jar: their idea's text

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
) -> NudgeView:
    """The view of one nudge for one partner of a couple (`turn`: a partner id or None)."""
    partner = next(p for p in profile.partners if p.partner_id == partner_id)
    other = next(p for p in profile.partners if p.partner_id != partner_id)
    names = {p.partner_id: p.name for p in profile.partners}
    return NudgeView(
        kind=kind,
        item=item,
        recipient=partner.name,
        partner=other.name,
        turn=names.get(turn) if turn else None,
        turn_is_recipient=turn == partner_id,
        discreet=profile.discreet,
        locale=partner.locale,
        link=link,
        unsubscribe_url=unsubscribe_url,
        jar_idea=jar_idea,
    )


def _templates_root() -> Any:
    return resources.files("services.notifier") / "templates"


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


@functools.cache
def _locale_dir(locale: str) -> str:
    root = _templates_root()
    for candidate in (locale, locale.split("-")[0]):
        if (root / candidate / "strings.toml").is_file():
            return candidate
    return DEFAULT_LOCALE


@functools.cache
def _strings(locale_dir: str) -> dict[str, Any]:
    text = (_templates_root() / locale_dir / "strings.toml").read_text("utf-8")
    return tomllib.loads(text)


# Invisible characters after the preheader keep inboxes from previewing the body after it.
_PREHEADER_PAD = markupsafe.Markup("&#8199;&#847;" * 40)  # noqa: S704 (a constant)


@functools.lru_cache(maxsize=256)
def _agenda(folder: str, steps: tuple[str, ...]) -> tuple[str, markupsafe.Markup]:
    """A monthly guide's steps as a numbered list: (plain text, escaped HTML).

    Rendered by their own small templates (a loop), so the email templates stay made of
    slots and ifs and keep their skeleton fast path (skeleton.py)."""
    label = _strings(folder)["email"]["agenda"]
    text = _template(f"{folder}/agenda.txt.j2").render(label=label, steps=steps)
    html = _template(f"{folder}/agenda.html.j2").render(label=label, steps=steps)
    return text, markupsafe.Markup(html)  # noqa: S704 (autoescaped by Jinja2 above)


def _context(view: NudgeView) -> dict[str, Any]:
    folder = _locale_dir(view.locale)
    s = _strings(folder)
    agenda_text, agenda_html = _agenda(folder, view.item.steps) if view.item.steps else ("", "")
    turn_line = None
    if view.turn is not None:
        turn_line = (
            s["turn"]["yours"]
            if view.turn_is_recipient
            else s["turn"]["partner"].format(name=view.turn)
        )
    return {
        "lang": view.locale.split("-")[0],
        "subject": _subject(view, s),
        # What an inbox shows beside the subject: neutral too in discreet mode.
        "preheader": s["discreet"]["subject"] if view.discreet else view.body,
        "preheader_pad": _PREHEADER_PAD,
        "heading": s["heading"][view.kind],
        "title": view.item.title,
        "recipient": view.recipient,
        "body": view.body,
        "detail": view.item.detail,
        "agenda_text": agenda_text,
        "agenda_html": agenda_html,
        "tip_label": s["email"]["tip"],
        "turn_line": turn_line,
        "footer_why": s["footer"]["why"].format(partner=view.partner),
        "footer_unsubscribe": s["footer"]["unsubscribe"],
        "footer_counselor": s["footer"]["counselor"],
        "unsubscribe_url": view.unsubscribe_url,
        "jar_label": s["jar"]["label"],
        "jar_idea": view.jar_idea,
    }


def _subject(view: NudgeView, s: dict[str, Any]) -> str:
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
    folder = _locale_dir(view.locale)
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
        text=_email_part(f"{folder}/email.txt.j2").render(ctx),
        html=_email_part(f"{folder}/email.html.j2").render(ctx),
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
    s = _strings(_locale_dir(view.locale))
    title = s["discreet"]["push_title"] if view.discreet else view.item.title
    body = view.body
    if view.jar_idea is not None and not view.discreet:  # a lock screen shows it
        body = f"{s['jar']['label']} {view.jar_idea}"
    return {"title": title, "body": body, "url": view.link, "kind": view.kind}


def jar_texts(locale: str) -> tuple[str, str]:
    """The title and body of a date night drawn from the couple's jar (the idea goes apart)."""
    jar = _strings(_locale_dir(locale))["jar"]
    return str(jar["title"]), str(jar["body"])


def render_unsubscribe_page(
    state: PageState,
    *,
    scope: str | None = None,
    action_url: str | None = None,
    all_url: str | None = None,
    locale: str = DEFAULT_LOCALE,
) -> str:
    """The HTML page an unsubscribe link shows: confirm (with buttons), done, invalid, error."""
    folder = _locale_dir(locale)
    s = _strings(folder)
    page = s["unsubscribe"]
    what = s["scope"][scope] if scope is not None else ""
    ctx = {
        "lang": locale.split("-")[0],
        "title": page[f"{state}_title"].format(what=what),
        "text": page[f"{state}_text"].format(what=what),
        "button": page["confirm_button"].format(what=what),
        "all_button": page["confirm_all_button"],
        "action_url": action_url if state == "confirm" else None,
        "all_url": all_url if state == "confirm" else None,
    }
    return _env().get_template(f"{folder}/unsubscribe.html.j2").render(ctx)
