"""The APNs channel against a local APNs speaking HTTP/2 over TLS (tests/support/apns_server.py),
which checks the ES256 provider token with the .p8 key's public half and the headers, and
answers every error Apple documents."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from couples_nudge.embedded.valkey import free_port
from couples_nudge.notifier.channels.apns import ApnsChannel
from couples_nudge.notifier.channels.apns_auth import ProviderToken
from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.errors import PermanentSendError, TransientSendError
from couples_nudge_schemas import IosDevice
from tests.support.apns_server import REASONS, ApnsServer, Http2Server
from tests.support.tls import Certificate, self_signed

KEY_ID, TEAM_ID, BUNDLE = "ABC123DEFG", "TEAM123456", "org.example.Couples"
TOKEN = "a0" * 32
PUSH = {"title": "Date night", "body": "Plan a walk together.", "url": None, "kind": "date_night"}
GONE = {"Unregistered", "ExpiredToken", "BadDeviceToken", "DeviceTokenNotForTopic"}
TRANSIENT = {
    "TooManyRequests",
    "TooManyProviderTokenUpdates",
    "InternalServerError",
    "ServiceUnavailable",
    "Shutdown",
    "IdleTimeout",
}


class WallClock:
    """Real time plus an offset the test moves forward; channel and server share it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path)


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture
async def server(
    certificate: Certificate, key: ec.EllipticCurvePrivateKey, clock: WallClock
) -> AsyncIterator[ApnsServer]:
    apns = ApnsServer(key.public_key(), KEY_ID, TEAM_ID, {BUNDLE, "org.example.Other"}, clock)
    async with Http2Server(apns.app(), certificate) as http:
        apns.origin = http.origin
        yield apns


def make_channel(
    server: ApnsServer,
    key: ec.EllipticCurvePrivateKey,
    clock: WallClock,
    certificate: Certificate | None,
    **overrides: Any,
) -> ApnsChannel:
    options: dict[str, Any] = {
        "provider_token": ProviderToken(key, key_id=KEY_ID, team_id=TEAM_ID, wall_clock=clock),
        "host": server.origin,
        "ttl": timedelta(hours=12),
        "timeout": 2.0,
        "verify": certificate.client_context() if certificate else True,
        "wall_clock": clock,
    }
    return ApnsChannel(**(options | overrides))


@pytest.fixture
async def channel(
    server: ApnsServer,
    key: ec.EllipticCurvePrivateKey,
    clock: WallClock,
    certificate: Certificate,
) -> AsyncIterator[ApnsChannel]:
    apns = make_channel(server, key, clock, certificate)
    yield apns
    await apns.close()


def outgoing(
    token: str = TOKEN, app_id: str | None = BUNDLE, push: dict[str, Any] | None = None
) -> Outgoing:
    device = IosDevice(platform="ios", token=token, app_id=app_id)
    return Outgoing("mobile", f"occ|maya|mobile:{token[:16]}", push=push or PUSH, address=device)


class TestDelivered:
    async def test_alert_over_http2_with_apple_headers(
        self, server: ApnsServer, channel: ApnsChannel, clock: WallClock
    ) -> None:
        """One alert over HTTP/2: title and body, topic = bundle id, push type alert, normal
        priority, expiry now + TTL, collapse id = the nudge kind, a stable apns-id."""
        await channel.send(outgoing())
        await channel.send(outgoing())
        assert server.refused == []
        assert server.versions == {"2"}
        first, second = server.received
        assert first.token == TOKEN
        assert first.payload == {
            "aps": {
                "alert": {"title": "Date night", "body": "Plan a walk together."},
                "thread-id": "date_night",
            },
            "kind": "date_night",
        }
        h = first.headers
        assert h["apns-topic"] == BUNDLE
        assert h["apns-push-type"] == "alert"
        assert h["apns-priority"] == "5"
        assert h["apns-collapse-id"] == "date_night"
        assert abs(int(h["apns-expiration"]) - (clock() + 12 * 3600)) < 5
        assert uuid.UUID(h["apns-id"]) == uuid.UUID(second.headers["apns-id"])

    async def test_deep_link_in_the_payload(self, server: ApnsServer, channel: ApnsChannel) -> None:
        """A deep link travels as the custom key `url`, beside `aps`."""
        await channel.send(outgoing(push=PUSH | {"url": "https://app.example.org/n/1"}))
        assert server.received[0].payload["url"] == "https://app.example.org/n/1"

    async def test_topic_from_the_setting_when_the_device_has_no_app_id(
        self,
        server: ApnsServer,
        key: ec.EllipticCurvePrivateKey,
        clock: WallClock,
        certificate: Certificate,
    ) -> None:
        """A device published without app_id is sent with NUDGE_APNS_TOPIC; with neither,
        the send is refused before anything goes out."""
        with_topic = make_channel(server, key, clock, certificate, topic="org.example.Other")
        without = make_channel(server, key, clock, certificate)
        try:
            await with_topic.send(outgoing(app_id=None))
            with pytest.raises(PermanentSendError, match="no apns topic") as info:
                await without.send(outgoing(app_id=None))
        finally:
            await with_topic.close()
            await without.close()
        assert info.value.gone is False
        assert [p.headers["apns-topic"] for p in server.received] == ["org.example.Other"]

    async def test_one_provider_token_and_connection_for_concurrent_sends(
        self, server: ApnsServer, channel: ApnsChannel
    ) -> None:
        """Twenty concurrent sends share one provider token (Apple refuses frequent updates)."""
        await asyncio.gather(*(channel.send(outgoing(f"{i:02x}" * 32)) for i in range(20)))
        assert len(server.received) == 20
        assert len({p.provider_token for p in server.received}) == 1
        assert channel.tokens.signed == 1

    async def test_provider_token_replaced_before_it_is_an_hour_old(
        self, server: ApnsServer, channel: ApnsChannel, clock: WallClock
    ) -> None:
        """The token is reused for 50 minutes, then replaced, so Apple never sees one older
        than an hour (it would answer 403 ExpiredProviderToken)."""
        await channel.send(outgoing())
        clock.offset = 49 * 60
        await channel.send(outgoing())
        clock.offset = 61 * 60
        await channel.send(outgoing())
        assert server.refused == []
        tokens = [p.provider_token for p in server.received]
        assert tokens[0] == tokens[1] != tokens[2]

    async def test_expired_provider_token_is_replaced_and_sent_once_more(
        self, server: ApnsServer, channel: ApnsChannel
    ) -> None:
        """403 ExpiredProviderToken: a new token is signed and the push sent again, once."""
        server.answers.append(("ExpiredProviderToken", {}))
        await channel.send(outgoing())
        assert len(server.received) == 2
        assert server.received[0].provider_token != server.received[1].provider_token

    async def test_payload_too_large_is_refused_before_sending(
        self, server: ApnsServer, channel: ApnsChannel
    ) -> None:
        """A payload over 4 KiB is refused locally; the device is not blamed."""
        with pytest.raises(PermanentSendError) as info:
            await channel.send(outgoing(push=PUSH | {"body": "x" * 5000}))
        assert info.value.gone is False
        assert server.received == []


class TestAnswers:
    @pytest.mark.parametrize("reason", sorted(REASONS))
    async def test_every_documented_reason(
        self, server: ApnsServer, channel: ApnsChannel, reason: str
    ) -> None:
        """Gone reasons kill the device; 429/5xx and IdleTimeout are retried; the rest are
        permanent but keep the device. Details carry status and reason only."""
        server.answers += [(reason, {}), (reason, {})]  # twice: ExpiredProviderToken retries
        with pytest.raises((PermanentSendError, TransientSendError)) as info:
            await channel.send(outgoing())
        error = info.value
        assert error.detail == f"HTTP {REASONS[reason]} {reason}"
        if reason in TRANSIENT:
            assert isinstance(error, TransientSendError)
        else:
            assert isinstance(error, PermanentSendError)
            assert error.gone is (reason in GONE)

    async def test_unregistered_device(self, server: ApnsServer, channel: ApnsChannel) -> None:
        """410 Unregistered (with Apple's timestamp) means the app is gone from the device."""
        server.unregistered.add(TOKEN)
        with pytest.raises(PermanentSendError) as info:
            await channel.send(outgoing())
        assert info.value.gone is True
        assert info.value.detail == "HTTP 410 Unregistered"

    async def test_retry_after_is_kept(self, server: ApnsServer, channel: ApnsChannel) -> None:
        """429 with Retry-After: the retry waits at least that long."""
        server.answers.append(("TooManyRequests", {"retry-after": "120"}))
        with pytest.raises(TransientSendError) as info:
            await channel.send(outgoing())
        assert info.value.retry_after == 120.0

    async def test_timeout_is_transient(
        self,
        server: ApnsServer,
        key: ec.EllipticCurvePrivateKey,
        clock: WallClock,
        certificate: Certificate,
    ) -> None:
        """An APNs that does not answer within the timeout gives a transient error."""
        server.delay = 3.0
        impatient = make_channel(server, key, clock, certificate, timeout=0.3)
        try:
            with pytest.raises(TransientSendError, match="timeout"):
                await impatient.send(outgoing())
        finally:
            await impatient.close()

    async def test_unreachable_is_transient(
        self,
        server: ApnsServer,
        key: ec.EllipticCurvePrivateKey,
        clock: WallClock,
        certificate: Certificate,
    ) -> None:
        """Nothing listening: transient."""
        nowhere = make_channel(
            server, key, clock, certificate, host=f"https://127.0.0.1:{free_port()}"
        )
        try:
            with pytest.raises(TransientSendError):
                await nowhere.send(outgoing())
        finally:
            await nowhere.close()

    async def test_certificate_is_verified(
        self, server: ApnsServer, key: ec.EllipticCurvePrivateKey, clock: WallClock
    ) -> None:
        """An APNs host whose certificate the system does not trust receives nothing."""
        trusting_nobody = make_channel(server, key, clock, None)
        try:
            with pytest.raises(TransientSendError):
                await trusting_nobody.send(outgoing())
        finally:
            await trusting_nobody.close()
        assert server.received == []
