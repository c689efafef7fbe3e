"""Errors at the edge of the command line: one line saying what is wrong and what to do.

    CliError            a message meant for the user, with its exit code
    explain(exc, ...)   any exception -> CliError (known kinds get a specific message)

Exit codes: 2 for usage errors (a missing or unreadable file, invalid JSON or event, an
invalid setting), 1 for runtime ones (Redis or SMTP unreachable, anything unexpected).
Messages name a server by host and port only (never a user or password) and never echo
input: invalid JSON is located by line and column, validation reasons are bounded, a file
name given on the command line is cut to `MAX_ECHO` characters. `nudge --debug` (or
NUDGE_DEBUG=1) shows the traceback instead (services/cli.py).
"""

from __future__ import annotations

import json
import re
import socket
import ssl
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import aiosmtplib
from pydantic import ValidationError
from redis import exceptions as redis_errors

from couples_nudge.common.secret_files import SecretFileError
from couples_nudge_schemas import EventRejected

__all__ = ["RUNTIME", "USAGE", "CliError", "Where", "bounded", "explain", "redis_location"]

USAGE: Final = 2
RUNTIME: Final = 1
MAX_ECHO: Final = 120
DEBUG_HINT: Final = "run again with --debug (or NUDGE_DEBUG=1) to see the traceback"


class CliError(Exception):
    """An error the command line reports as one line on stderr, then exits with `code`."""

    def __init__(self, message: str, code: int = USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True, slots=True)
class Where:
    """Where the servers are, as `host:port` (no credentials), for the messages."""

    redis: str = "the server in REDIS_URL"
    smtp: str = "NUDGE_SMTP_HOST:NUDGE_SMTP_PORT"


def bounded(text: str, limit: int = MAX_ECHO) -> str:
    """Text cut to `limit` characters, on one line: safe to print whatever came in."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def redis_location(url: str) -> str:
    """`host:port` (or the socket path) of a Redis URL; never its user or password."""
    try:
        parts = urlsplit(url)
        if parts.scheme == "unix":
            return bounded(parts.path) or "a unix socket"
        host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    except ValueError:
        return "the server in REDIS_URL (the URL does not parse)"
    return f"[{host}]:{port}" if ":" in host else f"{bounded(host)}:{port}"


def explain(exc: BaseException, where: Where | None = None) -> CliError:
    """The one line (and exit code) for an exception that reached the command line."""
    where = where or Where()
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, redis_errors.RedisError):
        return _redis(exc, where.redis)
    if isinstance(exc, aiosmtplib.SMTPException):
        return CliError(
            f"cannot reach the SMTP server at {where.smtp} ({_network_cause(exc)}): "
            "start it, or set NUDGE_SMTP_HOST and NUDGE_SMTP_PORT",
            RUNTIME,
        )
    if isinstance(exc, SecretFileError):
        return CliError(str(exc))
    if isinstance(exc, ValidationError) and exc.title.endswith("Settings"):
        return _settings(exc)
    if isinstance(exc, EventRejected):
        return CliError(f"not a valid preference event: {bounded(exc.reason, 300)}")
    if isinstance(exc, json.JSONDecodeError):
        return CliError(f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")
    if isinstance(exc, UnicodeDecodeError):
        return CliError("not UTF-8 text: save the file as UTF-8")
    if isinstance(exc, OSError) and exc.filename is not None:
        return _file(exc)
    if isinstance(exc, OSError):
        return CliError(f"network or system error ({_network_cause(exc)}); {DEBUG_HINT}", RUNTIME)
    return CliError(f"unexpected error ({type(exc).__name__}); {DEBUG_HINT}", RUNTIME)


def _redis(exc: redis_errors.RedisError, at: str) -> CliError:
    if isinstance(exc, redis_errors.AuthenticationError):
        return CliError(
            f"Redis at {at} refused the credentials: check the user and password in REDIS_URL",
            RUNTIME,
        )
    if isinstance(exc, redis_errors.TimeoutError):
        return CliError(
            f"Redis at {at} did not answer in time: is it overloaded or behind a firewall?",
            RUNTIME,
        )
    if isinstance(exc, redis_errors.ConnectionError):
        return CliError(
            f"cannot reach Redis at {at} ({_network_cause(exc)}): start it, or set REDIS_URL "
            "to a server that runs",
            RUNTIME,
        )
    return CliError(
        f"Redis at {at} answered with an error ({type(exc).__name__}); {DEBUG_HINT}", RUNTIME
    )


def _network_cause(exc: BaseException) -> str:
    """A short, fixed category for why a connection failed (no server text, no input)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "host name not found"
        if isinstance(current, TimeoutError | redis_errors.TimeoutError):
            return "timed out"
        if isinstance(current, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(current, ConnectionResetError | BrokenPipeError):
            return "connection reset"
        current = current.__cause__ or current.__context__
    if "refused" in str(exc).lower():
        return "connection refused"
    return type(exc).__name__


def _settings(exc: ValidationError) -> CliError:
    problems = []
    for item in exc.errors(include_url=False, include_input=False)[:3]:
        message = _VARIABLE_WORD.sub(_variable, _said(item["type"], item["msg"]))
        if not item["loc"]:  # a check of several settings: its message names them
            problems.append(bounded(message, 240))
            continue
        variable = _variable_of(str(item["loc"][0]))
        problems.append(f"{bounded(variable, 40)}: {bounded(message, 160)}")
    return CliError(
        f"invalid setting {'; '.join(problems)} (see the configuration table in README.md)"
    )


# A setting's field name in a validator's message (`public_url`), said as its variable.
_VARIABLE_WORD: Final = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")


def _said(kind: str, message: str) -> str:
    """pydantic's message, in an operator's words where its own are a parser's or Python's."""
    if kind.startswith("time_delta_"):  # "... "day" identifier in duration not correctly ..."
        return "not a duration: give ISO 8601 (PT30S, PT4H, P30D) or seconds (30)"
    return message.removeprefix("Value error, ").replace("datetime.timedelta(0)", "0 seconds")


def _variable(match: re.Match[str]) -> str:
    return _variable_of(match.group())


def _variable_of(field: str) -> str:
    if field.lower() in ("redis_url", "nudge_redis_url"):
        return "REDIS_URL"
    return field if field.isupper() else f"NUDGE_{field.upper()}"


def _file(exc: OSError) -> CliError:
    name = bounded(str(exc.filename))
    if isinstance(exc, FileNotFoundError):
        return CliError(f"{name}: no such file or directory: check the path")
    if isinstance(exc, IsADirectoryError):
        return CliError(f"{name} is a directory: name a file")
    if isinstance(exc, NotADirectoryError):
        return CliError(f"{name}: a part of this path is not a directory")
    if isinstance(exc, PermissionError):
        return CliError(f"{name}: permission denied")
    return CliError(f"{name}: cannot be read or written ({type(exc).__name__})", RUNTIME)
