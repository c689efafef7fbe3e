"""The common shape of a relay's report, and how a request is refused. Pure.

Every provider module turns a verified request into `Report`s; routes.py maps each to the
nudge it names and publishes it. A request that cannot be believed raises `WebhookRefused`
with the HTTP status to answer and a short, fixed reason code (logged and counted; it never
holds request content).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from couples_nudge_schemas import ReportSource

__all__ = [
    "Report",
    "ReportKind",
    "WebhookRefused",
    "at_epoch",
    "at_iso",
    "field",
    "malformed",
    "status_code",
]

# "unsubscribe": the partner unsubscribed through the relay's own link or list (the relay
# then drops every email to them): published as preferences.unsubscribed.v1 (all, email).
ReportKind = Literal["hard", "soft", "complaint", "unsubscribe"]
_STATUS: Final = re.compile(r"[245]\.[0-9]{1,3}\.[0-9]{1,3}")


@dataclass(frozen=True, slots=True)
class Report:
    """One bounce, complaint or unsubscribe about one message, as a relay reported it."""

    source: ReportSource
    kind: ReportKind
    reference: str | None  # the Message-ID or our token as the relay gave it back
    event_key: str  # the relay's id of this event (deduplication, deterministic event ids)
    occurred_at: datetime | None = None  # when the relay says it happened
    status: str | None = None  # an RFC 3463 enhanced status code, when one was given


class WebhookRefused(Exception):
    """A request not to believe: answer `status`; `reason` is a fixed code, safe to log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def malformed(reason: str = "malformed") -> WebhookRefused:
    return WebhookRefused(400, reason)


def field(data: Any, *path: str) -> Any:
    """data[path[0]][path[1]]...; None where any step is missing or not an object."""
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


def status_code(text: Any) -> str | None:
    """The enhanced status code found at the start of `text` (e.g. "5.1.1 user unknown")."""
    if not isinstance(text, str):
        return None
    found = _STATUS.match(text.strip()[:20])
    return found.group(0) if found else None


def at_epoch(value: Any) -> datetime | None:
    """Unix seconds (int, float or their text) as an aware instant; None if not one."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    if not 0 < seconds < 2**33:
        return None
    return datetime.fromtimestamp(seconds, UTC)


def at_iso(value: Any) -> datetime | None:
    """An ISO 8601 instant with an offset (or Z) as an aware datetime; None if not one."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
