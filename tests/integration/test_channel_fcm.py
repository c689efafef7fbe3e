"""The FCM channel against a local Google OAuth token endpoint and FCM v1 send endpoint over
HTTPS (tests/support/fcm_server.py): the RS256 assertion is verified with the service account's
public key, tokens expire, and every documented FCM error is answered."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.fcm import FcmChannel
from couples_nudge.notifier.channels.fcm_auth import ServiceAccount, load_service_account
from couples_nudge.notifier.errors import PermanentSendError, TransientSendError
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge_schemas import AndroidDevice
from tests.support.fcm_server import ERRORS, MAX_TTL, Answer, FcmServer, service_account
from tests.support.tls import Certificate, HttpsServer, self_signed

PROJECT = "couples-nudge-test"
TOKEN = "dXk3:APA91bH" + "q" * 140
PUSH = {
    "title": "Date night",
    "body": "Plan a walk together.",
    "url": "https://app.example.org/n/1",
    "kind": "date_night",
}
EXPECTED: dict[str, tuple[type[Exception], bool]] = {
    "UNREGISTERED": (PermanentSendError, True),
    "INVALID_TOKEN": (PermanentSendError, True),
    "INVALID_ARGUMENT": (PermanentSendError, False),
    "SENDER_ID_MISMATCH": (PermanentSendError, False),
    "QUOTA_EXCEEDED": (TransientSendError, False),
    "UNAVAILABLE": (TransientSendError, False),
    "INTERNAL": (TransientSendError, False),
    "THIRD_PARTY_AUTH_ERROR": (PermanentSendError, False),
    "UNSPECIFIED_ERROR": (PermanentSendError, False),
}


class WallClock:
    """Real time plus an offset the test moves forward; channel and server share it."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def certificate(tmp_path: Path) -> Certificate:
    return self_signed(tmp_path)


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture
async def server(
    certificate: Certificate, rsa_key: rsa.RSAPrivateKey, clock: WallClock
) -> AsyncIterator[FcmServer]:
    fcm = FcmServer(rsa_key.public_key(), service_account(rsa_key, "", PROJECT), clock)
    async with HttpsServer(fcm.app(), certificate) as https:
        fcm.origin = https.origin
        fcm.account["token_uri"] = f"{https.origin}/token"
        yield fcm


@pytest.fixture
def key_file(tmp_path: Path, server: FcmServer) -> Path:
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(server.account))
    return path


def make_channel(
    server: FcmServer, account: ServiceAccount, clock: WallClock, certificate: Certificate
) -> FcmChannel:
    return FcmChannel(
        account=account,
        endpoint=server.origin,
        ttl=timedelta(hours=12),
        timeout=2.0,
        verify=certificate.client_context(),
        wall_clock=clock,
    )


@pytest.fixture
async def channel(
    server: FcmServer, key_file: Path, clock: WallClock, certificate: Certificate
) -> AsyncIterator[FcmChannel]:
    fcm = make_channel(server, load_service_account(key_file), clock, certificate)
    yield fcm
    await fcm.close()


def outgoing(token: str = TOKEN, app_id: str | None = "org.example.couples") -> Outgoing:
    device = AndroidDevice(platform="android", token=token, app_id=app_id)
    return Outgoing("mobile", "occ|maya|mobile:x", push=PUSH, address=device)


class TestDelivered:
    async def test_message_with_per_platform_overrides(
        self, server: FcmServer, channel: FcmChannel, clock: WallClock
    ) -> None:
        """The v1 message: token, title and body, deep link and kind as data, a collapse key
        per kind, normal priority and the TTL for Android, the same for APNs and Web Push."""
        await channel.send(outgoing())
        assert server.refused == []
        (message,) = server.received
        assert message["token"] == TOKEN
        assert message["notification"] == {"title": "Date night", "body": "Plan a walk together."}
        assert message["data"] == {"kind": "date_night", "url": "https://app.example.org/n/1"}
        assert message["android"] == {
            "collapse_key": "date_night",
            "priority": "NORMAL",
            "ttl": "43200s",
            "notification": {"tag": "date_night"},
            "restricted_package_name": "org.example.couples",
        }
        apns = message["apns"]["headers"]
        assert apns["apns-collapse-id"] == "date_night"
        assert apns["apns-priority"] == "5"
        assert apns["apns-push-type"] == "alert"
        assert abs(int(apns["apns-expiration"]) - (clock() + 43200)) < 5
        assert message["webpush"]["headers"] == {
            "TTL": "43200",
            "Topic": "date_night",
            "Urgency": "normal",
        }

    async def test_the_longest_push_ttl_the_settings_allow_is_one_fcm_takes(
        self,
        server: FcmServer,
        key_file: Path,
        clock: WallClock,
        certificate: Certificate,
    ) -> None:
        """FCM refuses an android.ttl over 28 days (400 INVALID_ARGUMENT: every send a
        permanent failure); NUDGE_PUSH_TTL stops there, and its longest value is sent."""
        longest = NotifierSettings.model_fields["push_ttl"].metadata
        ttl = next(m.le for m in longest if hasattr(m, "le"))
        fcm = FcmChannel(
            account=load_service_account(key_file),
            endpoint=server.origin,
            ttl=ttl,
            verify=certificate.client_context(),
            wall_clock=clock,
        )
        try:
            await fcm.send(outgoing())
        finally:
            await fcm.close()
        assert server.refused == []
        assert server.received[0]["android"]["ttl"] == f"{MAX_TTL}s"

    async def test_one_token_request_for_many_concurrent_sends(
        self, server: FcmServer, channel: FcmChannel
    ) -> None:
        """Thirty sends at once wait for one token request and all use its token."""
        await asyncio.gather(*(channel.send(outgoing()) for _ in range(30)))
        print(f"token requests for 30 concurrent sends: {server.token_requests}")
        assert server.token_requests == 1
        assert len(server.received) == 30
        assert server.refused == []

    async def test_token_refreshed_shortly_before_it_expires(
        self, server: FcmServer, channel: FcmChannel, clock: WallClock
    ) -> None:
        """A token is reused while it has more than 5 minutes left, then replaced before
        the send endpoint would refuse it."""
        await channel.send(outgoing())
        clock.offset = 3000  # 10 minutes left: still used
        await channel.send(outgoing())
        assert server.token_requests == 1
        clock.offset = 3400  # 3 minutes 20 left: replaced
        await channel.send(outgoing())
        assert server.token_requests == 2
        clock.offset = 7100
        await channel.send(outgoing())
        assert server.token_requests == 3
        assert server.refused == []

    async def test_a_refused_access_token_is_replaced_and_the_send_retried_once(
        self, server: FcmServer, channel: FcmChannel
    ) -> None:
        """401 for our bearer (revoked early): one new token, the message sent once more."""
        await channel.send(outgoing())
        server.issued.clear()  # Google forgot every token
        await channel.send(outgoing())
        assert server.token_requests == 2
        assert len(server.received) == 2

    async def test_an_unknown_key_is_a_permanent_oauth_failure(
        self,
        server: FcmServer,
        tmp_path: Path,
        clock: WallClock,
        certificate: Certificate,
    ) -> None:
        """An assertion signed by another key is refused (invalid_grant): permanent, and no
        device is blamed."""
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        account = ServiceAccount.model_validate(
            service_account(other, server.account["token_uri"], PROJECT)
        )
        stranger = make_channel(server, account, clock, certificate)
        try:
            with pytest.raises(PermanentSendError) as info:
                await stranger.send(outgoing())
        finally:
            await stranger.close()
        assert info.value.gone is False
        assert info.value.detail == "HTTP 400 oauth: invalid_grant"
        assert server.received == []

    async def test_token_endpoint_unavailable_is_transient(
        self, server: FcmServer, channel: FcmChannel
    ) -> None:
        """A 503 from the token endpoint is retried later, with its Retry-After."""
        server.token_answers.append(Answer(503, {"error": "x"}, {"retry-after": "7"}))
        with pytest.raises(TransientSendError) as info:
            await channel.send(outgoing())
        assert info.value.retry_after == 7.0
        assert server.received == []

    async def test_a_failed_token_request_is_shared_by_the_sends_waiting_for_it(
        self, server: FcmServer, channel: FcmChannel
    ) -> None:
        """Ten sends waiting for a token whose request fails (503) fail together: one token
        request, not ten in a row; the next send asks again and succeeds."""
        server.token_answers.append(Answer(503, {"error": "x"}))
        results = await asyncio.gather(
            *(channel.send(outgoing()) for _ in range(10)), return_exceptions=True
        )
        assert all(isinstance(r, TransientSendError) for r in results)
        assert server.token_requests == 1
        await channel.send(outgoing())
        assert server.token_requests == 2
        assert len(server.received) == 1


class TestAnswers:
    @pytest.mark.parametrize("name", sorted(ERRORS))
    async def test_every_documented_error(
        self, server: FcmServer, channel: FcmChannel, name: str
    ) -> None:
        """UNREGISTERED and an invalid token kill the device; quota, unavailable and
        internal errors are retried; the rest are permanent and keep the device."""
        server.answer(name)
        server.answer(name)  # a 401 (THIRD_PARTY_AUTH_ERROR) must not be retried anyway
        kind, gone = EXPECTED[name]
        with pytest.raises((PermanentSendError, TransientSendError)) as info:
            await channel.send(outgoing())
        assert type(info.value) is kind
        assert getattr(info.value, "gone", False) is gone
        status = ERRORS[name][0]
        code = "INVALID_ARGUMENT" if name == "INVALID_TOKEN" else name
        assert info.value.detail == f"HTTP {status} {code}"
        assert len(server.received) == 1

    async def test_retry_after_is_kept(self, server: FcmServer, channel: FcmChannel) -> None:
        """QUOTA_EXCEEDED with Retry-After: the retry waits at least that long."""
        server.answer("QUOTA_EXCEEDED", retry_after="30")
        with pytest.raises(TransientSendError) as info:
            await channel.send(outgoing())
        assert info.value.retry_after == 30.0

    @pytest.mark.parametrize("header", ["\xb2", "1\xb2", "\xb9\xb2\xb3"])
    async def test_a_retry_after_of_other_digits_is_ignored(
        self, server: FcmServer, channel: FcmChannel, header: str
    ) -> None:
        """A Retry-After of Latin-1 superscript digits (str.isdigit says yes, float says no)
        is unreadable, so ignored: the 503 stays transient. (It raised ValueError, which made
        the outage a permanent failure: the nudge was never retried.)"""
        server.answer("UNAVAILABLE", retry_after=header)
        with pytest.raises(TransientSendError) as info:
            await channel.send(outgoing())
        assert info.value.retry_after is None
        assert info.value.detail == "HTTP 503 UNAVAILABLE"

    async def test_free_text_never_reaches_the_detail(
        self, server: FcmServer, channel: FcmChannel
    ) -> None:
        """An answer with an unknown code and a message quoting the token yields only the
        status in the error detail."""
        body: dict[str, Any] = {"error": {"code": 400, "status": f"BOGUS {TOKEN}"}}
        server.answers.append(Answer(400, body))
        with pytest.raises(PermanentSendError) as info:
            await channel.send(outgoing())
        assert info.value.detail == "HTTP 400"


class TestServiceAccount:
    def test_a_broken_key_file_names_the_problem_not_the_content(self, tmp_path: Path) -> None:
        """A key file that is not a service account is refused without echoing it."""
        path = tmp_path / "key.json"
        path.write_text(json.dumps({"type": "service_account", "private_key": "SECRET-PEM"}))
        with pytest.raises(ValueError, match="not a service-account key") as info:
            load_service_account(path)
        assert "SECRET" not in str(info.value)
