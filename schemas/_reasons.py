"""Why a message was refused, as short, printable text that never repeats the input.

Reasons are logged and stored on the rejected stream, so they are built from pydantic's error
locations, types and messages only (`include_input=False`), with the few messages that quote
the input (a wrong discriminator tag) rewritten. A location part that is not a plain
identifier (a hostile JSON key can be a megabyte, or a name) shows as `?`; every message is
cut; the whole reason is at most `REASON_LIMIT` characters and holds no control character.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = ["REASON_LIMIT", "describe", "safe_reason"]

REASON_LIMIT: Final = 300
_MESSAGE_LIMIT: Final = 120
_LOC_PART_LIMIT: Final = 40
_MAX_PROBLEMS: Final = 8
# Model fields, union member labels (`literal['all']`), list indexes: no spaces, no `@`.
_PLAIN_LOC: Final = re.compile(r"[A-Za-z0-9_.\-\[\]',()]+")


def _printable(text: str) -> str:
    """Non-printable characters (controls, line separators, bidi marks) as escapes."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def safe_reason(text: str) -> str:
    """Any reason made bounded and printable: what the rejected stream and the logs get."""
    return _cut(_printable(text[: REASON_LIMIT * 2]), REASON_LIMIT)


def _where(loc: tuple[int | str, ...]) -> str:
    parts = [
        str(p)
        if isinstance(p, int)
        else _cut(p, _LOC_PART_LIMIT)
        if _PLAIN_LOC.fullmatch(p[: _LOC_PART_LIMIT * 2])
        else "?"
        for p in loc
    ]
    return ".".join(parts) or "event"


def _message(item: ErrorDetails) -> str:
    match item["type"]:
        case "json_invalid":
            return "not valid JSON"
        case "union_tag_invalid":  # pydantic's message quotes the input's tag
            ctx = item.get("ctx") or {}
            if newer := _other_version(ctx.get("tag"), str(ctx.get("expected_tags", ""))):
                return newer
            return (
                f"{ctx.get('discriminator', 'the tag')} does not match any of the expected tags: "
                f"{ctx.get('expected_tags', '?')}"
            )
        case "greater_than_equal" | "less_than_equal":  # an instant's bound: ISO, not repr
            return _cut(_UTC_REPR.sub(_iso, item["msg"]), _MESSAGE_LIMIT)
        case _:
            return _cut(item["msg"], _MESSAGE_LIMIT)


# A versioned event type: `preferences.set.v1` is `preferences.set` at version 1.
_VERSIONED: Final = re.compile(
    r"(?P<name>[a-z][a-z_]*(?:\.[a-z][a-z_]*)+)\.v(?P<version>[0-9]{1,4})"
)
_TAG: Final = re.compile(r"'([^']*)'")


def _other_version(tag: object, expected_tags: str) -> str | None:
    """The reason for a known event at a version this service does not read (a publisher
    ahead of the service, docs/publishers.md "How the contracts evolve"); None for any other
    tag. Only the version number comes from the input; the name is the service's own."""
    found = _VERSIONED.fullmatch(tag) if isinstance(tag, str) else None
    if found is None:
        return None
    name = found["name"]
    read = [t for t in _TAG.findall(expected_tags) if t.rpartition(".v")[0] == name]
    if not read:
        return None
    return _cut(
        f"type: v{int(found['version'])} of {read[0].rpartition('.v')[0]} is not read here "
        f"(read: {', '.join(read)}); upgrade the reader first",
        _MESSAGE_LIMIT,
    )


# pydantic writes a datetime bound (NudgeDue's scheduled_at) as its repr.
_UTC_REPR: Final = re.compile(
    r"datetime\.datetime\((\d{1,4}), (\d{1,2}), (\d{1,2}), (\d{1,2}), (\d{1,2}), "
    r"tzinfo=datetime\.timezone\.utc\)"
)


def _iso(found: re.Match[str]) -> str:
    year, month, day, hour, minute = (int(part) for part in found.groups())
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:00Z"


def describe(error: ValidationError) -> str:
    """`location: message` for the first problems that fit in `REASON_LIMIT`, and a count of
    the others; safe to log and to publish."""
    parts = [
        f"{_where(item['loc'])}: {_message(item)}"
        for item in error.errors(include_url=False, include_input=False)
    ]
    room = REASON_LIMIT - len(" (+99 more)")
    shown = [_cut(parts[0], room)] if parts else ["event: invalid"]
    for part in parts[1:_MAX_PROBLEMS]:
        if sum(len(p) + 2 for p in shown) + len(part) > room:
            break
        shown.append(part)
    more = f" (+{len(parts) - len(shown)} more)" if len(parts) > len(shown) else ""
    return safe_reason("; ".join(shown) + more)
