"""The HTTP side of action links, served by the notifier beside the unsubscribe routes.

    GET  /a/<token>        a small page asking to confirm the answer; changes nothing (mail
                           scanners and link previews follow GETs)
    POST /a/<token>        acts: publishes the answer's events once (answers.py: on the
                           preferences stream for the scheduler, nudge.engaged.v1 on the
                           outcomes stream), however often the link is followed
    GET  /manage/<token>   the manage page: per kind, snooze a week or a month, stop, start again
    POST /manage/<token>   form fields `kind` and `choice`: publishes that change, shows the page
                           (CHANGES_PER_MINUTE a partner, then 429: change_limit.py)

The HTTP side never writes couple state: it reads the couple hash (the partner's language,
what is snoozed or stopped) and publishes events; the scheduler applies them. It remembers
which answers it published (engagement.py), so a replayed POST changes nothing. A forged,
tampered, malformed or unknown-key token gets 400, an expired one-tap link 410; if Redis cannot
take the events the answer is 503 (the same link can be followed again). Tokens, names and
addresses are never logged, nor IP addresses or user agents; there are no open pixels and no
redirects: every link is the page itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Final, get_args

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from couples_nudge.common.clock import Clock, epoch_ms, from_ms
from couples_nudge.common.couple_state import CoupleState, UnreadableCouple, parse_couple
from couples_nudge.common.metrics import Metrics
from couples_nudge.common.streams import publish
from couples_nudge.notifier.actions import ActionClaim, ActionTokens, ExpiredToken, InvalidToken
from couples_nudge.notifier.answers import ManageChoice, answer_events, manage_events
from couples_nudge.notifier.change_limit import ChangeLimit, too_many
from couples_nudge.notifier.engagement import ClaimState, EngagementStore
from couples_nudge.notifier.pages import (
    AnswerState,
    KindState,
    csp_for,
    render_answer_page,
    render_manage_page,
)
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.unsubscribe import parse_keys
from couples_nudge_schemas import NudgeKind

__all__ = ["ActionPages", "action_routes"]

log = structlog.get_logger()
MAX_BODY: Final = 4 * 1024
# How long a request waits for another one publishing the same answer (a double tap): a
# publish takes milliseconds; past this, the partner is asked to try again (503).
_BUSY_TRIES: Final = 20
_BUSY_WAIT_S: Final = 0.1
_KINDS: Final[tuple[NudgeKind, ...]] = get_args(NudgeKind)
_CHOICES: Final = ("week", "month", "stop", "start")
# Schedule records are "<kind code>/<target>" (services/scheduler/records.py).
KIND_OF_CODE: Final[dict[str, NudgeKind]] = {
    "d": "date_night",
    "c": "check_in",
    "a": "appreciation",
}
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


class ActionPages:
    def __init__(
        self,
        tokens: ActionTokens,
        redis: aioredis.Redis,
        settings: NotifierSettings,
        clock: Clock,
        metrics: Metrics | None = None,
    ) -> None:
        self.tokens = tokens
        self.redis = redis
        self.keys = settings.keys
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.store = EngagementStore(
            redis, settings.keys, keep_ms=int(settings.action_link_ttl.total_seconds() * 1000)
        )
        self.limit = ChangeLimit(redis, settings.keys, "manage")

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/a/{token}", self.confirm, methods=["GET"]),
            Route("/a/{token}", self.act, methods=["POST"]),
            Route("/manage/{token}", self.manage, methods=["GET"]),
            Route("/manage/{token}", self.change, methods=["POST"]),
        ]

    # --- one-tap answers --------------------------------------------------------------------

    def _answer(
        self, state: AnswerState, status: int, locale: str, claim: ActionClaim | None = None,
        token: str | None = None,
    ) -> HTMLResponse:  # fmt: skip
        html = render_answer_page(
            state,
            locale=locale,
            kind=None if claim is None else claim.kind,
            action=None if claim is None else claim.action,
            action_url=None if token is None else self.tokens.url(token, "done"),
        )
        return _page(html, status)

    def _verify(self, token: str, *, manage: bool) -> ActionClaim | AnswerState:
        try:
            claim = self.tokens.verify(token, now_s=int(self.clock.now().timestamp()))
        except ExpiredToken:
            return "expired"
        except InvalidToken:
            return "invalid"
        if (claim.action == "manage") != manage:
            return "invalid"
        return claim

    async def confirm(self, request: Request) -> HTMLResponse:
        token = request.path_params["token"]
        claim = self._verify(token, manage=False)
        if isinstance(claim, str):
            log.info("action_refused", method="GET", reason=claim)
            return self._answer(claim, 410 if claim == "expired" else 400, "en")
        try:
            couple = await self._couple(claim.couple_id)
        except (RedisError, OSError, UnreadableCouple) as exc:
            log.warning("action_unavailable", error=type(exc).__name__)
            return self._answer("error", 503, "en")
        return self._answer("confirm", 200, _locale(couple, claim.partner_id), claim, token)

    async def act(self, request: Request) -> HTMLResponse:
        claim = self._verify(request.path_params["token"], manage=False)
        if isinstance(claim, str):
            log.info("action_refused", method="POST", reason=claim)
            return self._answer(claim, 410 if claim == "expired" else 400, "en")
        try:
            couple = await self._couple(claim.couple_id)
            locale = _locale(couple, claim.partner_id)
            state, first_ms, lease_ms = await self._claim(claim)
            if state == "busy":  # another request still publishing it, past our patience
                log.info("action_busy", couple_id=claim.couple_id, action=claim.action)
                return self._answer("error", 503, locale)
            if state == "gone":  # erased, or never known: nothing to answer, nothing kept
                log.info("action_refused", method="POST", reason="unknown_couple")
                return self._answer("invalid", 404, locale)
            if state == "publish":
                prefs, engaged = answer_events(claim, first_ms)
                try:
                    await publish(
                        self.redis, self.keys.preferences, prefs,
                        maxlen=self.settings.preferences_maxlen,
                    )  # fmt: skip
                    await publish(
                        self.redis, self.keys.outcomes, [engaged],
                        maxlen=self.settings.outcomes_maxlen,
                    )  # fmt: skip
                except (RedisError, OSError):
                    # The answer is not kept: give the claim back, so that following the
                    # link again publishes it (a refused release lapses after LEASE_MS).
                    with contextlib.suppress(RedisError, OSError):
                        await self.store.release(
                            claim.couple_id, claim.occurrence_id, claim.partner_id,
                            claim.action, lease_ms=lease_ms,
                        )  # fmt: skip
                    raise
                await self.store.done(
                    claim.couple_id, claim.occurrence_id, claim.partner_id, claim.action
                )
                if self.metrics is not None:
                    self.metrics.observe_action(claim.kind, claim.action)
                log.info(
                    "action_published",
                    event_id=str(engaged.event_id),
                    couple_id=claim.couple_id,
                    partner_id=claim.partner_id,
                    kind=claim.kind,
                    action=claim.action,
                )
            else:
                log.info("action_repeated", couple_id=claim.couple_id, action=claim.action)
        except (RedisError, OSError, UnreadableCouple) as exc:
            log.warning("action_not_published", error=type(exc).__name__)
            return self._answer("error", 503, "en")
        return self._answer("done", 200, locale, claim)

    async def _claim(self, claim: ActionClaim) -> tuple[ClaimState, int, int]:
        """ENGAGE's answer for the claim, and the lease ms it was asked with; while another
        request holds the answer ("busy": a double tap), asked again for a little while, so
        that this request answers with what the other one did (done), or takes over a lease
        it gave back (publish)."""
        for _ in range(_BUSY_TRIES):
            lease_ms = epoch_ms(self.clock.now())
            state, first_ms = await self.store.claim(
                claim.couple_id,
                claim.occurrence_id,
                claim.partner_id,
                claim.kind,
                claim.action,
                now_ms=lease_ms,
            )
            if state != "busy":
                break
            await asyncio.sleep(_BUSY_WAIT_S)
        return state, first_ms, lease_ms

    # --- the manage page --------------------------------------------------------------------

    async def manage(self, request: Request) -> HTMLResponse:
        token = request.path_params["token"]
        claim = self._verify(token, manage=True)
        if isinstance(claim, str):
            log.info("manage_refused", method="GET", reason=claim)
            return self._answer("invalid", 400, "en")
        try:
            couple = await self._couple(claim.couple_id)
        except (RedisError, OSError, UnreadableCouple) as exc:
            log.warning("manage_unavailable", error=type(exc).__name__)
            return self._answer("error", 503, "en")
        return self._manage_page(token, claim, couple, saved=False)

    async def change(self, request: Request) -> HTMLResponse:
        token = request.path_params["token"]
        claim = self._verify(token, manage=True)
        if isinstance(claim, str):
            log.info("manage_refused", method="POST", reason=claim)
            return self._answer("invalid", 400, "en")
        form = await _form(request)
        kind, choice = form.get("kind"), form.get("choice")
        if kind not in _KINDS or choice not in _CHOICES:
            log.info("manage_refused", method="POST", reason="bad_form")
            return self._answer("invalid", 400, "en")
        try:
            couple = await self._couple(claim.couple_id)
            if not couple.exists:
                return self._answer("invalid", 404, "en")
            if not await self.limit.allow(claim.couple_id, claim.partner_id):
                log.info("manage_refused", method="POST", reason="too_many_changes")
                return too_many(self._answer("error", 429, _locale(couple, claim.partner_id)))
            now = self.clock.now()
            prefs, engaged = manage_events(
                claim, _kind(kind), _choice(choice), now, uuid.uuid4().hex
            )
            await publish(
                self.redis, self.keys.preferences, prefs, maxlen=self.settings.preferences_maxlen
            )
            await publish(
                self.redis, self.keys.outcomes, [engaged], maxlen=self.settings.outcomes_maxlen
            )
        except (RedisError, OSError, UnreadableCouple) as exc:
            log.warning("manage_not_published", error=type(exc).__name__)
            return self._answer("error", 503, "en")
        if self.metrics is not None:
            self.metrics.observe_action(_kind(kind), engaged.data.action)
        log.info(
            "manage_published",
            couple_id=claim.couple_id,
            partner_id=claim.partner_id,
            kind=kind,
            choice=choice,
        )
        return self._manage_page(token, claim, couple, saved=True, changed=(kind, choice))

    def _manage_page(
        self,
        token: str,
        claim: ActionClaim,
        couple: CoupleState,
        *,
        saved: bool,
        changed: tuple[str, str] | None = None,
    ) -> HTMLResponse:
        now_ms = epoch_ms(self.clock.now())
        kinds: list[KindState] = []
        for kind in _kinds_of(couple):
            until = couple.fields.get(f"snz:{claim.partner_id}:{kind}", "").partition("|")[2]
            if changed is not None and changed[0] == kind:  # not applied yet: show the choice
                state = {"stop": "stopped", "start": "on"}.get(changed[1], "snoozed")
                kinds.append(KindState(kind, state, None))  # type: ignore[arg-type]
            elif couple.unsubscribed(claim.partner_id, kind, "all"):
                kinds.append(KindState(kind, "stopped", None))
            elif until.isdigit() and now_ms < int(until):
                kinds.append(KindState(kind, "snoozed", from_ms(int(until))))
            else:
                kinds.append(KindState(kind, "on", None))
        partner = _partner(couple, claim.partner_id)
        html = render_manage_page(
            kinds,
            locale=_locale(couple, claim.partner_id),
            timezone=partner[1] if partner else "UTC",
            action_url=self.tokens.url(token, "manage"),
            saved=saved,
        )
        return _page(html, 200)

    async def _couple(self, couple_id: str) -> CoupleState:
        raw = await self.redis.hgetall(self.keys.couple(couple_id))
        return parse_couple({_b(k): _b(v) for k, v in raw.items()})


def _b(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _page(html: str, status: int) -> HTMLResponse:
    return HTMLResponse(
        html, status, headers={**_HEADERS, "Content-Security-Policy": csp_for(html)}
    )


def _kind(value: str) -> NudgeKind:
    for kind in _KINDS:
        if kind == value:
            return kind
    raise ValueError("not a kind")


def _choice(value: str) -> ManageChoice:
    for choice in _CHOICES:
        if choice == value:
            return choice
    raise ValueError("not a choice")


def _partner(couple: CoupleState, partner_id: str) -> tuple[str, str] | None:
    """(locale, zone) of a partner, if the couple is known."""
    if couple.profile is None:
        return None
    for p in couple.profile.partners:
        if p.partner_id == partner_id:
            return p.locale, p.timezone
    return None


def _locale(couple: CoupleState, partner_id: str) -> str:
    partner = _partner(couple, partner_id)
    return partner[0] if partner else "en"


def _kinds_of(couple: CoupleState) -> list[NudgeKind]:
    """The kinds the couple has schedules of (all, if none is known)."""
    codes = {name.split("/", 1)[0] for name in couple.records}
    found = [KIND_OF_CODE[c] for c in sorted(codes) if c in KIND_OF_CODE]
    return [k for k in _KINDS if k in found] or list(_KINDS)


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form of a POST (small, two fields); {} for anything else."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_BODY:
        return {}
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return {}
    try:
        async with request.form(max_files=0, max_fields=10) as form:
            return {k: v for k, v in form.items() if isinstance(v, str)}
    except (HTTPException, ClientDisconnect):  # malformed (Starlette says 400), or gone
        return {}


def action_routes(
    redis: aioredis.Redis, settings: NotifierSettings, clock: Clock, metrics: Metrics | None
) -> list[BaseRoute]:
    """The action-link routes, or none when action links are not configured."""
    if not settings.actions_enabled or settings.public_url is None:
        return []
    tokens = ActionTokens(
        parse_keys(settings.unsubscribe_secrets),
        settings.public_url,
        max_age_s=int(settings.action_link_ttl.total_seconds()),
    )
    return ActionPages(tokens, redis, settings, clock, metrics).routes()
