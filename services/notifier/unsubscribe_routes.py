"""The HTTP side of one-click unsubscribe (RFC 8058), served by the notifier.

    GET  /unsubscribe/<token>   a small confirmation page; changes nothing (link scanners
                                and prefetchers may GET any link)
    POST /unsubscribe/<token>   body "List-Unsubscribe=One-Click" (what mail clients send, and
                                what the page's buttons send): publishes
                                preferences.unsubscribed.v1 on the preferences stream, 200
                                (CHANGES_PER_MINUTE a partner, then 429: change_limit.py)

The scheduler applies the event to the couple's state and the notifier checks that state just
before every send. A token that is forged, tampered with, malformed or signed with a key we no
longer hold gets 400 and publishes nothing. The unsubscribe covers the token's scope (one kind
or all) on every channel; the confirmation page also offers "all nudges". Tokens, names and
addresses are never logged; pages are not cached, indexed or framed and send no Referer.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Final

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from couples_nudge.common.clock import Clock
from couples_nudge.common.couple_state import UnreadableCouple, parse_couple
from couples_nudge.common.streams import publish
from couples_nudge.notifier.catalog import DEFAULT_LOCALE
from couples_nudge.notifier.change_limit import ChangeLimit, too_many
from couples_nudge.notifier.delivery import PRODUCER
from couples_nudge.notifier.pages import csp_for
from couples_nudge.notifier.render import PageState, render_unsubscribe_page
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.unsubscribe import InvalidToken, UnsubscribeClaim, UnsubscribeTokens
from couples_nudge_schemas import PreferencesUnsubscribed, PreferencesUnsubscribedData

__all__ = ["UnsubscribePages", "unsubscribe_routes"]

log = structlog.get_logger()

MAX_BODY: Final = 8 * 1024
_LOCALE_READ_S: Final = 1.0  # how long the confirmation page waits for the partner's locale
ONE_CLICK: Final = ("List-Unsubscribe", "One-Click")
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


class UnsubscribePages:
    def __init__(
        self,
        tokens: UnsubscribeTokens,
        redis: aioredis.Redis,
        settings: NotifierSettings,
        clock: Clock,
    ) -> None:
        self.tokens = tokens
        self.redis = redis
        self.keys = settings.keys
        self.stream = settings.keys.preferences
        self.maxlen = settings.preferences_maxlen
        self.clock = clock
        self.limit = ChangeLimit(redis, settings.keys, "unsubscribe")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/unsubscribe/{token}", self.confirm, methods=["GET"]),
            Route("/unsubscribe/{token}", self.unsubscribe, methods=["POST"]),
        ]

    def _page(
        self,
        state: PageState,
        status: int,
        *,
        token: str | None = None,
        claim: UnsubscribeClaim | None = None,
        locale: str = DEFAULT_LOCALE,
    ) -> HTMLResponse:
        all_url = None
        if state == "confirm" and claim is not None and claim.scope != "all":
            everything = claim.model_copy(update={"scope": "all"})
            all_url = self.tokens.link(everything)
        html = render_unsubscribe_page(
            state,
            scope=None if claim is None else claim.scope,
            action_url=None if token is None else self.tokens.url(token),
            all_url=all_url,
            locale=locale,
        )
        # The page's own style by hash, forms only to this origin: as the action pages
        # (`style-src 'unsafe-inline'` and no form-action before).
        return HTMLResponse(
            html, status, headers={**_HEADERS, "Content-Security-Policy": csp_for(html)}
        )

    async def _locale(self, claim: UnsubscribeClaim) -> str:
        """The partner's own language for the page, read from the couple; the default when it
        cannot be read soon (the page must show while Redis does not answer: only the
        unsubscribe itself, the POST, needs Redis)."""
        try:
            async with asyncio.timeout(_LOCALE_READ_S):
                raw = await self.redis.hgetall(self.keys.couple(claim.couple_id))
            couple = parse_couple({_b(k): _b(v) for k, v in raw.items()})
        except (RedisError, OSError, TimeoutError, UnreadableCouple):
            return DEFAULT_LOCALE
        if couple.profile is not None:
            for partner in couple.profile.partners:
                if partner.partner_id == claim.partner_id:
                    return partner.locale
        return DEFAULT_LOCALE

    async def confirm(self, request: Request) -> HTMLResponse:
        token = request.path_params["token"]
        try:
            claim = self.tokens.verify(token)
        except InvalidToken:
            log.info("unsubscribe_refused", method="GET")
            return self._page("invalid", 400)
        locale = await self._locale(claim)
        return self._page("confirm", 200, token=token, claim=claim, locale=locale)

    async def unsubscribe(self, request: Request) -> HTMLResponse:
        try:
            claim = self.tokens.verify(request.path_params["token"])
        except InvalidToken:
            log.info("unsubscribe_refused", method="POST")
            return self._page("invalid", 400)
        if not await _is_one_click(request):
            log.info("unsubscribe_refused", method="POST", reason="not_one_click")
            return self._page("invalid", 400)
        event = PreferencesUnsubscribed(
            type="preferences.unsubscribed.v1",
            event_id=uuid.uuid4(),
            occurred_at=self.clock.now(),
            producer=PRODUCER,
            data=PreferencesUnsubscribedData(
                couple_id=claim.couple_id,
                partner_id=claim.partner_id,
                kind=claim.scope,
                channel="all",
            ),
        )
        try:
            if not await self.limit.allow(claim.couple_id, claim.partner_id):
                log.info("unsubscribe_refused", method="POST", reason="too_many_changes")
                return too_many(self._page("error", 429))
            await publish(self.redis, self.stream, [event], maxlen=self.maxlen)
        except (RedisError, OSError) as exc:
            log.warning("unsubscribe_not_published", error=type(exc).__name__)
            return self._page("error", 503)
        log.info(
            "unsubscribe_published",
            event_id=str(event.event_id),
            couple_id=claim.couple_id,
            partner_id=claim.partner_id,
            scope=claim.scope,
        )
        return self._page("done", 200, claim=claim, locale=await self._locale(claim))


async def _is_one_click(request: Request) -> bool:
    """RFC 8058: the POST body (urlencoded or multipart) holds List-Unsubscribe=One-Click."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_BODY:
        return False
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return False
    try:
        async with request.form(max_files=0, max_fields=20) as form:
            return form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    except (HTTPException, ClientDisconnect):  # malformed (Starlette says 400), or gone
        return False


def unsubscribe_routes(
    redis: aioredis.Redis, settings: NotifierSettings, clock: Clock
) -> list[BaseRoute]:
    """The unsubscribe routes, or none when unsubscribe links are not configured."""
    if settings.public_url is None or not settings.unsubscribe_secrets:
        return []
    tokens = UnsubscribeTokens.from_secrets(settings.unsubscribe_secrets, settings.public_url)
    return UnsubscribePages(tokens, redis, settings, clock).routes()


def _b(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
