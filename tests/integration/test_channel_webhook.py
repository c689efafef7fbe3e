"""The webhook channel against a real local HTTP receiver that verifies every signature.

The receiver is what an app's backend would run: recompute HMAC-SHA256 over "<t>.<raw body>",
compare in constant time, refuse stale timestamps, then answer with a queued status.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.http import HttpServer
from couples_nudge.notifier.channels.base import Outgoing, RecordingChannel
from couples_nudge.notifier.channels.webhook import WebhookChannel
from couples_nudge.notifier.errors import PermanentSendError, TransientSendError
from tests.support.events import example
from tests.support.notifier import delivery, due, plant
from tests.support.settings import notifier_settings

SECRET = "whsec-test-0123456789abcdef"
PUSH = {
    "title": "Plan a night in",
    "body": "Pick a film Sam loves <3 & make popcorn",
    "url": "https://app.example.org/n/1",
    "kind": "date_night",
}


@dataclass
class Receiver:
    secret: bytes
    answers: list[int] = field(default_factory=list)
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)

    def verify(self, header: str, body: bytes) -> bool:
        parts = dict(p.split("=", 1) for p in header.split(","))
        t = int(parts["t"])
        expected = hmac.new(self.secret, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        return abs(time.time() - t) < 300 and hmac.compare_digest(expected, parts["v1"])

    async def hook(self, request: Request) -> Response:
        assert request.client is not None
        self.peers.add((request.client.host, request.client.port))
        body = await request.body()
        if not self.verify(request.headers.get("x-nudge-signature", "t=0,v1="), body):
            self.refused.append("bad signature")
            return Response(status_code=401)
        self.received.append((dict(request.headers), json.loads(body)))
        return Response(status_code=self.answers.pop(0) if self.answers else 204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver(SECRET.encode())
    server = HttpServer(
        [Route("/hooks/nudges", hook.hook, methods=["POST"])], host="127.0.0.1", port=0
    )
    await server.start()
    try:
        yield hook, f"{server.url}/hooks/nudges"
    finally:
        await server.stop()


@pytest.fixture
async def webhook(receiver: tuple[Receiver, str]) -> AsyncIterator[WebhookChannel]:
    channel = WebhookChannel(url=receiver[1], secret=SecretStr(SECRET), timeout=5.0)
    yield channel
    await channel.close()


def outgoing(key: str = "maya-sam/d/both@1796000000|maya|webhook") -> Outgoing:
    return Outgoing(
        "webhook",
        key,
        push=PUSH,
        couple_id="maya-sam",
        partner_id="maya",
        occurrence_id="maya-sam/d/both@1796000000",
    )


class TestSignedPost:
    async def test_payload_and_signature(
        self, receiver: tuple[Receiver, str], webhook: WebhookChannel
    ) -> None:
        """The receiver verifies the signature and gets the push payload plus ids, nothing else."""
        hook, _ = receiver
        await webhook.send(outgoing())
        assert hook.refused == []
        [(headers, payload)] = hook.received
        assert payload == PUSH | {
            "couple_id": "maya-sam",
            "partner_id": "maya",
            "occurrence_id": "maya-sam/d/both@1796000000",
        }
        assert headers["content-type"] == "application/json; charset=utf-8"

    async def test_wrong_secret_is_refused(self, receiver: tuple[Receiver, str]) -> None:
        """Signed with another secret, the receiver refuses (401): a permanent, not gone, error."""
        hook, url = receiver
        impostor = WebhookChannel(url=url, secret=SecretStr("not-the-shared-secret"))
        try:
            with pytest.raises(PermanentSendError) as info:
                await impostor.send(outgoing())
        finally:
            await impostor.close()
        assert info.value.gone is False
        assert hook.refused == ["bad signature"]
        assert hook.received == []

    async def test_idempotency_key(
        self, receiver: tuple[Receiver, str], webhook: WebhookChannel
    ) -> None:
        """A retry of the same nudge carries the same Idempotency-Key; another nudge another."""
        hook, _ = receiver
        await webhook.send(outgoing())
        await webhook.send(outgoing())
        await webhook.send(outgoing("maya-sam/d/both@1796604800|maya|webhook"))
        keys = [headers["idempotency-key"] for headers, _ in hook.received]
        assert keys[0] == keys[1] != keys[2]

    async def test_connection_is_reused(
        self, receiver: tuple[Receiver, str], webhook: WebhookChannel
    ) -> None:
        """Consecutive posts share one connection."""
        hook, _ = receiver
        for _ in range(3):
            await webhook.send(outgoing())
        assert len(hook.received) == 3
        assert len(hook.peers) == 1


class TestAnswers:
    @pytest.mark.parametrize("status", [200, 202, 204])
    async def test_success(
        self, receiver: tuple[Receiver, str], webhook: WebhookChannel, status: int
    ) -> None:
        """Any 2xx is delivered."""
        receiver[0].answers.append(status)
        await webhook.send(outgoing())

    async def test_gone(self, receiver: tuple[Receiver, str], webhook: WebhookChannel) -> None:
        """410 says this partner is gone: permanent, channel dead."""
        receiver[0].answers.append(410)
        with pytest.raises(PermanentSendError) as info:
            await webhook.send(outgoing())
        assert info.value.gone is True

    @pytest.mark.parametrize("status", [429, 500, 503])
    async def test_transient(
        self, receiver: tuple[Receiver, str], webhook: WebhookChannel, status: int
    ) -> None:
        """Rate limits and server errors are retried later."""
        receiver[0].answers.append(status)
        with pytest.raises(TransientSendError, match=f"HTTP {status}"):
            await webhook.send(outgoing())

    @pytest.mark.parametrize("status", [400, 404, 422])
    async def test_other_client_errors(
        self, receiver: tuple[Receiver, str], webhook: WebhookChannel, status: int
    ) -> None:
        """Other 4xx answers (404 included: the URL is global) are permanent, not gone."""
        receiver[0].answers.append(status)
        with pytest.raises(PermanentSendError) as info:
            await webhook.send(outgoing())
        assert info.value.gone is False


class TestThroughDelivery:
    async def test_nudge_reaches_the_app_with_its_deep_link(
        self,
        receiver: tuple[Receiver, str],
        webhook: WebhookChannel,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
    ) -> None:
        """A partner with email and webhook gets both; the webhook body names the nudge by ids,
        carries the deep link, and no email address."""
        hook, _ = receiver
        now = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)
        settings = notifier_settings(
            redis_url,
            key_prefix,
            push_link="https://app.example.org/nudge/{kind}?o={occurrence_id}",
        )
        data = example()["data"]
        data["partners"][0]["channels"] = ["email", "webhook"]
        sids = await plant(redis, settings, data, now)
        email = RecordingChannel()
        deliver = delivery(redis, settings, {"email": email, "webhook": webhook}, ManualClock(now))

        nudge = due("maya-sam", sids[0], "date_night", ["maya"], now, turn="sam")
        result = await deliver.deliver(nudge)

        assert sorted((o.type, o.data.channel) for o in result.outcomes) == [
            ("nudge.sent.v1", "email"),
            ("nudge.sent.v1", "webhook"),
        ]
        [(_, payload)] = hook.received
        occurrence = nudge.data.occurrence_id
        assert payload["occurrence_id"] == occurrence
        assert (payload["couple_id"], payload["partner_id"], payload["kind"]) == (
            "maya-sam",
            "maya",
            "date_night",
        )
        assert payload["url"] == (
            "https://app.example.org/nudge/date_night?o="
            + occurrence.replace("/", "%2F").replace("@", "%40")
        )
        assert "@example" not in json.dumps(payload)
