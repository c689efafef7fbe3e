"""structlog configured once per process: JSON in production, readable in development.

A redaction step runs last before rendering: whatever a caller binds by mistake, email
addresses, URLs (push endpoints, links with tokens) and fields named like bodies or secrets
never reach the output.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

__all__ = ["configure_logging", "redact"]

_EMAIL: Final = re.compile(r"[^\s@<>\"']+@[^\s@<>\"']+\.[A-Za-z]{2,}")
_URL: Final = re.compile(r"\b(?:https?|rediss?)://\S+")
_SECRET_FIELDS: Final = frozenset(
    {"body", "html", "text", "email", "endpoint", "token", "password", "secret", "raw", "to"}
)


def _scrub(value: str) -> str:
    return _URL.sub("[url]", _EMAIL.sub("[email]", value))


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key in _SECRET_FIELDS:
            event_dict[key] = "[redacted]"
        elif isinstance(value, str):
            event_dict[key] = _scrub(value)
    return event_dict


def configure_logging(service: str, fmt: str = "json", level: str = "info") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    # FastStream logs through stdlib logging; keep its per-message chatter out of production.
    logging.getLogger("faststream").setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
