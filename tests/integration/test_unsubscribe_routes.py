"""The unsubscribe endpoint (RFC 8058 one-click) served over real HTTP, publishing to real Redis.

GET shows a confirmation page and changes nothing; POST with List-Unsubscribe=One-Click
publishes preferences.unsubscribed.v1; bad tokens get 400 and publish nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from structlog.testing import capture_logs

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.http import HttpServer
from couples_nudge.common.streams import read_events
from couples_nudge.embedded.valkey import free_port
from couples_nudge.notifier.change_limit import CHANGES_PER_MINUTE
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.unsubscribe import Scope, UnsubscribeClaim, UnsubscribeTokens
from couples_nudge.notifier.unsubscribe_routes import unsubscribe_routes
from couples_nudge_schemas import PreferencesUnsubscribed, parse_preference
from tests.support.events import example
from tests.support.notifier import plant
from tests.support.settings import notifier_settings

NOW = datetime(2026, 12, 5, 10, 30, tzinfo=UTC)
KEY_NEW = "k2:" + "n" * 40
KEY_OLD = "k1:" + "o" * 40
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def claim(scope: Scope = "date_night", partner: str = "maya") -> UnsubscribeClaim:
    return UnsubscribeClaim(
        couple_id="maya-sam", partner_id=partner, scope=scope, issued_at=1_796_000_000
    )


class Endpoint:
    def __init__(self, settings: NotifierSettings, redis: aioredis.Redis, port: int) -> None:
        self.settings = settings
        self.redis = redis
        self.server = HttpServer(
            unsubscribe_routes(redis, settings, ManualClock(NOW)), host="127.0.0.1", port=port
        )
        assert settings.public_url is not None
        self.tokens = UnsubscribeTokens.from_secrets(
            settings.unsubscribe_secrets, settings.public_url
        )

    def link(self, c: UnsubscribeClaim | None = None) -> str:
        return self.tokens.link(c or claim())

    async def events(self) -> list[PreferencesUnsubscribed]:
        found = await read_events(self.redis, self.settings.keys.preferences, parse_preference)
        return [e for e in found if isinstance(e, PreferencesUnsubscribed)]


@pytest.fixture
async def endpoint(
    redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> AsyncIterator[Endpoint]:
    port = free_port()
    settings = notifier_settings(
        redis_url,
        key_prefix,
        public_url=f"http://127.0.0.1:{port}",
        unsubscribe_secrets=[SecretStr(KEY_NEW), SecretStr(KEY_OLD)],
    )
    e = Endpoint(settings, redis, port)
    await e.server.start()
    try:
        yield e
    finally:
        await e.server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


class TestConfirmationPage:
    async def test_get_shows_a_form_and_changes_nothing(
        self, endpoint: Endpoint, client: httpx.AsyncClient
    ) -> None:
        """GET answers a page whose button POSTs One-Click to the same link; nothing published."""
        link = endpoint.link()
        response = await client.get(link)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        page = response.text
        assert "Stop date-night nudges?" in page
        assert f'<form method="post" action="{html.escape(link)}">' in page
        assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
        assert await endpoint.events() == []

    async def test_offers_all_nudges_with_its_own_link(
        self, endpoint: Endpoint, client: httpx.AsyncClient
    ) -> None:
        """A kind's page also offers "all nudges": a second form whose link is scope "all"."""
        page = (await client.get(endpoint.link())).text
        actions = re.findall(r'action="([^"]+)"', page)
        assert len(actions) == 2
        token = html.unescape(actions[1]).rsplit("/", 1)[1]
        assert endpoint.tokens.verify(token) == claim().model_copy(update={"scope": "all"})

    async def test_all_scope_page_has_one_button(
        self, endpoint: Endpoint, client: httpx.AsyncClient
    ) -> None:
        """A link for all nudges needs no second choice."""
        page = (await client.get(endpoint.link(claim("all")))).text
        assert "Stop all nudges?" in page
        assert len(re.findall(r"<form ", page)) == 1

    async def test_private_headers(self, endpoint: Endpoint, client: httpx.AsyncClient) -> None:
        """The page is not cached, not framed, not indexed and sends no Referer onwards."""
        headers = (await client.get(endpoint.link())).headers
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-frame-options"] == "DENY"
        assert "noindex" in headers["x-robots-tag"]
        policy = headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "unsafe-inline" not in policy
        assert "form-action 'self'" in policy
        assert "style-src 'sha256-" in policy


class TestTheirLanguage:
    async def test_the_pages_speak_the_partners_locale(
        self, endpoint: Endpoint, client: httpx.AsyncClient
    ) -> None:
        """Maya set "de": the confirmation and the done page are German (they were English
        whatever the partner's locale: the page read nothing of the couple)."""
        data = example()["data"]
        data["partners"][0]["locale"] = "de"
        await plant(endpoint.redis, endpoint.settings, data, NOW)
        link = endpoint.link()
        shown = await client.get(link)
        done = await client.post(link, data=ONE_CLICK)
        assert 'lang="de"' in shown.text
        assert "Möchtest du die Impulse für eure Dates abbestellen?" in shown.text
        assert (done.status_code, 'lang="de"' in done.text) == (200, True)
        assert "Abbestellt" in done.text


class TestOneClick:
    async def test_post_publishes_the_event(
        self, endpoint: Endpoint, client: httpx.AsyncClient
    ) -> None:
        """The one-click POST answers 200 and publishes one unsubscribe for that partner and kind,
        on every channel, from the notifier, at the clock's time."""
        response = await client.post(endpoint.link(), data=ONE_CLICK)
        assert response.status_code == 200
        assert "You&#39;re unsubscribed" in response.text
        [event] = await endpoint.events()
        assert event.producer == "nudge-notifier"
        assert event.occurred_at == NOW
        assert event.data.model_dump() == {
            "couple_id": "maya-sam",
            "partner_id": "maya",
            "kind": "date_night",
            "channel": "all",
        }

    async def test_multipart_body(self, endpoint: Endpoint, client: httpx.AsyncClient) -> None:
        """RFC 8058 allows multipart/form-data too."""
        response = await client.post(
            endpoint.link(), files={"List-Unsubscribe": (None, "One-Click")}
        )
        assert response.status_code == 200
        assert len(await endpoint.events()) == 1

    async def test_token_from_a_rotated_key(
        self, endpoint: Endpoint, client: httpx.AsyncClient
    ) -> None:
        """A link signed with the older, still configured key works."""
        old = UnsubscribeTokens.from_secrets(
            [SecretStr(KEY_OLD)], str(endpoint.settings.public_url)
        )
        response = await client.post(old.link(claim(partner="sam")), data=ONE_CLICK)
        assert response.status_code == 200
        [event] = await endpoint.events()
        assert event.data.partner_id == "sam"

    @pytest.mark.parametrize(
        "body",
        [{}, {"List-Unsubscribe": "Yes"}, {"unsubscribe": "One-Click"}],
        ids=["empty", "wrong-value", "wrong-field"],
    )
    async def test_post_without_one_click_is_refused(
        self, endpoint: Endpoint, client: httpx.AsyncClient, body: dict[str, str]
    ) -> None:
        """A POST whose body is not List-Unsubscribe=One-Click changes nothing."""
        response = await client.post(endpoint.link(), data=body)
        assert response.status_code == 400
        assert await endpoint.events() == []

    async def test_a_link_posted_in_a_loop_publishes_a_bounded_number_of_unsubscribes(
        self, endpoint: Endpoint, client: httpx.AsyncClient
    ) -> None:
        """Each POST published a new event (fresh id): 50 in a row put 50 on the preferences
        stream. Now a partner has CHANGES_PER_MINUTE a minute (429 with Retry-After beyond);
        the other partner's link is not held back."""
        answers = [await client.post(endpoint.link(), data=ONE_CLICK) for _ in range(50)]
        theirs = await client.post(endpoint.link(claim(partner="sam")), data=ONE_CLICK)
        statuses = [a.status_code for a in answers]
        assert statuses == [200] * CHANGES_PER_MINUTE + [429] * (50 - CHANGES_PER_MINUTE)
        assert answers[-1].headers["retry-after"] == "60"
        assert theirs.status_code == 200
        assert len(await endpoint.events()) == CHANGES_PER_MINUTE + 1

    async def test_no_secrets_in_logs(self, endpoint: Endpoint, client: httpx.AsyncClient) -> None:
        """Logs name the couple, partner and scope, never the token."""
        link = endpoint.link()
        with capture_logs() as logs:
            await client.post(link, data=ONE_CLICK)
        assert [entry["event"] for entry in logs] == ["unsubscribe_published"]
        assert link.rsplit("/", 1)[1] not in repr(logs)
        assert logs[0]["scope"] == "date_night"


class TestBadTokens:
    @staticmethod
    def tampered(link: str) -> str:
        base, token = link.rsplit("/", 1)
        kid, payload, mac = token.split(".")
        return f"{base}/{kid}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}.{mac}"

    @pytest.mark.parametrize("method", ["GET", "POST"])
    @pytest.mark.parametrize(
        "make",
        [
            pytest.param(lambda e: TestBadTokens.tampered(e.link()), id="tampered"),
            pytest.param(
                lambda e: UnsubscribeTokens.from_secrets(
                    [SecretStr("k2:" + "f" * 40)], str(e.settings.public_url)
                ).link(claim()),
                id="forged",
            ),
            pytest.param(
                lambda e: UnsubscribeTokens.from_secrets(
                    [SecretStr("k9:" + "n" * 40)], str(e.settings.public_url)
                ).link(claim()),
                id="unknown-kid",
            ),
            pytest.param(lambda e: f"{e.settings.public_url}/unsubscribe/garbage", id="malformed"),
        ],
    )
    async def test_refused_with_400(
        self, endpoint: Endpoint, client: httpx.AsyncClient, make: object, method: str
    ) -> None:
        """Forged, tampered, unknown-kid and malformed tokens get 400 and publish nothing."""
        assert callable(make)
        response = await client.request(
            method, make(endpoint), data=ONE_CLICK if method == "POST" else None
        )
        assert response.status_code == 400
        assert "This link doesn&#39;t work" in response.text
        assert "<form" not in response.text
        assert await endpoint.events() == []


class TestRedisDown:
    async def test_unavailable_is_503_and_says_try_again(
        self, redis_url: str, key_prefix: str, client: httpx.AsyncClient
    ) -> None:
        """When the event cannot be published, the answer is 503 (mail clients retry)."""
        port = free_port()
        settings = notifier_settings(
            redis_url,
            key_prefix,
            public_url=f"http://127.0.0.1:{port}",
            unsubscribe_secrets=[SecretStr(KEY_NEW)],
        )
        dead = aioredis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
        endpoint = Endpoint(settings, dead, port)
        await endpoint.server.start()
        try:
            shown = await client.get(endpoint.link())
            response = await client.post(endpoint.link(), data=ONE_CLICK)
        finally:
            await endpoint.server.stop()
            await dead.aclose()
        assert shown.status_code == 200  # the page needs no Redis: English without a locale
        assert "Stop date-night nudges?" in shown.text
        assert response.status_code == 503
        assert "try again" in response.text


class TestNotConfigured:
    def test_no_routes_without_keys(self, redis_url: str, key_prefix: str) -> None:
        """Without unsubscribe keys the notifier serves no unsubscribe routes."""
        settings = notifier_settings(redis_url, key_prefix)
        assert unsubscribe_routes(aioredis.Redis(), settings, ManualClock(NOW)) == []
