"""The relay webhook endpoints over real HTTP, publishing to real Redis: each provider's signed
bounce and complaint (signatures made by the test), and forged, replayed, stale, malformed and
oversized requests, which get 401/403/400/413 and publish nothing."""

from __future__ import annotations

import asyncio
import json
import time
from base64 import b64decode, b64encode
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from pydantic import SecretStr
from structlog.testing import capture_logs

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.couple_state import parse_couple
from couples_nudge.common.http import HttpServer
from couples_nudge.common.metrics import Metrics
from couples_nudge.common.streams import read_events
from couples_nudge.notifier.message_ids import MessageIds, MessageRef
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.unsubscribe import parse_keys
from couples_nudge.notifier.webhooks.routes import DeliveryReports
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge_schemas import (
    ChannelBounced,
    ChannelComplained,
    NudgeBounced,
    NudgeComplained,
    parse_outcomes_entry,
    parse_preference,
)
from tests.support.events import example
from tests.support.notifier import plant
from tests.support.relays import (
    TOPIC,
    FakeSendGrid,
    FakeSns,
    abuse_report,
    basic,
    dsn,
    mailgun_body,
    postmark_bounce,
    postmark_subscription_change,
    sendgrid_events,
    ses_bounce,
    ses_complaint,
)
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.tls import HttpsServer, self_signed
from tests.support.waiting import eventually

NOW = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
SECRET = "k1:" + "s" * 40
MAILGUN_KEY = "mailgun-signing-key-0123456789"
DSN_SECRET = "dsn-secret-0123456789abcdef"
OCCURRENCE = "maya-sam/d/both@1796000000"
REF = MessageRef("maya-sam", "maya", OCCURRENCE)
Events = tuple[list[Any], list[Any]]


class Relays:
    """The endpoints, a fake SNS (certificate and SubscribeURL over HTTPS) and SendGrid's key."""

    def __init__(
        self, redis: aioredis.Redis, settings: NotifierSettings, sns: FakeSns, sns_origin: str
    ) -> None:
        self.redis = redis
        self.settings = settings
        self.sns = sns
        self.sns_origin = sns_origin
        self.metrics = Metrics("notifier", settings.keys)
        self.reports = DeliveryReports(redis, settings, ManualClock(NOW), self.metrics)
        self.server = HttpServer(self.reports.routes(), host="127.0.0.1", port=0)
        ids = MessageIds(parse_keys(settings.unsubscribe_secrets), "example.org")
        self.message_id = ids.message_id(REF)
        self.token = ids.token(REF)

    async def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> int:
        async with httpx.AsyncClient(timeout=10) as client:
            answer = await client.post(
                f"{self.server.url}/webhooks/{path}", content=body, headers=headers or {}
            )
        return answer.status_code

    async def sns_post(self, fields: dict[str, str]) -> int:
        return await self.post("ses", json.dumps(fields).encode(), {"Content-Type": "text/plain"})

    async def events(self) -> Events:
        keys = self.settings.keys
        return (
            await read_events(self.redis, keys.preferences, parse_preference),
            await read_events(self.redis, keys.outcomes, parse_outcomes_entry),
        )

    def counted(self, source: str, status: int, reason: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "nudge_webhook_requests_total",
            {"source": source, "status": str(status), "reason": reason},
        )
        return value or 0.0


SENDGRID = FakeSendGrid()
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"


@pytest.fixture
async def relays(
    redis: aioredis.Redis, redis_url: str, key_prefix: str, tmp_path: Path
) -> AsyncIterator[Relays]:
    certificate = self_signed(tmp_path)
    sns = FakeSns()
    async with HttpsServer(sns.app(), certificate) as https:
        settings = notifier_settings(
            redis_url,
            key_prefix,
            sender="Nudges <nudges@example.org>",
            public_url="https://nudges.example.org",
            unsubscribe_secrets=[SecretStr(SECRET)],
            ses_topic_arns=[TOPIC],
            sns_cert_host_pattern=r"127\.0\.0\.1",
            sns_ca_file=certificate.cert_file,
            sendgrid_public_key=SENDGRID.public_key,
            postmark_webhook_user="postmark",
            postmark_webhook_password=SecretStr("postmark-password-123"),
            mailgun_signing_key=SecretStr(MAILGUN_KEY),
            dsn_secret=SecretStr(DSN_SECRET),
            webhook_max_bytes=64 * 1024,
        )
        found = Relays(redis, settings, sns, https.origin)
        await found.server.start()
        try:
            yield found
        finally:
            await found.server.stop()


def _bounces(events: Events) -> list[tuple[str, str, str, str | None]]:
    """(type, partner, bounce or "complaint", occurrence) of every event on both streams."""
    return sorted(
        (e.type, e.data.partner_id, getattr(e.data, "bounce", "complaint"), e.data.occurrence_id)
        for stream in events
        for e in stream
    )


def _hard(occurrence: str | None = OCCURRENCE) -> list[tuple[str, str, str, str | None]]:
    return [
        ("channel.bounced.v1", "maya", "hard", occurrence),
        ("nudge.bounced.v1", "maya", "hard", occurrence),
    ]


def _complaint() -> list[tuple[str, str, str, str | None]]:
    return [
        ("channel.complained.v1", "maya", "complaint", OCCURRENCE),
        ("nudge.complained.v1", "maya", "complaint", OCCURRENCE),
    ]


class TestSes:
    @pytest.mark.parametrize("version", ["1", "2"])
    async def test_signed_hard_bounce_is_published(self, relays: Relays, version: str) -> None:
        """An SES bounce through SNS, signed (SHA-1 or SHA-256) with a certificate served over
        HTTPS: channel.bounced.v1 on preferences and nudge.bounced.v1 on outcomes."""
        fields = relays.sns.message(
            relays.sns_origin, ses_bounce(relays.message_id), version=version
        )
        assert await relays.sns_post(fields) == 200
        events = await relays.events()
        assert _bounces(events) == _hard()
        [preference] = events[0]
        assert isinstance(preference, ChannelBounced)
        assert (preference.data.source, preference.data.status) == ("ses", "5.1.1")

    async def test_transient_bounce_is_soft_and_complaint_is_published(
        self, relays: Relays
    ) -> None:
        """A Transient bounce is soft; a Complaint is channel.complained.v1."""
        soft = relays.sns.message(relays.sns_origin, ses_bounce(relays.message_id, "Transient"))
        spam = relays.sns.message(relays.sns_origin, ses_complaint(relays.message_id))
        assert await relays.sns_post(soft) == 200
        assert await relays.sns_post(spam) == 200
        kinds = [(e.type, getattr(e.data, "bounce", None)) for e in (await relays.events())[0]]
        assert kinds == [("channel.bounced.v1", "soft"), ("channel.complained.v1", None)]

    async def test_subscription_is_confirmed(self, relays: Relays) -> None:
        """A signed SubscriptionConfirmation is confirmed by GETting its SubscribeURL."""
        fields = relays.sns.message(relays.sns_origin, "confirm", type_="SubscriptionConfirmation")
        assert await relays.sns_post(fields) == 200
        assert relays.sns.confirmed == [fields["Token"]]
        assert await relays.events() == ([], [])

    @pytest.mark.parametrize(
        ("tamper", "status", "reason"),
        [
            ({"Message": "forged"}, 403, "bad_signature"),
            ({"TopicArn": "arn:aws:sns:eu-west-1:999999999999:other"}, 403, "sns_topic"),
            ({"SignatureVersion": "3"}, 403, "sns_signature_version"),
            ({"Signature": "not base64!"}, 403, "bad_signature"),
            (
                {"SigningCertURL": "https://sns.evil.example/SimpleNotificationService.pem"},
                403,
                "sns_certificate_host",
            ),
            ({"SigningCertURL": "http://127.0.0.1/x.pem"}, 403, "sns_certificate_host"),
            ({"MessageId": None}, 400, "sns_fields"),
        ],
    )
    async def test_forged_or_malformed_is_refused(
        self, relays: Relays, tamper: dict[str, str | None], status: int, reason: str
    ) -> None:
        """A message changed after signing, from another topic, with a certificate URL off the
        allowed host, or missing fields is refused and changes nothing."""
        fields: dict[str, Any] = relays.sns.message(
            relays.sns_origin, ses_bounce(relays.message_id)
        )
        fields.update(tamper)
        fields = {k: v for k, v in fields.items() if v is not None}
        assert await relays.sns_post(fields) == status
        assert await relays.events() == ([], [])
        assert relays.counted("ses", status, reason) == 1

    async def test_replayed_and_stale_messages_are_refused(self, relays: Relays) -> None:
        """The same MessageId twice is refused the second time; a Timestamp outside the
        replay window is refused even with a good signature."""
        fields = relays.sns.message(relays.sns_origin, ses_bounce(relays.message_id))
        assert await relays.sns_post(fields) == 200
        assert await relays.sns_post(fields) == 403
        old = datetime.now(UTC) - timedelta(minutes=10)
        stale = relays.sns.message(relays.sns_origin, ses_bounce(relays.message_id), at=old)
        assert await relays.sns_post(stale) == 403
        assert _bounces(await relays.events()) == _hard()
        assert relays.counted("ses", 403, "replayed") == 1
        assert relays.counted("ses", 403, "stale") == 1

    async def test_the_address_is_never_logged(self, relays: Relays) -> None:
        """Relays name the recipient; no log line repeats it."""
        fields = relays.sns.message(relays.sns_origin, ses_bounce(relays.message_id))
        with capture_logs() as logs:
            assert await relays.sns_post(fields) == 200
        assert any(line["event"] == "delivery_reported" for line in logs)
        assert "maya@example.test" not in repr(logs)


class TestSendGrid:
    async def test_signed_batch_is_published(self, relays: Relays) -> None:
        """A signed batch: a bounce (hard), a blocked bounce (soft), a spam report, and a
        delivered event (ignored)."""
        body = sendgrid_events(
            relays.token,
            ("bounce", {"type": "bounce", "status": "5.1.1"}),
            ("bounce", {"type": "blocked", "status": "4.7.1"}),
            ("spamreport", {}),
            ("delivered", {}),
        )
        assert await relays.post("sendgrid", body, SENDGRID.headers(body)) == 200
        preferences, outcomes = await relays.events()
        assert [(e.type, getattr(e.data, "bounce", None)) for e in preferences] == [
            ("channel.bounced.v1", "hard"),
            ("channel.bounced.v1", "soft"),
            ("channel.complained.v1", None),
        ]
        assert [e.type for e in outcomes] == [
            "nudge.bounced.v1",
            "nudge.bounced.v1",
            "nudge.complained.v1",
        ]

    async def test_forged_replayed_stale_and_unsigned_are_refused(self, relays: Relays) -> None:
        """Signed by another key (403), no signature (401), a replay (403), an old timestamp
        (403): nothing published but the one genuine request."""
        body = sendgrid_events(relays.token, ("bounce", {"type": "bounce"}))
        assert await relays.post("sendgrid", body, FakeSendGrid().headers(body)) == 403
        assert await relays.post("sendgrid", body, {"Content-Type": "application/json"}) == 401
        stale = SENDGRID.headers(body, timestamp=int(time.time()) - 600)
        assert await relays.post("sendgrid", body, stale) == 403
        genuine = SENDGRID.headers(body)
        assert await relays.post("sendgrid", body, genuine) == 200
        assert await relays.post("sendgrid", body, genuine) == 403
        tampered = body.replace(b'"bounce"', b'"spamreport"', 1)
        assert await relays.post("sendgrid", tampered, SENDGRID.headers(body)) == 403
        assert _bounces(await relays.events()) == _hard()

    async def test_a_replay_under_the_signatures_twin_is_refused(self, relays: Relays) -> None:
        """An ECDSA signature (r, s) has a twin (r, n - s) that verifies the same body: a
        replay under it is a replay (it got 200, keyed by the signature's text)."""
        body = sendgrid_events(relays.token, ("bounce", {"type": "bounce"}))
        genuine = SENDGRID.headers(body)
        r, s = decode_dss_signature(b64decode(genuine[SIGNATURE]))
        twin = encode_dss_signature(r, ec.SECP256R1().group_order - s)
        assert await relays.post("sendgrid", body, genuine) == 200
        assert (
            await relays.post("sendgrid", body, genuine | {SIGNATURE: b64encode(twin).decode()})
            == 403
        )
        assert relays.counted("sendgrid", 403, "replayed") == 1

    async def test_an_odd_element_does_not_sink_its_batch(self, relays: Relays) -> None:
        """A signed batch with one element that is not an event object: the others are
        published and the batch gets 200 (a 400 made SendGrid retry, then drop, all of it)."""
        events = json.loads(sendgrid_events(relays.token, ("bounce", {"type": "bounce"})))
        body = json.dumps([7, *events, None]).encode()
        assert await relays.post("sendgrid", body, SENDGRID.headers(body)) == 200
        assert _bounces(await relays.events()) == _hard()

    async def test_signed_but_malformed_is_400(self, relays: Relays) -> None:
        """A genuine signature over a body that is not an event list: 400, nothing published."""
        body = b'{"not": "a list"}'
        assert await relays.post("sendgrid", body, SENDGRID.headers(body)) == 400
        assert await relays.events() == ([], [])


class TestMailgun:
    async def test_permanent_failure_and_complaint(self, relays: Relays) -> None:
        """A signed permanent failure is a hard bounce, a complaint a complaint."""
        hard = mailgun_body(MAILGUN_KEY, relays.message_id)
        spam = mailgun_body(MAILGUN_KEY, relays.message_id, event="complained")
        assert await relays.post("mailgun", hard) == 200
        assert await relays.post("mailgun", spam) == 200
        assert _bounces(await relays.events()) == sorted(_hard() + _complaint())

    async def test_a_send_to_a_complainer_suppressed_is_a_complaint(self, relays: Relays) -> None:
        """A permanent failure for reason suppress-complaint is Mailgun refusing to mail someone
        who reported spam before: a complaint (kept across preferences.set), not a bounce."""
        body = mailgun_body(MAILGUN_KEY, relays.message_id, reason="suppress-complaint")
        assert await relays.post("mailgun", body) == 200
        assert _bounces(await relays.events()) == _complaint()

    async def test_retries_of_one_message_are_one_soft_bounce(self, relays: Relays) -> None:
        """Mailgun reports a temporary failure on every attempt it retries (greylisting, a full
        mailbox): one message's attempts count one soft bounce, not one each, so a message
        that is only slow cannot reach NUDGE_SOFT_BOUNCE_LIMIT and kill a good address."""
        for _ in range(3):
            body = mailgun_body(MAILGUN_KEY, relays.message_id, severity="temporary")
            assert await relays.post("mailgun", body) == 200
        assert _bounces(await relays.events()) == [
            ("channel.bounced.v1", "maya", "soft", OCCURRENCE),
            ("nudge.bounced.v1", "maya", "soft", OCCURRENCE),
        ]
        # A permanent failure of the same message afterwards is still a hard bounce.
        assert await relays.post("mailgun", mailgun_body(MAILGUN_KEY, relays.message_id)) == 200
        preferences, _ = await relays.events()
        assert [e.data.bounce for e in preferences] == ["soft", "hard"]

    async def test_forged_reused_stale_and_unsigned_are_refused(self, relays: Relays) -> None:
        """Wrong key (403), a reused token (403), an old timestamp (403), no signature (401)."""
        assert await relays.post("mailgun", mailgun_body("wrong-key", relays.message_id)) == 403
        first = mailgun_body(MAILGUN_KEY, relays.message_id, token="t" * 50)
        reused = mailgun_body(MAILGUN_KEY, relays.message_id, severity="temporary", token="t" * 50)
        old = mailgun_body(MAILGUN_KEY, relays.message_id, timestamp=int(time.time()) - 3600)
        unsigned = json.dumps({"event-data": {"event": "failed"}}).encode()
        assert await relays.post("mailgun", first) == 200
        assert await relays.post("mailgun", reused) == 403
        assert await relays.post("mailgun", old) == 403
        assert await relays.post("mailgun", unsigned) == 401
        assert _bounces(await relays.events()) == _hard()
        assert relays.counted("mailgun", 403, "replayed") == 1


class TestRelayUnsubscribes:
    """A partner who unsubscribes through the relay's own link (the relay then drops every
    email to them) is unsubscribed here too, from all email, as through our own link: before,
    these events were ignored (or a hard bounce, forgotten at the next preferences.set), and
    the service went on sending what the relay silently dropped."""

    async def test_sendgrid_unsubscribes_and_a_drop_for_an_unsubscribed_address(
        self, relays: Relays
    ) -> None:
        body = sendgrid_events(
            relays.token,
            ("unsubscribe", {}),
            ("group_unsubscribe", {"asm_group_id": 7}),
            ("dropped", {"reason": "Unsubscribed Address"}),
        )
        assert await relays.post("sendgrid", body, SENDGRID.headers(body)) == 200
        assert _unsubscribes(await relays.events()) == [("maya", "all", "email")] * 3

    async def test_mailgun_unsubscribed_and_a_failure_for_an_unsubscribed_address(
        self, relays: Relays
    ) -> None:
        unsubscribed = mailgun_body(MAILGUN_KEY, relays.message_id, event="unsubscribed")
        suppressed = mailgun_body(MAILGUN_KEY, relays.message_id, reason="suppress-unsubscribe")
        assert await relays.post("mailgun", unsubscribed) == 200
        assert await relays.post("mailgun", suppressed) == 200
        assert _unsubscribes(await relays.events()) == [("maya", "all", "email")] * 2

    async def test_postmark_subscription_change_by_the_recipient(self, relays: Relays) -> None:
        """Only the recipient's own suppression counts: a reactivation, or one by the
        sender's staff, changes nothing."""
        auth = basic("postmark", "postmark-password-123")
        for origin, suppress in (("Recipient", True), ("Customer", True), ("Recipient", False)):
            body = postmark_subscription_change(relays.token, origin=origin, suppress=suppress)
            assert await relays.post("postmark", body, auth) == 200
        assert _unsubscribes(await relays.events()) == [("maya", "all", "email")]

    async def test_the_scheduler_stops_the_partners_email(
        self, relays: Relays, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """End to end: the event applied by the scheduler's own code unsubscribes Maya from
        every kind by email, and Sam not at all."""
        settings = relays.settings
        scheduler = scheduler_settings(redis_url, key_prefix)
        await plant(redis, settings, example()["data"], NOW)
        body = sendgrid_events(relays.token, ("unsubscribe", {}))
        assert await relays.post("sendgrid", body, SENDGRID.headers(body)) == 200
        [event] = (await relays.events())[0]
        store = ScheduleStore(redis, scheduler.keys, due_maxlen=1000)
        assert await PreferenceIngest(store, ManualClock(NOW), scheduler).apply(event) == "applied"
        raw = await redis.hgetall(settings.keys.couple(REF.couple_id))
        state = parse_couple(cast("dict[bytes, bytes]", raw))
        assert all(
            state.unsubscribed("maya", kind, "email")
            for kind in ("date_night", "check_in", "appreciation")
        )
        assert not state.unsubscribed("sam", "date_night", "email")


def _unsubscribes(events: Events) -> list[tuple[str, str, str]]:
    """(partner, kind, channel) of the unsubscribes published; nothing else is published."""
    preferences, outcomes = events
    assert outcomes == []
    assert all(e.type == "preferences.unsubscribed.v1" for e in preferences)
    return [(e.data.partner_id, e.data.kind, e.data.channel) for e in preferences]


class TestPostmark:
    async def test_bounce_and_complaint_behind_basic_auth(self, relays: Relays) -> None:
        """With the right credentials a HardBounce and a SpamComplaint are published."""
        auth = basic("postmark", "postmark-password-123")
        assert await relays.post("postmark", postmark_bounce(relays.token), auth) == 200
        complaint = postmark_bounce(relays.token, "SpamComplaint", "SpamComplaint")
        assert await relays.post("postmark", complaint, auth) == 200
        assert _bounces(await relays.events()) == sorted(_hard() + _complaint())

    async def test_wrong_or_missing_credentials_and_replays_are_refused(
        self, relays: Relays
    ) -> None:
        """Wrong password or none: 401; the same event ID again: 403."""
        body = postmark_bounce(relays.token)
        assert await relays.post("postmark", body, basic("postmark", "guess")) == 401
        assert await relays.post("postmark", body) == 401
        auth = basic("postmark", "postmark-password-123")
        assert await relays.post("postmark", body, auth) == 200
        assert await relays.post("postmark", body, auth) == 403
        assert _bounces(await relays.events()) == _hard()


class TestDsn:
    async def test_rfc3464_bounce_and_abuse_report(self, relays: Relays) -> None:
        """A DSN (failed, 5.1.1) is a hard bounce; an RFC 5965 abuse report a complaint; a
        delayed DSN (4.x.x) reports nothing."""
        auth = {"Authorization": f"Bearer {DSN_SECRET}", "Content-Type": "message/rfc822"}
        assert await relays.post("dsn", dsn(relays.message_id), auth) == 200
        assert await relays.post("dsn", abuse_report(relays.message_id), auth) == 200
        delayed = dsn(relays.message_id, status="4.4.1", action="delayed")
        assert await relays.post("dsn", delayed, auth) == 200
        assert _bounces(await relays.events()) == sorted(_hard() + _complaint())

    async def test_refused_without_the_secret_and_when_replayed_or_malformed(
        self, relays: Relays
    ) -> None:
        """Wrong bearer: 401; the same DSN twice: 403; not a report: 400."""
        body = dsn(relays.message_id)
        assert await relays.post("dsn", body, {"Authorization": "Bearer nope"}) == 401
        auth = {"Authorization": f"Bearer {DSN_SECRET}"}
        assert await relays.post("dsn", body, auth) == 200
        assert await relays.post("dsn", body, auth) == 403
        assert await relays.post("dsn", b"Subject: hello\r\n\r\nhi\r\n", auth) == 400
        assert _bounces(await relays.events()) == _hard()


class TestMapping:
    async def test_a_forged_message_id_maps_to_nothing(self, relays: Relays) -> None:
        """A verified report whose Message-ID is not one we signed publishes nothing (it is
        counted as unmatched): a relay's payload cannot name a partner we never mailed."""
        forged = relays.message_id.replace(relays.token[-4:], "AAAA")
        auth = {"Authorization": f"Bearer {DSN_SECRET}"}
        assert await relays.post("dsn", dsn(forged), auth) == 200
        assert await relays.post("dsn", dsn("<random@mail.example>", "5.1.2"), auth) == 200
        assert await relays.events() == ([], [])
        unmatched = relays.metrics.registry.get_sample_value(
            "nudge_delivery_reports_total", {"source": "dsn", "report": "unmatched"}
        )
        assert unmatched == 2

    async def test_a_report_about_an_erased_couple_publishes_nothing(
        self, relays: Relays, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A bounce or complaint that arrives after its couple was erased (relays report
        minutes to days late) is answered 200 and publishes nothing: no outcome names the
        erased couple and partner again (nudge.bounced.v1 and nudge.complained.v1 were
        published after the erasure, with its ids and the fact that the address failed)."""
        scheduler = scheduler_settings(redis_url, key_prefix)
        await plant(redis, relays.settings, example()["data"], NOW)
        erase = parse_preference(
            json.dumps(
                {
                    "type": "couple.erased.v1",
                    "event_id": "0b6c3f2e-5d4a-4b8e-9f1a-2c3d4e5f6a7b",
                    "occurred_at": NOW.isoformat(),
                    "producer": "tests",
                    "data": {"couple_id": REF.couple_id},
                }
            ).encode()
        )
        store = ScheduleStore(redis, scheduler.keys, due_maxlen=1000)
        assert await PreferenceIngest(store, ManualClock(NOW), scheduler).apply(erase) == "erased"
        hard = mailgun_body(MAILGUN_KEY, relays.message_id)
        spam = mailgun_body(MAILGUN_KEY, relays.message_id, event="complained")
        assert await relays.post("mailgun", hard) == 200
        assert await relays.post("mailgun", spam) == 200
        assert await relays.events() == ([], [])
        erased = relays.metrics.registry.get_sample_value(
            "nudge_delivery_reports_total", {"source": "mailgun", "report": "erased"}
        )
        assert erased == 2

    @pytest.mark.parametrize(
        ("path", "body", "status", "reason"),
        [
            ("ses", b"[" * 50_000, 400, "not_json"),
            ("mailgun", b"[" * 50_000, 400, "not_json"),
            ("ses", json.dumps({"Type": ["Lena"]}).encode(), 400, "not_sns"),
            ("ses", "certificate URL with a control character", 403, "sns_certificate_host"),
        ],
    )
    async def test_hostile_unsigned_bodies_get_a_counted_refusal(
        self, relays: Relays, path: str, body: bytes | str, status: int, reason: str
    ) -> None:
        """JSON nested past Python's recursion limit, a Type that is a list, a certificate URL
        httpx cannot parse: refused with their reason and counted, like any malformed request,
        and nothing logged above a warning (each was a 500 with an error-level traceback)."""
        if isinstance(body, str):
            fields = relays.sns.message(relays.sns_origin, ses_bounce(relays.message_id))
            fields["SigningCertURL"] = "https://127.0.0.1/a\x7f.pem"
            body = json.dumps(fields).encode()
        with capture_logs() as logs:
            assert await relays.post(path, body) == status
        assert relays.counted(path, status, reason) == 1
        assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
        assert await relays.events() == ([], [])

    async def test_a_client_gone_mid_body_is_counted_quietly(self, relays: Relays) -> None:
        """Fifty clients that promise a body and leave halfway, unauthenticated: each counted
        (400, disconnected), no line above info (each was an error line with a traceback,
        anyone's to cause)."""
        host, port = relays.server.url.removeprefix("http://").split(":")
        request = (
            "POST /webhooks/mailgun HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n" + "[" * 100
        ).encode()
        with capture_logs() as logs:
            for _ in range(50):
                _reader, writer = await asyncio.open_connection(host, int(port))
                writer.write(request)
                await writer.drain()
                writer.close()
                await writer.wait_closed()
            await eventually(
                lambda: _value(relays.counted("mailgun", 400, "disconnected")),
                until=lambda n: n == 50,
            )
        assert [e for e in logs if e["log_level"] not in ("debug", "info")] == []
        assert await relays.events() == ([], [])

    async def test_oversized_body_is_413(self, relays: Relays) -> None:
        """A body past NUDGE_WEBHOOK_MAX_BYTES is refused before it is read in full."""
        auth = {"Authorization": f"Bearer {DSN_SECRET}"}
        assert await relays.post("dsn", b"x" * (64 * 1024 + 1), auth) == 413
        assert await relays.events() == ([], [])

    async def test_events_carry_the_report_type(self, relays: Relays) -> None:
        """The outcome events are the typed models (for apps reading the outcomes stream)."""
        await relays.post("mailgun", mailgun_body(MAILGUN_KEY, relays.message_id))
        await relays.post(
            "mailgun", mailgun_body(MAILGUN_KEY, relays.message_id, event="complained")
        )
        preferences, outcomes = await relays.events()
        assert [type(e) for e in preferences] == [ChannelBounced, ChannelComplained]
        assert [type(e) for e in outcomes] == [NudgeBounced, NudgeComplained]


async def _value(value: float) -> float:
    return value
