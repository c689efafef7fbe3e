"""structlog configured once per process: JSON in production, readable in development.

Every line carries `service` (bound at start) and, where the code knows them, `event_type`,
`event_id` and `occurrence_id`. A redaction step runs last before rendering: whatever a caller
binds by mistake, email addresses, URLs (push endpoints, links with tokens) and fields named
like bodies, names or secrets never reach the output. Lines from libraries that log through
the standard library (FastStream, aiosmtplib, redis) go through the same processors and
renderer, at warning level and above only.

Every string value is cut to `LOG_VALUE_LIMIT` characters (a traceback keeps its last
`LOG_TRACEBACK_LIMIT`), so no input can make a line, or the work of redacting it, unbounded.
The patterns run in linear time: the email pattern can only start where a run of address
characters starts (the look-behind), so each character is scanned a bounded number of times,
whatever the text (a quadratic pattern took 7 s on 32,000 characters without an `@`).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Final, TextIO

import structlog

__all__ = [
    "LOG_TRACEBACK_LIMIT",
    "LOG_VALUE_LIMIT",
    "REDACTED_FIELDS",
    "bounded",
    "configure_logging",
    "redact",
    "scrub",
]

LOG_VALUE_LIMIT: Final = 2000
LOG_TRACEBACK_LIMIT: Final = 8000
# An address's domain: a name with a dot and a last label of letters, digits or "-" (a TLD
# like "c0m" is still someone's address), or an address literal in brackets, bounded so that
# an unclosed "[" costs no scan to the end of the text.
_EMAIL: Final = re.compile(
    r"(?<![^\s@<>\"'])[^\s@<>\"']+@(?:\[[A-Za-z0-9:.]{1,64}\]|[^\s@<>\"']+\.[A-Za-z0-9-]{2,})"
)
_WORD_BREAKS: Final = " \t\n\r\f\v<>\"'"
_URL: Final = re.compile(r"\b(?:https?|rediss?)://\S+")
# A pydantic ValidationError's text quotes each failing value ("input_value='Lena', ") up to
# its ", input_type=": a name, an address, a whole profile. A value's repr has no line break.
# A greedy run that stops before the terminator (or a line break) never backtracks: matches
# do not overlap, so the scan is linear (a lazy run required to end in the terminator went
# back over the line for every "input_value=" in it: quadratic on hostile text).
_INPUT: Final = re.compile(r"input_value=(?:(?!, input_type=)[^\n])*")
REDACTED_FIELDS: Final = frozenset(
    {
        "body",
        "html",
        "text",
        "email",
        "endpoint",
        "token",
        "password",
        "secret",
        "raw",
        "to",
        "name",
        "display_name",
        "subject",
        "title",
        "detail",
        "auth",
        "p256dh",
        "devices",  # app device tokens (channel "mobile")
        "access_token",
        "assertion",
        "authorization",
    }
)


def scrub(value: str) -> str:
    """Replace email addresses, URLs and the values pydantic's errors quote in free text
    (reasons, errors, tracebacks).

    Linear in the length of `value` (see the module docstring); `bounded` also cuts it.
    """
    return _URL.sub("[url]", _EMAIL.sub("[email]", _INPUT.sub("input_value=[redacted]", value)))


def bounded(value: str, limit: int = LOG_VALUE_LIMIT) -> str:
    """`value` scrubbed and cut to `limit` characters (plus a note of its full length).

    Only the kept head is scrubbed, so the work is bounded too. The cut can fall inside an
    address, where the pattern no longer sees one: the head's last token is dropped whole.
    """
    if len(value) <= limit:
        return scrub(value)
    head = value[:limit]
    head = head[: max(head.rfind(c) for c in _WORD_BREAKS) + 1]
    return f"{scrub(head)}... [cut: {len(value)} characters]"


def _tail(value: str, limit: int = LOG_TRACEBACK_LIMIT) -> str:
    """A traceback scrubbed and cut to its last `limit` characters (its most telling part)."""
    if len(value) <= limit:
        return scrub(value)
    tail = value[-limit:]
    tail = tail[min((i for c in _WORD_BREAKS if (i := tail.find(c)) >= 0), default=limit) :]
    return f"[cut: {len(value)} characters] ...{scrub(tail)}"


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return bounded(value)
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: "[redacted]" if k in REDACTED_FIELDS else _clean(v) for k, v in value.items()}
    return value


def redact(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key, value in list(event_dict.items()):
        if key in REDACTED_FIELDS:
            event_dict[key] = "[redacted]"
        elif key == "exception" and isinstance(value, str):
            event_dict[key] = _tail(value)
        else:
            event_dict[key] = _clean(value)
    return event_dict


def configure_logging(
    service: str,
    fmt: str = "json",
    level: str = "info",
    *,
    stream: TextIO | None = None,
    cache_loggers: bool = True,
) -> None:
    """Configure structlog and the standard library's root logger; `stream` defaults to stderr.

    `cache_loggers=False` lets a test configure logging for a while and then reset it.
    """
    out = stream if stream is not None else sys.stderr
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    numeric_level = logging.getLevelName(level.upper())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=cache_loggers,
    )
    structlog.contextvars.bind_contextvars(service=service)
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    # Libraries log at warning and above only, whatever our level: their debug output can hold
    # message content (an SMTP server's DATA lines, HTTP bodies) that no redaction can spot.
    root.setLevel(max(numeric_level, logging.WARNING))
    # FastStream logs through its own stdlib loggers (not propagating); give them our handler
    # and keep its per-message chatter out of production.
    faststream = logging.getLogger("faststream")
    faststream.handlers = [handler]
    faststream.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
