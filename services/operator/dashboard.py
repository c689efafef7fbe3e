"""The live status page the notifier serves at /status: no build step, no CDN, no personal data.

Routes (on the notifier's HTTP side):
  GET  /status                        the page (HTML, CSS and JS from services/operator/page.py)
  GET  /status/data.json              figures, recent outcomes and dead letters (polled by the page)
  GET  /status/trace?couple=<id>      one couple's trace (services/operator/trace.py) as HTML:
                                      the page's search form, no script needed
  GET  /status/trace.json?couple=<id> the same as JSON (as `nudge trace --json`)
  POST /status/dead-letters/replay    {"ids": [...]} or {"all": true}; header X-Operator-Token

Outcomes are shown as type, kind, reason, channel and ids only (a service.state_lost.v1 notice
as type "state_lost" with who noticed it); a recent loss of the Redis state also as a banner
(`status.state_lost_recently`, `status.state`); dead letters as ids, source,
attempts and a scrubbed reason, never their payload. Replay is refused unless the notifier has
an operator token (NUDGE_OPERATOR_TOKEN) and the request carries it; the comparison takes
constant time.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Protocol, cast

import redis.asyncio as aioredis
import structlog
from pydantic import SecretStr
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from couples_nudge.common.clock import Clock
from couples_nudge.common.couple_state import UnreadableCouple
from couples_nudge.common.keys import Keys
from couples_nudge.common.logging import scrub
from couples_nudge.common.streams import DATA_FIELD
from couples_nudge.operator import page
from couples_nudge.operator.status import gather_status
from couples_nudge.operator.trace import build_trace
from couples_nudge.operator.trace_page import render_trace_page
from couples_nudge.operator.trace_reader import InvalidCoupleId, read_trace, valid_couple_id
from couples_nudge_schemas import EventRejected, ServiceStateLost, parse_outcomes_entry

__all__ = ["TOKEN_HEADER", "DeadLetterLike", "StatusPage", "outcome_row"]

TOKEN_HEADER: Final = "X-Operator-Token"  # noqa: S105 (a header name, not a secret)
RECENT_OUTCOMES: Final = 25
DEAD_LETTERS_SHOWN: Final = 50
log = structlog.get_logger()
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class DeadLetterLike(Protocol):
    """What the page shows of a dead letter (services/common/dead_letters.DeadLetter fits)."""

    @property
    def id(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def attempts(self) -> int: ...
    @property
    def at(self) -> str: ...
    @property
    def event_type(self) -> str: ...


ListDead = Callable[[int], Awaitable[Sequence[DeadLetterLike]]]
Replay = Callable[[list[str] | None], Awaitable[int]]


def outcome_row(entry_id: str, raw: bytes) -> dict[str, Any] | None:
    """An outcome without personal data: type, kind, reason, channel and ids (None if invalid)."""
    try:
        event = parse_outcomes_entry(raw)
    except EventRejected:
        return None
    if isinstance(event, ServiceStateLost):
        return {
            "entry_id": entry_id,
            "at": event.occurred_at.isoformat(),
            "type": "state_lost",
            "kind": None,
            "reason": f"detected by {event.data.detected_by}",
            "channel": None,
            "occurrence_id": None,
            "couple_id": None,
            "partner_id": None,
            "attempt": None,
        }
    d = event.data
    return {
        "entry_id": entry_id,
        "at": event.occurred_at.isoformat(),
        "type": event.type.split(".")[1],
        "kind": getattr(d, "kind", None),  # a bounce or complaint names no kind
        "reason": getattr(d, "reason", None)
        or getattr(d, "bounce", None)
        or getattr(d, "action", None)  # an answer (engaged) or the listening cadence's move
        or getattr(d, "direction", None),
        "channel": getattr(d, "channel", None),
        "occurrence_id": d.occurrence_id,
        "couple_id": d.couple_id,
        "partner_id": d.partner_id,
        "attempt": getattr(d, "attempt", None),
    }


class StatusPage:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        clock: Clock,
        *,
        token: SecretStr | None,
        list_dead: ListDead,
        replay: Replay,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self._token = token
        self._list_dead = list_dead
        self._replay = replay

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/status", self._page),
            Route("/status/app.js", self._asset),
            Route("/status/app.css", self._asset),
            Route("/status/data.json", self._data),
            Route("/status/trace", self._trace_page),
            Route("/status/trace.json", self._trace_json),
            Route("/status/dead-letters/replay", self._replay_route, methods=["POST"]),
        ]

    async def data(self) -> dict[str, Any]:
        """Everything the page shows, as plain JSON."""
        status = await gather_status(self.redis, self.keys, self.clock.now())
        rows = cast(
            "list[tuple[bytes, dict[bytes, bytes]]]",
            await self.redis.xrevrange(self.keys.outcomes, count=RECENT_OUTCOMES),
        )
        outcomes = [
            row
            for entry, fields in rows
            if (row := outcome_row(entry.decode(), fields.get(DATA_FIELD.encode(), b"")))
        ]
        letters = await self._list_dead(DEAD_LETTERS_SHOWN)
        return {
            "status": status.as_json(),
            "outcomes": outcomes,
            "dead_letters": [
                {
                    "id": d.id,
                    "source": d.source.removeprefix(f"{self.keys.prefix}:"),
                    "event_type": d.event_type,
                    "attempts": d.attempts,
                    "at": d.at,
                    "reason": scrub(d.reason)[:300],
                }
                for d in letters
            ],
            "replay_enabled": self._token is not None,
        }

    async def _page(self, _: Request) -> Response:
        return Response(page.HTML, media_type="text/html", headers=_SECURITY_HEADERS)

    async def trace(self, couple_id: str) -> dict[str, Any]:
        """One couple's trace as plain JSON (InvalidCoupleId for an id outside the pattern)."""
        read = await read_trace(self.redis, self.keys, valid_couple_id(couple_id))
        return build_trace(read, self.clock.now()).as_json()

    async def _trace_page(self, request: Request) -> Response:
        couple = request.query_params.get("couple", "")
        if not couple:
            html = render_trace_page(None, error="Type a couple id to see its trace.")
            return Response(html, media_type="text/html", headers=_SECURITY_HEADERS)
        try:
            couple = valid_couple_id(couple)
        except InvalidCoupleId as exc:
            html = render_trace_page(None, error=str(exc))
            return Response(html, 400, media_type="text/html", headers=_SECURITY_HEADERS)
        read = await read_trace(self.redis, self.keys, couple)
        try:
            trace = build_trace(read, self.clock.now())
        except UnreadableCouple as exc:
            html = render_trace_page(None, error=str(exc))
            return Response(html, 500, media_type="text/html", headers=_SECURITY_HEADERS)
        html = render_trace_page(trace, couple=couple)
        return Response(html, media_type="text/html", headers=_SECURITY_HEADERS)

    async def _trace_json(self, request: Request) -> JSONResponse:
        try:
            data = await self.trace(request.query_params.get("couple", ""))
        except InvalidCoupleId as exc:
            return JSONResponse({"error": str(exc)}, 400, headers=_SECURITY_HEADERS)
        except UnreadableCouple as exc:
            return JSONResponse({"error": str(exc)}, 500, headers=_SECURITY_HEADERS)
        return JSONResponse(data, headers=_SECURITY_HEADERS)

    async def _asset(self, request: Request) -> Response:
        if request.url.path.endswith(".js"):
            return Response(page.JS, media_type="text/javascript", headers=_SECURITY_HEADERS)
        return Response(page.CSS, media_type="text/css", headers=_SECURITY_HEADERS)

    async def _data(self, _: Request) -> JSONResponse:
        return JSONResponse(await self.data(), headers=_SECURITY_HEADERS)

    def authorized(self, presented: str | None) -> bool:
        """The request carries the operator token (never true when no token is configured)."""
        if self._token is None or not presented:
            return False
        expected = self._token.get_secret_value().encode()
        return hmac.compare_digest(presented.encode(), expected)

    async def _replay_route(self, request: Request) -> JSONResponse:
        if self._token is None:
            return JSONResponse({"error": "replay is disabled: set NUDGE_OPERATOR_TOKEN"}, 403)
        if not self.authorized(request.headers.get(TOKEN_HEADER)):
            return JSONResponse({"error": "wrong or missing operator token"}, 403)
        try:
            body = await request.json()
        except (ValueError, RecursionError):  # not JSON, or nested too deep
            return JSONResponse({"error": "body must be JSON"}, 400)
        ids = body.get("ids") if isinstance(body, dict) else None
        if isinstance(body, dict) and body.get("all") is True:
            chosen: list[str] | None = None
        elif isinstance(ids, list) and ids and all(isinstance(i, str) for i in ids):
            chosen = [str(i) for i in ids]
        else:
            usage = 'send {"ids": ["<entry id>", ...]} or {"all": true}'
            return JSONResponse({"error": usage}, 400)
        try:
            replayed = await self._replay(chosen)
        except (RedisError, OSError) as exc:  # a letter whose copy Redis took is off `dead`
            log.warning("dead_letter_replay_refused", error=type(exc).__name__)
            refused = {"error": "Redis did not take the replay; the letters not copied stay"}
            return JSONResponse(refused, 503, headers=_SECURITY_HEADERS)
        return JSONResponse({"replayed": replayed}, headers=_SECURITY_HEADERS)
