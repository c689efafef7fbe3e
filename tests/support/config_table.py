"""The README's configuration table, read as data, and what the settings classes say for a row.

A row is `| [scope: ]`VARIABLE`[, `VARIABLE`] | default | range | meaning |`, scope `scheduler`
or `notifier` for one service's settings, none for those both read (CommonSettings). The range
column says a number's or a duration's bounds as `bounds_text` writes them from the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import annotated_types
from pydantic.fields import FieldInfo

from couples_nudge.common.settings import CommonSettings
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.scheduler.settings import SchedulerSettings

HEADER = "| variable | default | range | meaning |"
SCOPES: dict[str, type[CommonSettings]] = {
    "": CommonSettings,
    "scheduler": SchedulerSettings,
    "notifier": NotifierSettings,
}
# Read by the command line (typer's envvar), not a settings class.
CLI_ONLY = {"NUDGE_DEBUG"}


@dataclass(frozen=True, slots=True)
class Row:
    scope: str
    variables: tuple[str, ...]
    default: str
    range: str


def rows(readme: Path) -> list[Row]:
    text = readme.read_text()
    lines = text[text.index(HEADER) :].splitlines()[2:]
    found = []
    for line in lines:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        scope, _, names = cells[0].rpartition(": ")
        variables = tuple(re.findall(r"`([A-Z_]+)`", names))
        found.append(Row(scope, variables, cells[1], cells[2]))
    return found


def variable(field: str) -> str:
    return "REDIS_URL" if field == "redis_url" else f"NUDGE_{field.upper()}"


def own_fields(scope: str) -> dict[str, FieldInfo]:
    """The fields a scope's rows describe: a service's own, or the common ones."""
    fields = SCOPES[scope].model_fields
    if scope == "":
        return dict(fields)
    return {n: f for n, f in fields.items() if n not in CommonSettings.model_fields}


def _number(value: Any) -> str:
    if isinstance(value, timedelta):
        return "0" if not value else _iso(value)
    return str(value) if isinstance(value, int) else f"{value:g}"


def _iso(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size, prefix in (("D", 86400, "P"), ("H", 3600, "PT"), ("M", 60, "PT")):
        if seconds % size == 0:
            return f"{prefix}{seconds // size}{unit}"
    return f"PT{seconds}S"


def bounds_text(field: FieldInfo) -> str:
    """`>= 1, <= 1024`, `> 0` (a duration: `> 0, <= PT10M`); empty without numeric bounds."""
    parts = []
    for meta in field.metadata:
        for kind, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if isinstance(meta, getattr(annotated_types, kind.capitalize())):
                parts.append((symbol, getattr(meta, kind)))
    order = {">=": 0, ">": 0, "<=": 1, "<": 1}
    parts.sort(key=lambda part: order[part[0]])
    return ", ".join(f"{symbol} {_number(value)}" for symbol, value in parts)
