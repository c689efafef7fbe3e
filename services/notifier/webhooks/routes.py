"""The relay webhook endpoints on the notifier's HTTP side: verify, map, publish.

    POST /webhooks/ses        Amazon SES through SNS   (NUDGE_SES_TOPIC_ARNS)
    POST /webhooks/sendgrid   SendGrid Event Webhook   (NUDGE_SENDGRID_PUBLIC_KEY)
    POST /webhooks/postmark   Postmark                 (NUDGE_POSTMARK_WEBHOOK_USER/_PASSWORD)
    POST /webhooks/mailgun    Mailgun                  (NUDGE_MAILGUN_SIGNING_KEY)
    POST /webhooks/dsn        an RFC 3464 DSN or RFC 5965 abuse report by email, as raw bytes,
                              with "Authorization: Bearer <NUDGE_DSN_SECRET>"

Each is served only when configured. A request is believed only once its provider's proof
holds (sns.py, sendgrid.py, mailgun.py, postmark.py); it is then acted on once (replay.py).
Any failure answers 401 (no or wrong credentials), 403 (bad signature, stale, replayed,
certificate refused), 400 (malformed), 413 (too large) with a fixed reason code, publishes
nothing, logs a line and counts `nudge_webhook_requests_total`. 503 when Redis cannot take
the events (the relay retries; nothing was marked as seen).

A verified report is mapped to its nudge by the signed Message-ID (message_ids.py): never by
the recipient's address, which is never read, logged or stored. Each report then publishes a
state change on the preferences stream for the scheduler to apply (channel.bounced.v1,
channel.complained.v1: the HTTP side never writes couple state itself) and the fact on the
outcomes stream (nudge.bounced.v1, nudge.complained.v1). Event ids are derived from the
relay's event id, so an event published twice is recognisably the same; a message's soft
bounces are published once (a relay that retries reports each attempt). A report about a
couple erased since publishes nothing (counted `erased`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Final

import redis.asyncio as aioredis
import structlog
from pydantic import BaseModel
from redis.exceptions import RedisError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse
from starlette.routing import BaseRoute, Route

from couples_nudge.common.clock import Clock
from couples_nudge.common.keys import couple_digest
from couples_nudge.common.metrics import Metrics
from couples_nudge.common.streams import publish
from couples_nudge.notifier.message_ids import MessageIds, MessageRef
from couples_nudge.notifier.render import message_domain
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.unsubscribe import parse_keys
from couples_nudge.notifier.webhooks.dsn import dsn_reports
from couples_nudge.notifier.webhooks.mailgun import mailgun_reports, parse_mailgun, verify_mailgun
from couples_nudge.notifier.webhooks.postmark import check_basic_auth, postmark_reports
from couples_nudge.notifier.webhooks.replay import ReplayCache
from couples_nudge.notifier.webhooks.reports import Report, WebhookRefused
from couples_nudge.notifier.webhooks.sendgrid import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_public_key,
    sendgrid_reports,
    verify_sendgrid,
)
from couples_nudge.notifier.webhooks.sns import (
    CertificateFetcher,
    parse_sns,
    ses_reports,
    sns_timestamp,
    verify_signature,
)
from couples_nudge_schemas import (
    ChannelBounced,
    ChannelBouncedData,
    ChannelComplained,
    ChannelComplainedData,
    NudgeBounced,
    NudgeBouncedData,
    NudgeComplained,
    NudgeComplainedData,
    PreferencesUnsubscribed,
    PreferencesUnsubscribedData,
)

__all__ = ["DeliveryReports", "report_routes"]

log = structlog.get_logger()
DISCONNECTED: Final = "disconnected"  # the reason for a client that left mid-body
PRODUCER: Final = "nudge-notifier"
_NS: Final = uuid.UUID("6b1f0c52-8f0e-4e59-a2f4-3c1d7e9a0b24")
_EVENT_MEMORY: Final = timedelta(days=1)  # how long a relay's event id is remembered
Handler = Callable[[Request], Awaitable[PlainTextResponse]]


class DeliveryReports:
    def __init__(
        self,
        redis: aioredis.Redis,
        settings: NotifierSettings,
        clock: Clock,
        metrics: Metrics,
        *,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = clock  # occurred_at of what we publish
        self.wall = wall  # replay windows: relays sign with real time, whatever the clock
        self.metrics = metrics
        self.keys = settings.keys
        self.replay = ReplayCache(redis, self.keys)
        self.window = settings.webhook_replay_window
        self.ids = MessageIds(
            parse_keys(settings.unsubscribe_secrets), message_domain(settings.sender)
        )
        verify: ssl.SSLContext | bool = True
        if settings.sns_ca_file is not None:
            verify = ssl.create_default_context(cafile=str(settings.sns_ca_file))
        self.sns = CertificateFetcher(settings.sns_cert_host_pattern, verify=verify)
        self.sendgrid_key = (
            None
            if settings.sendgrid_public_key is None
            else load_public_key(settings.sendgrid_public_key)
        )

    def routes(self) -> list[BaseRoute]:
        s = self.settings
        served: list[tuple[str, bool, Handler]] = [
            ("ses", bool(s.ses_topic_arns), self._ses),
            ("sendgrid", self.sendgrid_key is not None, self._sendgrid),
            ("postmark", s.postmark_webhook_password is not None, self._postmark),
            ("mailgun", s.mailgun_signing_key is not None, self._mailgun),
            ("dsn", s.dsn_secret is not None, self._dsn),
        ]
        return [
            Route(f"/webhooks/{name}", self._guarded(name, handler), methods=["POST"])
            for name, enabled, handler in served
            if enabled
        ]

    def _guarded(self, source: str, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> PlainTextResponse:
            try:
                answer = await handler(request)
            except WebhookRefused as refused:
                self.metrics.observe_webhook(source, refused.status, refused.reason)
                # A client gone mid-body is anyone's to cause, thousands a minute: counted,
                # and a line at info, not a warning each.
                report = log.info if refused.reason == DISCONNECTED else log.warning
                report(
                    "webhook_refused", source=source, status=refused.status, reason=refused.reason
                )
                headers = {"WWW-Authenticate": "Basic"} if refused.status == 401 else None
                return PlainTextResponse(refused.reason, refused.status, headers=headers)
            except Exception:  # a bug, not a body (those are refused above): counted, 500
                # (the relay tries again), the traceback scrubbed as every logged one is
                self.metrics.observe_webhook(source, 500, "error")
                log.exception("webhook_failed", source=source)
                return PlainTextResponse("error", 500)
            self.metrics.observe_webhook(source, answer.status_code, "accepted")
            return answer

        return endpoint

    async def _body(self, request: Request) -> bytes:
        """The request body, refused (413) past webhook_max_bytes whatever the headers say."""
        limit = self.settings.webhook_max_bytes
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise WebhookRefused(413, "too_large")
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise WebhookRefused(413, "too_large")
                chunks.append(chunk)
        except ClientDisconnect:  # gone before its body ended: nobody to answer
            raise WebhookRefused(400, DISCONNECTED) from None
        return b"".join(chunks)

    # --- the providers ------------------------------------------------------------------
    async def _ses(self, request: Request) -> PlainTextResponse:
        message = parse_sns(await self._body(request))
        if message["TopicArn"] not in self.settings.ses_topic_arns:
            raise WebhookRefused(403, "sns_topic")
        certificate = await self.sns.certificate(message["SigningCertURL"])
        verify_signature(message, certificate, self.clock_wall())
        if abs(self.wall() - sns_timestamp(message).timestamp()) > self.window.total_seconds():
            raise WebhookRefused(403, "stale")
        if message.type == "SubscriptionConfirmation":
            await self._once("ses", message["MessageId"])
            try:
                await self.sns.confirm(message["SubscribeURL"])
            except WebhookRefused:
                await self._forget("ses", message["MessageId"])
                raise
            log.info("sns_subscription_confirmed", topic=message["TopicArn"])
            return PlainTextResponse("confirmed")
        if message.type == "UnsubscribeConfirmation":
            log.warning("sns_unsubscribed", topic=message["TopicArn"])
            return PlainTextResponse("ok")
        return await self._accept("ses", message["MessageId"], ses_reports(message))

    async def _sendgrid(self, request: Request) -> PlainTextResponse:
        assert self.sendgrid_key is not None
        signature = request.headers.get(SIGNATURE_HEADER)
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        if not signature or not timestamp:
            raise WebhookRefused(401, "no_signature")
        body = await self._body(request)
        verify_sendgrid(
            self.sendgrid_key,
            signature,
            timestamp,
            body,
            now=self.wall(),
            window=self.window.total_seconds(),
        )
        # The request's key is what was signed, not the signature: an ECDSA signature has a
        # twin that verifies as well ((r, n - s)), and a replay under it would pass as new.
        signed = hashlib.sha256(timestamp.encode() + body).hexdigest()
        return await self._accept("sendgrid", signed, sendgrid_reports(body))

    async def _postmark(self, request: Request) -> PlainTextResponse:
        password = self.settings.postmark_webhook_password
        assert password is not None
        expected = f"{self.settings.postmark_webhook_user}:{password.get_secret_value()}"
        check_basic_auth(request.headers.get("authorization"), expected.encode())
        reports = postmark_reports(await self._body(request))
        key = reports[0].event_key if reports else None
        if key is None:
            return PlainTextResponse("ignored")
        return await self._accept("postmark", key, reports)

    async def _mailgun(self, request: Request) -> PlainTextResponse:
        key = self.settings.mailgun_signing_key
        assert key is not None
        parsed = parse_mailgun(await self._body(request))
        verify_mailgun(
            key.get_secret_value().encode(),
            parsed,
            now=self.wall(),
            window=self.window.total_seconds(),
        )
        return await self._accept("mailgun", parsed.token, mailgun_reports(parsed))

    async def _dsn(self, request: Request) -> PlainTextResponse:
        secret = self.settings.dsn_secret
        assert secret is not None
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            raise WebhookRefused(401, "no_credentials")
        if not hmac.compare_digest(
            header[7:].strip().encode()[:1024], secret.get_secret_value().encode()
        ):
            raise WebhookRefused(401, "bad_credentials")
        body = await self._body(request)
        reports = dsn_reports(body)
        key = hashlib.sha256(body).hexdigest()
        return await self._accept("dsn", key, reports)

    # --- acting on verified reports -------------------------------------------------------
    def clock_wall(self) -> datetime:
        return datetime.fromtimestamp(self.wall(), UTC)

    async def _once(self, source: str, key: str) -> None:
        try:
            first = await self.replay.first(source, key, self.window * 2)
        except (RedisError, OSError):
            raise WebhookRefused(503, "unavailable") from None
        if not first:
            raise WebhookRefused(403, "replayed")

    async def _forget(self, source: str, key: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.replay.forget(source, key)

    async def _accept(self, source: str, key: str, reports: list[Report]) -> PlainTextResponse:
        """Act on a verified request's reports once: publish them, or undo the mark (503)."""
        await self._once(source, key)
        marked: list[str] = []
        try:
            preferences: list[BaseModel] = []
            outcomes: list[BaseModel] = []
            for report in reports:
                ref = self.ids.read(report.reference)
                if ref is None:
                    self.metrics.observe_report(source, "unmatched")
                    log.info("delivery_report_unmatched", source=source, report=report.kind)
                    continue
                if await self._erased(ref.couple_id):  # its ids are not published again
                    self.metrics.observe_report(source, "erased")
                    log.info("delivery_report_erased", source=source, report=report.kind)
                    continue
                event_key = _event_key(report, ref)
                if not await self.replay.first(source, event_key, _EVENT_MEMORY):
                    self.metrics.observe_report(source, "duplicate")
                    continue
                marked.append(event_key)
                preference, outcome = self._events(report, ref)
                preferences.append(preference)
                if outcome is not None:
                    outcomes.append(outcome)
                self.metrics.observe_report(source, report.kind)
                log.info(
                    "delivery_reported",
                    source=source,
                    report=report.kind,
                    status=report.status,
                    couple_id=ref.couple_id,
                    partner_id=ref.partner_id,
                    occurrence_id=ref.occurrence_id,
                    event_id=str(preference.event_id),
                )
            if preferences:
                s = self.settings
                await publish(
                    self.redis, self.keys.preferences, preferences, maxlen=s.preferences_maxlen
                )
                if outcomes:
                    await publish(
                        self.redis, self.keys.outcomes, outcomes, maxlen=s.outcomes_maxlen
                    )
        except (RedisError, OSError) as exc:
            log.warning("delivery_report_not_published", source=source, error=type(exc).__name__)
            for event_key in marked:
                await self._forget(source, event_key)
            await self._forget(source, key)
            raise WebhookRefused(503, "unavailable") from None
        return PlainTextResponse("ok")

    async def _erased(self, couple_id: str) -> bool:
        """Whether the couple a report names was erased (and not created again since), as
        vanished.py tells it: no record, and a tombstone. Relays report minutes to days
        late; publishing then would name the erased couple and partner again, and that
        their address failed."""
        keys = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(keys.couple(couple_id))
            pipe.zscore(keys.tombstones(keys.shard_of(couple_id)), couple_digest(couple_id))
            exists, erased_at = await pipe.execute()
        return not exists and erased_at is not None

    def _events(
        self, report: Report, ref: MessageRef
    ) -> tuple[
        ChannelBounced | ChannelComplained | PreferencesUnsubscribed,
        NudgeBounced | NudgeComplained | None,
    ]:
        """The state change (preferences stream) and the fact (outcomes stream) of a report.

        An unsubscribe through the relay's own link is the partner's choice, as through ours
        (unsubscribe_routes.py): preferences.unsubscribed.v1 from all email, and no outcome."""
        now = self.clock.now()
        at = now if report.occurred_at is None else min(report.occurred_at, now)
        name = f"{report.source}|{report.event_key}|{ref.couple_id}|{ref.partner_id}"
        first, second = uuid.uuid5(_NS, f"{name}|preferences"), uuid.uuid5(_NS, f"{name}|outcomes")
        ids = {
            "couple_id": ref.couple_id,
            "partner_id": ref.partner_id,
            "occurrence_id": ref.occurrence_id,
            "source": report.source,
        }
        if report.kind == "unsubscribe":
            unsubscribed = {"couple_id": ref.couple_id, "partner_id": ref.partner_id}
            return (
                PreferencesUnsubscribed(
                    type="preferences.unsubscribed.v1",
                    event_id=first,
                    occurred_at=at,
                    producer=PRODUCER,
                    data=PreferencesUnsubscribedData.model_validate(
                        unsubscribed | {"kind": "all", "channel": "email"}
                    ),
                ),
                None,
            )
        if report.kind == "complaint":
            return (
                ChannelComplained(
                    type="channel.complained.v1",
                    event_id=first,
                    occurred_at=at,
                    producer=PRODUCER,
                    data=ChannelComplainedData.model_validate(ids),
                ),
                NudgeComplained(
                    type="nudge.complained.v1",
                    event_id=second,
                    occurred_at=at,
                    producer=PRODUCER,
                    data=NudgeComplainedData.model_validate(ids),
                ),
            )
        bounce = ids | {"bounce": report.kind, "status": report.status}
        return (
            ChannelBounced(
                type="channel.bounced.v1",
                event_id=first,
                occurred_at=at,
                producer=PRODUCER,
                data=ChannelBouncedData.model_validate(bounce),
            ),
            NudgeBounced(
                type="nudge.bounced.v1",
                event_id=second,
                occurred_at=at,
                producer=PRODUCER,
                data=NudgeBouncedData.model_validate(bounce),
            ),
        )


def _event_key(report: Report, ref: MessageRef) -> str:
    """What makes a report the same as one acted on already. A soft bounce is one per message:
    relays that retry report a temporary failure on each attempt (Mailgun), and counting them
    all would let one slow message reach NUDGE_SOFT_BOUNCE_LIMIT and kill a good address."""
    if report.kind == "soft":
        return f"soft:{ref.couple_id}:{ref.partner_id}:{ref.occurrence_id}"
    return f"event:{report.event_key}:{ref.partner_id}"


def report_routes(
    redis: aioredis.Redis, settings: NotifierSettings, clock: Clock, metrics: Metrics
) -> list[BaseRoute]:
    """The configured relay webhook routes (none when no relay is configured)."""
    if not settings.reports_enabled:
        return []
    return DeliveryReports(redis, settings, clock, metrics).routes()
