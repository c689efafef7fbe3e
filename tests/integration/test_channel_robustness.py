"""Channels classify whatever reaches them and never leak a connection (issue #15, item 8).

The addresses here bypass the schema on purpose (a couple hash written by hand, a
subscription built without validation): the channels must be robust on their own.
"""

from __future__ import annotations

import asyncio
import base64
import os
from datetime import UTC, datetime
from typing import cast

import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from couples_nudge.common.clock import ManualClock
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.email import SmtpChannel
from couples_nudge.notifier.channels.webhook import WebhookChannel
from couples_nudge.notifier.channels.webpush import WebPushChannel
from couples_nudge.notifier.errors import PermanentSendError, TransientSendError
from couples_nudge_schemas import PushSubscription
from tests.support.events import example
from tests.support.notifier import delivery, due, plant
from tests.support.settings import notifier_settings
from tests.support.waiting import eventually

MIME = b"Subject: hello\r\n\r\nhello\r\n"
POOL = 4
VAPID_RAW = "x" * 42 + "0"  # base64url of 32 bytes: a valid P-256 scalar
NOW = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def mail_to(address: str, sender: str = "nudges@localhost") -> Outgoing:
    return Outgoing("email", "occ|maya|email", mime=MIME, sender=sender, address=address)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def subscription(endpoint: str) -> PushSubscription:
    """Working browser keys at an endpoint the schema never checked."""
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return PushSubscription.model_construct(
        endpoint=endpoint, p256dh=_b64(point), auth=_b64(os.urandom(16))
    )


async def _open(mail: MailCatcher) -> int:
    return mail.open_connections


class TestSmtpChannel:
    async def test_address_with_a_control_character_is_gone_without_connecting(
        self, mail: MailCatcher
    ) -> None:
        """30 sends to an address with a control character: each a permanent "gone" error,
        and no connection is opened for any of them."""
        smtp = SmtpChannel(host="127.0.0.1", port=mail.port, concurrency=POOL)
        await eventually(lambda: _open(mail), until=lambda n: n == 0)
        before = mail.connections
        try:
            for n in range(30):
                with pytest.raises(PermanentSendError) as info:
                    await smtp.send(mail_to(f"maya{n}\x07@example.test"))
                assert info.value.gone is True
                assert "example.test" not in str(info.value)
        finally:
            await smtp.close()
        assert mail.connections == before
        assert mail.messages == []

    async def test_unexpected_error_mid_session_is_permanent_and_closes_the_connection(
        self, mail: MailCatcher
    ) -> None:
        """aiosmtplib raises ValueError inside the session (a control character in the
        envelope sender): 30 such sends with a pool of 4 are permanent errors (the address
        is not blamed) and leave at most 4 connections open at the server; a good send works
        afterwards."""
        smtp = SmtpChannel(host="127.0.0.1", port=mail.port, concurrency=POOL)
        await eventually(lambda: _open(mail), until=lambda n: n == 0)
        try:
            for _ in range(30):
                with pytest.raises(PermanentSendError) as info:
                    await smtp.send(mail_to("maya@example.test", sender="nudges\x07@localhost"))
                assert info.value.gone is False
                assert info.value.detail == "unexpected ValueError"
            await asyncio.sleep(0.2)  # the server sees closed connections a moment later
            left_open = mail.open_connections
            print(f"SMTP connections after 30 failing sends (pool {POOL}): {left_open} open")
            assert left_open <= POOL
            await smtp.send(mail_to("maya@example.test"))
        finally:
            await smtp.close()
        assert mail.recipients == [["maya@example.test"]]
        await eventually(lambda: _open(mail), until=lambda n: n == 0)

    async def test_concurrent_failing_sends_leave_no_connection_open(
        self, mail: MailCatcher
    ) -> None:
        """30 concurrent sends that fail mid-session: none of their connections stays open."""
        smtp = SmtpChannel(host="127.0.0.1", port=mail.port, concurrency=POOL)
        try:
            results = await asyncio.gather(
                *(
                    smtp.send(mail_to("maya@example.test", sender="nudges\x00@localhost"))
                    for _ in range(30)
                ),
                return_exceptions=True,
            )
            assert all(isinstance(r, PermanentSendError) for r in results)
            await eventually(lambda: _open(mail), until=lambda n: n == 0)
        finally:
            await smtp.close()

    async def test_a_connection_dropped_after_data_is_not_sent_again_at_once(self) -> None:
        """The server keeps a message, then drops the connection before its 250, on a pooled
        connection: one copy and a transient error (retried later, counted and logged). Before,
        the send was taken for an idle connection's close and repeated at once on a fresh
        one: two copies of one send, silently."""
        with MailCatcher() as mail:
            smtp = SmtpChannel(host="127.0.0.1", port=mail.port, concurrency=1)
            try:
                await smtp.send(mail_to("maya@example.test"))  # its connection is pooled
                mail.hang_up_after_data(1)
                with pytest.raises(TransientSendError):
                    await smtp.send(mail_to("maya@example.test"))
                copies = mail.count - 1
                mail.hang_up_after_data(0)
                await smtp.send(mail_to("maya@example.test"))  # a fresh connection works
            finally:
                await smtp.close()
        print(f"SMTP dropped after DATA on a pooled connection: {copies} copies of one send")
        assert copies == 1
        assert mail.count == 3

    async def test_a_pooled_connection_closed_while_idle_is_replaced_at_once(self) -> None:
        """The server closed an idle connection (its timeout): the next send goes out on a
        fresh connection, once, without an error."""
        with MailCatcher(timeout=0.3) as mail:  # aiosmtpd hangs up after 0.3 s idle
            smtp = SmtpChannel(host="127.0.0.1", port=mail.port, concurrency=1)
            try:
                await smtp.send(mail_to("maya@example.test"))
                await eventually(lambda: _open(mail), until=lambda n: n == 0)
                await smtp.send(mail_to("maya@example.test"))
            finally:
                await smtp.close()
        assert mail.count == 2
        assert mail.connections >= 2


class TestHttpChannels:
    @pytest.mark.parametrize(
        "endpoint", ["ftp://push.example.org/1", "https://[::1/push", "https://exa\x07mple.org/p"]
    )
    async def test_push_endpoint_that_cannot_work_is_gone(self, endpoint: str) -> None:
        """A subscription endpoint httpx cannot use is a permanent "gone" error, not retried."""
        push = WebPushChannel(vapid_private_key=SecretStr(VAPID_RAW), subject="mailto:o@x.org")
        message = Outgoing(
            "push", "k", push={"title": "t", "kind": "x"}, address=subscription(endpoint)
        )
        try:
            with pytest.raises(PermanentSendError) as info:
                await push.send(message)
        finally:
            await push.close()
        assert info.value.gone is True

    async def test_webhook_payload_that_cannot_be_encoded_is_permanent(self) -> None:
        """A push payload JSON cannot encode (a lone surrogate in a title) is permanent and
        does not blame the partner (the URL is the operator's, not the partner's)."""
        hook = WebhookChannel(url="https://127.0.0.1:9/hook", secret=SecretStr("s" * 32))
        try:
            with pytest.raises(PermanentSendError) as info:
                await hook.send(Outgoing("webhook", "k", push={"title": "\ud800", "kind": "x"}))
        finally:
            await hook.close()
        assert info.value.gone is False
        assert info.value.detail == "unexpected UnicodeEncodeError"


class TestThroughDelivery:
    async def test_bad_address_fails_once_and_later_nudges_skip_the_channel(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
    ) -> None:
        """An address with a control character written into the couple hash (no schema):
        the nudge fails permanently, the channel is marked dead, the next nudge is
        suppressed "channel_dead", and the mail server never sees a connection for it."""
        settings = notifier_settings(redis_url, key_prefix, smtp_port=mail.port)
        data = example()["data"]
        [sid, *_] = await plant(redis, settings, data, NOW)
        couple_key = settings.keys.couple(data["couple_id"])
        c0 = cast("bytes", await redis.hget(couple_key, "c0"))
        locale, codes, love, _address = c0.decode().split("|")
        await redis.hset(couple_key, "c0", f"{locale}|{codes}|{love}|maya\r\n@example.test")
        partner = data["partners"][0]["partner_id"]
        smtp = SmtpChannel(host="127.0.0.1", port=mail.port, concurrency=POOL)
        deliver = delivery(redis, settings, {"email": smtp}, ManualClock(NOW))
        await eventually(lambda: _open(mail), until=lambda n: n == 0)
        before = mail.connections
        try:
            first = await deliver.deliver(due(data["couple_id"], sid, "date_night", [partner], NOW))
            second = await deliver.deliver(
                due(data["couple_id"], sid, "date_night", [partner], NOW.replace(hour=19))
            )
        finally:
            await smtp.close()
        assert [(o.type, getattr(o.data, "permanent", None)) for o in first.outcomes] == [
            ("nudge.failed.v1", True)
        ]
        assert first.retry == []
        assert second.retry == []
        assert [(o.type, getattr(o.data, "reason", None)) for o in second.outcomes] == [
            ("nudge.suppressed.v1", "channel_dead")
        ]
        assert mail.connections == before
