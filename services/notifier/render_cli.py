"""`nudge render FILE --kind KIND`: what a partner would receive, written out for review.

From a preferences.set.v1 event it writes, per partner (or only `--partner`):

    <couple>-<partner>-<kind>.eml         the complete email (headers, text and HTML parts)
    <couple>-<partner>-<kind>.html        the HTML part, to open in a browser
    <couple>-<partner>-<kind>.push.json   the Web Push payload (title, body, url, kind)

With `--locale` (repeatable, or `--locale all` for every language with strings plus en-GB)
each partner's files are written once per locale, named <couple>-<partner>-<kind>-<locale>.*;
`--discreet` renders as a discreet couple would get it.

It runs the notifier's own code: content choice (content.choose_for, with the couple's context
and check-in format), the view (render.view_for), render_email and render_push. The
unsubscribe link is signed with the configured keys; without NUDGE_PUBLIC_URL and
NUDGE_UNSUBSCRIBE_SECRETS a throwaway preview key and https://nudges.invalid are used, so the
footer still shows.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr
from rich.console import Console

from couples_nudge.common.check_in_format import check_in_format
from couples_nudge.notifier.catalog import Item, load_catalog
from couples_nudge.notifier.channels.email import wire_bytes
from couples_nudge.notifier.content import Pool, choose_for
from couples_nudge.notifier.locales import text_languages
from couples_nudge.notifier.render import deep_link, render_email, render_push, view_for
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.unsubscribe import UnsubscribeClaim, UnsubscribeTokens
from couples_nudge_schemas import (
    EventRejected,
    NudgeKind,
    Partner,
    PreferencesSet,
    PreferencesSetData,
    parse_preference,
)

__all__ = ["RenderedFiles", "every_locale", "render", "render_files"]

console = Console()
_LOCALE = re.compile(r"[a-z]{2,3}(-[A-Z]{2})?")
PREVIEW_URL = "https://nudges.invalid"


@dataclass(frozen=True, slots=True)
class RenderedFiles:
    partner_id: str
    locale: str
    item_id: str
    subject: str
    eml: Path
    html: Path
    push: Path


def every_locale() -> list[str]:
    """Every language with interface strings, and each regional variant of one (en-GB)."""
    catalog = load_catalog()
    languages = list(text_languages())
    return languages + [v for v in ("en-GB",) if catalog.variants(v) is not None]


def render_files(
    data: PreferencesSetData,
    kind: NudgeKind,
    out: Path,
    settings: NotifierSettings,
    *,
    partner_id: str | None = None,
    item_id: str | None = None,
    turn: str | None = None,
    seed: str = "preview",
    when: datetime | None = None,
    locales: list[str] | None = None,
    discreet: bool | None = None,
) -> list[RenderedFiles]:
    """Render one nudge for each partner (or one) into `out`; returns what was written."""
    ids = [p.partner_id for p in data.partners]
    for wanted in (partner_id, turn):
        if wanted is not None and wanted not in ids:
            raise ValueError(f"no partner {wanted!r} in {data.couple_id} (partners: {ids})")
    when = when or datetime.now(UTC)
    tokens = _tokens(settings)
    occurrence_id = f"{data.couple_id}/preview/{kind}@{seed}"
    catalog = load_catalog()
    pool = Pool(kind, catalog.items(kind))
    if discreet is not None:
        data = data.model_copy(update={"discreet": discreet})
    out.mkdir(parents=True, exist_ok=True)
    written: list[RenderedFiles] = []
    for partner in data.partners:
        if partner_id is not None and partner.partner_id != partner_id:
            continue
        other = next(p for p in data.partners if p.partner_id != partner.partner_id)
        chosen = _item(pool.items, item_id, kind) if item_id else None
        chosen = chosen or choose_for(
            pool,
            kind=kind,
            occurrence_id=occurrence_id,
            recipient=partner,
            other=other,
            focus_areas=data.focus_areas,
            check_in_format=check_in_format(data.nudges.check_in),
            context=data.context,
        )
        for locale in locales or [partner.locale]:
            written.append(
                _write(data, partner, locale, kind, catalog.localized(chosen, locale), out,
                       settings, tokens, turn, occurrence_id, when, named=bool(locales))
            )  # fmt: skip
    return written


def _write(
    data: PreferencesSetData,
    partner: Partner,
    locale: str,
    kind: NudgeKind,
    item: Item,
    out: Path,
    settings: NotifierSettings,
    tokens: UnsubscribeTokens,
    turn: str | None,
    occurrence_id: str,
    when: datetime,
    *,
    named: bool,
) -> RenderedFiles:
    """One partner's files in one locale."""
    here = partner.model_copy(update={"locale": locale})
    partners = tuple(here if p.partner_id == partner.partner_id else p for p in data.partners)
    data = data.model_copy(update={"partners": partners})
    claim = UnsubscribeClaim(
        couple_id=data.couple_id,
        partner_id=partner.partner_id,
        scope=kind,
        issued_at=int(when.timestamp()),
    )
    view = view_for(
        data,
        partner.partner_id,
        kind,
        item,
        turn=turn,
        link=deep_link(
            settings.push_link, kind=kind, couple_id=data.couple_id, occurrence_id=occurrence_id
        ),
        unsubscribe_url=tokens.link(claim),
        manage_url=settings.manage_url,
        support_url=settings.support_url,
        when=when,
    )
    address = partner.email or f"{partner.partner_id}@example.invalid"
    message = render_email(
        view,
        sender=settings.sender,
        to=str(Address(display_name=partner.name, addr_spec=address)),
        when=when,
        list_unsubscribe_post=True,
    )
    html = message.get_body(("html",))
    assert html is not None
    suffix = f"-{locale}" if named else ""
    stem = out / f"{data.couple_id}-{partner.partner_id}-{kind}{suffix}"
    files = RenderedFiles(
        partner_id=partner.partner_id,
        locale=locale,
        item_id=item.id,
        subject=str(message["Subject"]),
        eml=stem.with_name(stem.name + ".eml"),
        html=stem.with_name(stem.name + ".html"),
        push=stem.with_name(stem.name + ".push.json"),
    )
    files.eml.write_bytes(wire_bytes(message))
    files.html.write_text(str(html.get_content()), encoding="utf-8")
    push = json.dumps(render_push(view), ensure_ascii=False, indent=2) + "\n"
    files.push.write_text(push, encoding="utf-8")
    return files


def _locales(given: list[str] | None) -> list[str] | None:
    if not given:
        return None
    chosen: list[str] = []
    for locale in given:
        if locale == "all":
            chosen += every_locale()
        elif not _LOCALE.fullmatch(locale):
            raise typer.BadParameter("a locale looks like en, de or en-GB", param_hint="--locale")
        else:
            chosen.append(locale)
    return list(dict.fromkeys(chosen))


def _tokens(settings: NotifierSettings) -> UnsubscribeTokens:
    if settings.public_url is not None and settings.unsubscribe_secrets:
        return UnsubscribeTokens.from_secrets(settings.unsubscribe_secrets, settings.public_url)
    throwaway = SecretStr(f"preview:{secrets.token_urlsafe(32)}")
    return UnsubscribeTokens.from_secrets([throwaway], PREVIEW_URL)


def _item(items: tuple[Item, ...], item_id: str, kind: NudgeKind) -> Item:
    for item in items:
        if item.id == item_id:
            return item
    raise ValueError(f"no {kind} item {item_id!r} in the catalog")


def render(
    file: Annotated[Path, typer.Argument(help="A preferences.set.v1 event as JSON.")],
    kind: Annotated[NudgeKind, typer.Option(help="Which nudge to render.")],
    partner: Annotated[
        str | None, typer.Option(help="Only this partner_id (default: both partners).")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for the .eml, .html and .push.json.")] = Path(
        "rendered"
    ),
    item: Annotated[
        str | None, typer.Option(help="A catalog item id (default: chosen as in production).")
    ] = None,
    turn: Annotated[
        str | None, typer.Option(help="partner_id whose turn it is to plan (date night).")
    ] = None,
    seed: Annotated[str, typer.Option(help="Vary this to see other choices.")] = "preview",
    locale: Annotated[
        list[str] | None,
        typer.Option(help="Render in this locale (repeatable); 'all': every language and en-GB."),
    ] = None,
    discreet: Annotated[
        bool | None,
        typer.Option("--discreet/--not-discreet", help="Override the couple's discreet mode."),
    ] = None,
) -> None:
    """Write the email (.eml, .html) and push payload a partner would get, for review."""
    try:
        event = parse_preference(file.read_bytes())
    except (EventRejected, OSError) as exc:
        reason = exc.reason if isinstance(exc, EventRejected) else type(exc).__name__
        console.print(f"[red]{file} is not a readable preference event:[/] {reason}")
        raise typer.Exit(2) from None
    if not isinstance(event, PreferencesSet):
        console.print(f"[red]{file} holds {event.type}, not preferences.set.v1[/]")
        raise typer.Exit(2)
    settings = NotifierSettings()
    try:
        written = render_files(
            event.data,
            kind,
            out,
            settings,
            partner_id=partner,
            item_id=item,
            turn=turn,
            seed=seed,
            locales=_locales(locale),
            discreet=discreet,
        )
    except ValueError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    if not settings.unsubscribe_enabled:
        console.print(f"[dim]unsubscribe links use a throwaway preview key and {PREVIEW_URL}[/]")
    for files in written:
        console.print(
            f"{files.partner_id} ({files.locale}): [bold]{files.subject}[/] ({files.item_id})\n"
            f"  {files.eml}\n  {files.html}\n  {files.push}"
        )
