"""The Web Push channel against a real local push service over HTTPS.

The push service here does what a browser vendor's would: it checks the VAPID JWT (RFC 8292)
with the key in the Authorization header, and the test's "browser" decrypts the aes128gcm
body (RFC 8291) with the subscription's private key. Both sides are written from the RFCs
with `cryptography` primitives, independently of the libraries the channel uses.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from couples_nudge.common.clock import ManualClock
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.embedded.valkey import free_port
from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.email import SmtpChannel
from couples_nudge.notifier.channels.webpush import WebPushChannel, public_key_b64
from couples_nudge.notifier.errors import PermanentSendError, TransientSendError
from couples_nudge_schemas import PushSubscription
from tests.support.events import example
from tests.support.notifier import delivery, due, plant
from tests.support.settings import notifier_settings
from tests.support.tls import Certificate, HttpsServer, self_signed

SUBJECT = "mailto:ops@nudges.example.org"
PAYLOAD = {
    "title": "Say a specific thank you",
    "body": "Tell Sam one thing you noticed today. Zoë says hi ✨",
    "url": "https://app.example.org/n/1",
    "kind": "appreciation",
}


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class Browser:
    """A user agent's side of one subscription: its P-256 key pair and auth secret."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def subscription(self, endpoint: str) -> PushSubscription:
        return PushSubscription(
            endpoint=endpoint, p256dh=b64e(point(self.key.public_key())), auth=b64e(self.auth)
        )

    def decrypt(self, body: bytes) -> bytes:
        """RFC 8291 section 3.4 and RFC 8188: one aes128gcm record."""
        salt, rs, idlen = body[:16], int.from_bytes(body[16:20], "big"), body[20]
        sender_public = body[21 : 21 + idlen]
        ciphertext = body[21 + idlen :]
        assert rs >= len(ciphertext)
        shared = self.key.exchange(
            ec.ECDH(), ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sender_public)
        )
        info = b"WebPush: info\x00" + point(self.key.public_key()) + sender_public
        ikm = HKDF(hashes.SHA256(), 32, self.auth, info).derive(shared)
        cek = HKDF(hashes.SHA256(), 16, salt, b"Content-Encoding: aes128gcm\x00").derive(ikm)
        nonce = HKDF(hashes.SHA256(), 12, salt, b"Content-Encoding: nonce\x00").derive(ikm)
        padded = AESGCM(cek).decrypt(nonce, ciphertext, None).rstrip(b"\x00")
        assert padded.endswith(b"\x02"), "the last record ends with the 0x02 delimiter"
        return padded[:-1]


@dataclass
class Push:
    headers: dict[str, str]
    claims: dict[str, Any]
    plaintext: bytes
    body: bytes


@dataclass
class PushService:
    """Checks VAPID, decrypts for the browser, answers with the next queued status (201),
    with its headers when queued as (status, headers)."""

    browser: Browser
    vapid_public: str
    origin: str = ""
    answers: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Push] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/push/{id}", self.push, methods=["POST"]),
                Route("/hang", self.hang, methods=["POST"]),
            ]
        )

    def _claims(self, authorization: str) -> dict[str, Any]:
        scheme, _, params = authorization.partition(" ")
        assert scheme == "vapid", scheme
        parts = dict(p.strip().split("=", 1) for p in params.split(","))
        assert parts["k"] == self.vapid_public, "k is the application server key"
        header64, claims64, signature64 = parts["t"].split(".")
        assert json.loads(b64d(header64)) == {"typ": "JWT", "alg": "ES256"}
        raw = b64d(signature64)
        signature = encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64d(parts["k"]))
        key.verify(signature, f"{header64}.{claims64}".encode(), ec.ECDSA(hashes.SHA256()))
        claims: dict[str, Any] = json.loads(b64d(claims64))
        now = time.time()
        assert claims["aud"] == self.origin
        assert now < claims["exp"] <= now + 24 * 3600
        assert claims["sub"] == SUBJECT
        return claims

    async def push(self, request: Request) -> Response:
        assert request.client is not None
        self.peers.add((request.client.host, request.client.port))
        body = await request.body()
        try:
            claims = self._claims(request.headers["authorization"])
            assert request.headers["content-encoding"] == "aes128gcm"
            plaintext = self.browser.decrypt(body)
        except (AssertionError, KeyError, ValueError, InvalidSignature) as exc:
            self.refused.append(repr(exc))
            return Response(status_code=401)
        self.received.append(Push(dict(request.headers), claims, plaintext, body))
        answer = self.answers.pop(0) if self.answers else 201
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        return Response(status_code=status, headers=headers)

    async def hang(self, request: Request) -> Response:
        await self.release.wait()
        return Response(status_code=201)


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path)


@pytest.fixture
def vapid_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
async def service(
    certificate: Certificate, vapid_key: ec.EllipticCurvePrivateKey
) -> AsyncIterator[PushService]:
    push = PushService(Browser(), public_key_b64(vapid_key))
    async with HttpsServer(push.app(), certificate) as server:
        push.origin = server.origin
        yield push
        push.release.set()


@pytest.fixture
async def channel(
    certificate: Certificate, vapid_key: ec.EllipticCurvePrivateKey
) -> AsyncIterator[WebPushChannel]:
    pem = vapid_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    webpush = WebPushChannel(
        vapid_private_key=SecretStr(pem.decode()),
        subject=SUBJECT,
        ttl=timedelta(hours=12),
        timeout=2.0,
        verify=certificate.client_context(),
    )
    yield webpush
    await webpush.close()


def outgoing(subscription: PushSubscription, payload: dict[str, Any] | None = None) -> Outgoing:
    return Outgoing(
        "push", "occ|maya|push", push=payload or PAYLOAD, address=subscription, partner_id="maya"
    )


class TestDelivered:
    async def test_payload_decrypts_for_the_subscriber(
        self, service: PushService, channel: WebPushChannel
    ) -> None:
        """The push service accepts (201) and the browser decrypts exactly the JSON payload."""
        await channel.send(outgoing(service.browser.subscription(f"{service.origin}/push/1")))
        assert service.refused == []
        assert [json.loads(p.plaintext) for p in service.received] == [PAYLOAD]

    async def test_protocol_headers(self, service: PushService, channel: WebPushChannel) -> None:
        """TTL, encoding, urgency and a per-kind Topic accompany the encrypted body."""
        await channel.send(outgoing(service.browser.subscription(f"{service.origin}/push/1")))
        headers = service.received[0].headers
        assert headers["ttl"] == "43200"
        assert headers["content-encoding"] == "aes128gcm"
        assert headers["content-type"] == "application/octet-stream"
        assert headers["urgency"] == "normal"
        assert headers["topic"] == "appreciation"

    async def test_each_message_encrypted_afresh(
        self, service: PushService, channel: WebPushChannel
    ) -> None:
        """The same payload twice gives two different ciphertexts (new salt and sender key)."""
        subscription = service.browser.subscription(f"{service.origin}/push/1")
        await channel.send(outgoing(subscription))
        await channel.send(outgoing(subscription))
        first, second = service.received
        assert first.plaintext == second.plaintext
        assert first.body[:16] != second.body[:16]
        assert first.body != second.body

    async def test_connection_and_jwt_are_reused(
        self, service: PushService, channel: WebPushChannel
    ) -> None:
        """Three sends use one TCP connection and one VAPID JWT for the push service's origin."""
        subscription = service.browser.subscription(f"{service.origin}/push/1")
        for _ in range(3):
            await channel.send(outgoing(subscription))
        assert len(service.received) == 3
        assert len(service.peers) == 1
        assert len({p.headers["authorization"] for p in service.received}) == 1

    async def test_too_large_is_permanent(
        self, service: PushService, channel: WebPushChannel
    ) -> None:
        """A payload that cannot fit one 4 KiB record is refused before sending."""
        subscription = service.browser.subscription(f"{service.origin}/push/1")
        with pytest.raises(PermanentSendError) as info:
            await channel.send(outgoing(subscription, PAYLOAD | {"body": "x" * 4000}))
        assert info.value.gone is False
        assert service.received == []

    async def test_broken_subscription_keys_are_gone(
        self, service: PushService, channel: WebPushChannel
    ) -> None:
        """A subscription whose key is no P-256 point can never work: gone, nothing sent."""
        good = service.browser.subscription(f"{service.origin}/push/1")
        broken = good.model_copy(update={"p256dh": "B" + "A" * 86})
        with pytest.raises(PermanentSendError) as info:
            await channel.send(outgoing(broken))
        assert info.value.gone is True
        assert service.received == []


class TestAnswers:
    @pytest.mark.parametrize("status", [404, 410])
    async def test_gone(self, service: PushService, channel: WebPushChannel, status: int) -> None:
        """404 and 410 mean the subscription is gone: permanent, and the channel is dead."""
        service.answers.append(status)
        with pytest.raises(PermanentSendError) as info:
            await channel.send(outgoing(service.browser.subscription(f"{service.origin}/push/1")))
        assert info.value.gone is True
        assert info.value.detail == f"HTTP {status}"

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_transient(
        self, service: PushService, channel: WebPushChannel, status: int
    ) -> None:
        """Rate limits and server errors are retried later."""
        service.answers.append(status)
        with pytest.raises(TransientSendError, match=f"HTTP {status}"):
            await channel.send(outgoing(service.browser.subscription(f"{service.origin}/push/1")))

    @pytest.mark.parametrize(
        ("status", "header", "seconds"),
        [(429, "120", 120.0), (503, "30", 30.0), (429, "Tue, 01 Jan 2030 00:00:00 GMT", 86400.0)],
    )
    async def test_retry_after_is_kept(
        self,
        service: PushService,
        channel: WebPushChannel,
        status: int,
        header: str,
        seconds: float,
    ) -> None:
        """A push service's Retry-After on 429/503 is the floor of the retry's wait (bounded
        to a day), as for FCM and APNs. (It was dropped: the retry came after the backoff
        alone, 30 s, into the rate limit again.)"""
        service.answers.append((status, {"Retry-After": header}))
        with pytest.raises(TransientSendError) as info:
            await channel.send(outgoing(service.browser.subscription(f"{service.origin}/push/1")))
        assert info.value.retry_after == seconds

    @pytest.mark.parametrize("status", [400, 403, 413])
    async def test_other_client_errors(
        self, service: PushService, channel: WebPushChannel, status: int
    ) -> None:
        """Other 4xx answers are permanent but do not kill the subscription."""
        service.answers.append(status)
        with pytest.raises(PermanentSendError) as info:
            await channel.send(outgoing(service.browser.subscription(f"{service.origin}/push/1")))
        assert info.value.gone is False

    async def test_timeout_is_transient(
        self, service: PushService, certificate: Certificate, vapid_key: ec.EllipticCurvePrivateKey
    ) -> None:
        """A push service that does not answer within the timeout gives a transient error."""
        raw = vapid_key.private_numbers().private_value.to_bytes(32, "big")
        impatient = WebPushChannel(
            vapid_private_key=SecretStr(b64e(raw)),  # the raw base64url form works too
            subject=SUBJECT,
            timeout=0.3,
            verify=certificate.client_context(),
        )
        try:
            with pytest.raises(TransientSendError, match="timeout"):
                await impatient.send(
                    outgoing(service.browser.subscription(f"{service.origin}/hang"))
                )
        finally:
            await impatient.close()

    async def test_a_push_service_answering_a_byte_at_a_time_times_out(
        self,
        service: PushService,
        certificate: Certificate,
        vapid_key: ec.EllipticCurvePrivateKey,
    ) -> None:
        """A push service (the endpoint is whatever the subscription names) that sends its
        status line, then one header byte every 0.2 s for 6 s: a send with a 0.5 s timeout
        gives up within about that, not when the server is done, and gives its connection
        back (with a pool of one, the next send goes through). (httpx's timeout bounds each
        read, so every byte restarted it: the send took the server's whole 6 s, and a server
        that never finished held it, and a connection, for ever.)"""

        async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 201 Created\r\nX-Slow: ")
            try:
                for _ in range(30):
                    await writer.drain()
                    await asyncio.sleep(0.2)
                    writer.write(b"a")
                writer.write(b"\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
            except ConnectionError:  # the channel gave up and closed the connection
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(
            trickle, "127.0.0.1", 0, ssl=certificate.server_context()
        )
        port = server.sockets[0].getsockname()[1]
        raw = vapid_key.private_numbers().private_value.to_bytes(32, "big")
        impatient = WebPushChannel(
            vapid_private_key=SecretStr(b64e(raw)),
            subject=SUBJECT,
            timeout=0.5,
            concurrency=1,
            verify=certificate.client_context(),
        )
        started = time.monotonic()
        try:
            with pytest.raises(TransientSendError, match="timeout"):
                await impatient.send(
                    outgoing(Browser().subscription(f"https://127.0.0.1:{port}/push/1"))
                )
            took = time.monotonic() - started
            await impatient.send(outgoing(service.browser.subscription(f"{service.origin}/push/1")))
        finally:
            await impatient.close()
            server.close()
        print(f"a send with a 0.5 s timeout to a trickling push service took {took:.2f} s")
        assert took < 1.5
        assert len(service.received) == 1

    async def test_unreachable_is_transient(
        self, service: PushService, channel: WebPushChannel
    ) -> None:
        """Nothing listening at the endpoint: a transient error."""
        endpoint = f"https://127.0.0.1:{free_port()}/push/1"
        with pytest.raises(TransientSendError):
            await channel.send(outgoing(service.browser.subscription(endpoint)))

    async def test_certificate_is_verified(
        self, service: PushService, vapid_key: ec.EllipticCurvePrivateKey
    ) -> None:
        """A push service whose certificate the system does not trust receives nothing."""
        raw = vapid_key.private_numbers().private_value.to_bytes(32, "big")
        trusting_nobody = WebPushChannel(vapid_private_key=SecretStr(b64e(raw)), subject=SUBJECT)
        try:
            with pytest.raises(TransientSendError):
                await trusting_nobody.send(
                    outgoing(service.browser.subscription(f"{service.origin}/push/1"))
                )
        finally:
            await trusting_nobody.close()
        assert service.received == []


class TestThroughDelivery:
    async def test_gone_subscription_is_marked_dead(
        self,
        service: PushService,
        channel: WebPushChannel,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
    ) -> None:
        """After a 410 the partner's push channel is dead: the next nudge is not even tried."""
        now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        settings = notifier_settings(redis_url, key_prefix)
        data = example()["data"]
        maya = data["partners"][0]
        maya["channels"] = ["push"]
        subscription = service.browser.subscription(f"{service.origin}/push/maya")
        maya["push"] = subscription.model_dump()
        sids = await plant(redis, settings, data, now)
        clock = ManualClock(now)
        deliver = delivery(redis, settings, {"push": channel}, clock)

        service.answers.append(410)
        first = await deliver.deliver(due("maya-sam", sids[0], "appreciation", ["maya"], now))
        assert [(o.type, getattr(o.data, "permanent", None)) for o in first.outcomes] == [
            ("nudge.failed.v1", True)
        ]
        clock.advance(timedelta(hours=1))
        later = now + timedelta(hours=1)
        second = await deliver.deliver(due("maya-sam", sids[0], "appreciation", ["maya"], later))
        assert [(o.type, getattr(o.data, "reason", None)) for o in second.outcomes] == [
            ("nudge.suppressed.v1", "channel_dead")
        ]
        assert len(service.received) == 1

    async def test_email_still_arrives_when_the_push_subscription_is_gone(
        self,
        service: PushService,
        channel: WebPushChannel,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        mail: MailCatcher,
    ) -> None:
        """Push answers 410 for a partner with push and email: push is marked dead, the email
        goes out through a real SMTP server, and later nudges try push no more."""
        now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        settings = notifier_settings(redis_url, key_prefix, smtp_port=mail.port)
        data = example()["data"]
        maya = data["partners"][0]
        maya["channels"] = ["push", "email"]
        maya["push"] = service.browser.subscription(f"{service.origin}/push/maya").model_dump()
        sids = await plant(redis, settings, data, now)
        clock = ManualClock(now)
        smtp = SmtpChannel(host="127.0.0.1", port=mail.port)
        deliver = delivery(redis, settings, {"push": channel, "email": smtp}, clock)
        try:
            service.answers.append(410)
            first = await deliver.deliver(due("maya-sam", sids[0], "appreciation", ["maya"], now))
            clock.advance(timedelta(hours=1))
            later = now + timedelta(hours=1)
            second = await deliver.deliver(
                due("maya-sam", sids[0], "appreciation", ["maya"], later)
            )
        finally:
            await smtp.close()
        assert [(o.type, o.data.channel) for o in first.outcomes] == [
            ("nudge.failed.v1", "push"),
            ("nudge.sent.v1", "email"),
        ]
        assert [
            (o.type, o.data.channel, getattr(o.data, "reason", None)) for o in second.outcomes
        ] == [
            ("nudge.suppressed.v1", "push", "channel_dead"),
            ("nudge.sent.v1", "email", None),
        ]
        assert first.retry == []  # a gone subscription is never retried
        assert second.retry == []
        assert len(service.received) == 1  # one push attempt in all: no retry storm
        assert [str(m["To"]) for m in mail.messages] == ["Maya <maya@example.test>"] * 2
