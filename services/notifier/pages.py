"""The pages of action links: one-tap answers and the manage page. Rendering only, no I/O.

Both work without JavaScript (plain forms that POST) and are served under a strict Content
Security Policy: nothing loads from anywhere (`default-src 'none'`), the one inline style
block is allowed by its SHA-256 (`csp_for`), forms post only back to this origin, no framing.
Text comes from the partner's language (strings.toml [answer], [manage], [actions], [scope]).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final, Literal, NamedTuple

import jinja2

from couples_nudge.notifier.locales import format_when, html_lang, strings_for, template_for
from couples_nudge.notifier.render import action_title
from couples_nudge_schemas import NudgeKind

__all__ = ["AnswerState", "KindState", "csp_for", "render_answer_page", "render_manage_page"]

AnswerState = Literal["confirm", "done", "invalid", "expired", "error"]


class KindState(NamedTuple):
    """What the manage page shows for one kind of nudge."""

    kind: NudgeKind
    state: Literal["on", "snoozed", "stopped"]
    until: datetime | None  # a snooze's end


_STYLE: Final = re.compile(r"<style>(.*?)</style>", re.S)


@functools.cache
def _env() -> jinja2.Environment:
    from importlib import resources

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(
            str(resources.files("couples_nudge.notifier") / "templates")
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,
    )


def csp_for(html: str) -> str:
    """A Content-Security-Policy allowing exactly the page's inline style blocks."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(block.encode()).digest()).decode() + "'"
        for block in _STYLE.findall(html)
    )
    return (
        f"default-src 'none'; style-src {hashes or chr(39) + 'none' + chr(39)}; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )


def render_answer_page(
    state: AnswerState,
    *,
    locale: str,
    kind: NudgeKind | None = None,
    action: str | None = None,
    action_url: str | None = None,
) -> str:
    """A one-tap link's page: confirm (a button that POSTs), done, invalid, expired, error."""
    s = strings_for(locale)
    page = s["answer"]
    what = action_title(locale, kind, action) if kind is not None and action else ""
    if state == "expired":
        title, text = page["invalid_title"], page["expired_text"]
    elif state == "done" and action == "snooze":
        title, text = page["done_title"], page["snooze_done_text"]
    else:
        title = page[f"{state}_title"].format(what=what)
        text = page[f"{state}_text"].format(what=what)
    ctx = {
        "lang": html_lang(locale),
        "title": title,
        "text": text,
        "button": page["confirm_button"].format(what=what),
        "action_url": action_url if state == "confirm" else None,
    }
    return _env().get_template(template_for(locale, "answer.html.j2")).render(ctx)


def render_manage_page(
    kinds: Sequence[KindState],
    *,
    locale: str,
    timezone: str,
    action_url: str,
    saved: bool = False,
) -> str:
    """The manage page: per kind its state and the choices (snooze a week or a month, stop,
    start again), each a button of one form that POSTs `kind` and `choice`."""
    s = strings_for(locale)
    m = s["manage"]
    rows = [_row(s, m, kind, state, until, locale, timezone) for kind, state, until in kinds]
    ctx = {
        "lang": html_lang(locale),
        "title": m["title"],
        "intro": m["intro"],
        "saved": m["saved"] if saved else None,
        "rows": rows,
        "action_url": action_url,
    }
    return _env().get_template(template_for(locale, "manage.html.j2")).render(ctx)


def _row(
    s: Mapping[str, Any],
    m: Mapping[str, Any],
    kind: NudgeKind,
    state: str,
    until: datetime | None,
    locale: str,
    timezone: str,
) -> dict[str, Any]:
    label = str(m[state])
    if state == "snoozed" and until is not None:
        when = format_when(until, timezone, locale, s["email"]["when"])
        label = str(m["snoozed_until"]).format(when=when)
    choices = ["week", "month", "stop"] if state == "on" else ["start", "week", "month"]
    if state == "stopped":
        choices = ["start"]
    heading = str(s["heading"][kind])
    return {
        "kind": kind,
        "heading": heading,
        "state": label,
        "choices": [{"value": c, "label": m[c]} for c in choices],
    }
