"""`nudge catalog`: the catalog's items and coverage, so editors see the gaps.

Prints, per language folder, items per kind and ids missing against English; per kind (and
check-in format), items per love language, focus area and couple context; then the gaps: a
focus area that, for some context, lacks four weeks of items at the kind's busiest rhythm.
`--items` lists the items of `--kind` with their tags instead.
"""

from __future__ import annotations

from typing import Annotated, get_args

import typer
from rich.console import Console
from rich.table import Table

from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.coverage import CONTEXTS, gaps, languages, sections
from couples_nudge_schemas import NudgeKind

__all__ = ["catalog"]

console = Console()
_SHORT = {
    "words_of_affirmation": "words",
    "acts_of_service": "service",
    "receiving_gifts": "gifts",
    "quality_time": "time",
    "physical_touch": "touch",
}


def catalog(
    kind: Annotated[
        NudgeKind | None, typer.Option(help="Only this kind (with --items: required).")
    ] = None,
    items: Annotated[bool, typer.Option("--items", help="List the items and their tags.")] = False,
    show_gaps: Annotated[
        int, typer.Option("--gaps", min=0, help="How many gaps to print (0: only the count).")
    ] = 15,
) -> None:
    """The catalog's items and coverage per kind, language, love language, focus and context."""
    loaded = load_catalog()
    if items:
        if kind is None:
            raise typer.BadParameter("--items needs --kind", param_hint="--items")
        _items(kind)
        return
    table = Table(title="Languages (own folder; others fall back to English)")
    table.add_column("language")
    for k in get_args(NudgeKind):
        table.add_column(k, justify="right")
    table.add_column("missing vs en", justify="right")
    for locale, (counts, missing) in languages(loaded).items():
        table.add_row(locale, *(str(counts[k]) for k in get_args(NudgeKind)), str(len(missing)))
    console.print(table)
    for section in sections(loaded):
        if kind is not None and not section.name.startswith(kind):
            continue
        t = Table(title=f"{section.name}: {section.total} items")
        for column in ("love language", "items", "focus area", "items", "context", "items"):
            t.add_column(column, justify="right" if column == "items" else "left")
        love, focus, context = (
            list(section.by_love.items()),
            list(section.by_focus.items()),
            list(section.by_context.items()),
        )
        for n in range(max(len(love), len(focus), len(context))):
            row: list[str] = []
            for pairs in (love, focus, context):
                name, count = pairs[n] if n < len(pairs) else ("", None)
                row += [_SHORT.get(name, name), "" if count is None else str(count)]
            t.add_row(*row)
        console.print(t)
    found = [g for g in gaps(loaded) if kind is None or g.rhythm.startswith(kind.split("_")[0])]
    console.print(f"[bold]{len(found)} gaps[/]: a focus area with under four weeks of items")
    for g in found[:show_gaps]:
        console.print(f"  {g.rhythm}: {g.focus} / {g.context}: {g.items} of {g.needed}")
    console.print(f"contexts above: {', '.join(CONTEXTS)}", style="dim")


def _items(kind: NudgeKind) -> None:
    t = Table(title=f"{kind} items")
    for column in ("id", "title", "love", "focus", "tags"):
        t.add_column(column)
    for item in load_catalog().items(kind):
        tags: list[str] = [item.setting, item.cost, item.effort, *sorted(item.assumes)]
        tags += [x for x in (item.format, item.deck) if x]
        tags += ["hard"] if item.hard_topic else []
        t.add_row(
            item.id,
            item.title,
            " ".join(_SHORT[x] for x in sorted(item.love_languages)),
            " ".join(sorted(item.focus)),
            " ".join(tags),
        )
    console.print(t)
