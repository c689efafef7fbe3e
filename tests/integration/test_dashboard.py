"""Specification of the notifier's live status page (/status), its JSON and its replay button.

The page is checked in a real headless Chromium (Debian's `chromium` package, installed by
.ci/run): the figures must be rendered by the page's own script, and the screenshot must be a
full-size, non-blank picture.
"""

from __future__ import annotations

import asyncio
import struct
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.common.dead_letters import bury
from couples_nudge.common.streams import DATA_FIELD, publish
from couples_nudge.embedded.valkey import EmbeddedValkey
from couples_nudge.notifier.channels.base import RecordingChannel
from couples_nudge.notifier.service import NotifierService
from couples_nudge.operator.dashboard import TOKEN_HEADER
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import NudgeSent, NudgeSuppressed, OutcomeEvent
from tests.support.browser import PHONE, WIDTHS, chromium, layout_overflow, shoot, viewport
from tests.support.events import preferences
from tests.support.outcomes import SCHEDULED, sent, suppressed
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.tools import require_tool
from tests.support.waiting import eventually

NOW = datetime(2026, 12, 4, 18, 0, 30, tzinfo=UTC)
TOKEN = "operator-token-for-tests-0123456789"
SECRET_ADDRESS = "maya@example.test"


def sent_to_maya() -> NudgeSent:
    return sent(
        late=NOW - SCHEDULED,
        couple_id="maya-sam",
        occurrence_id="maya-sam/d/both@1796407200",
        content_id="dn-picnic",
    )


def paused() -> NudgeSuppressed:
    return suppressed(
        late=NOW - SCHEDULED,
        couple_id="lena-jo",
        occurrence_id="lena-jo/c/both@1796407200",
        partner_id="jo",
    )


async def seed(redis: aioredis.Redis, service: NotifierService) -> None:
    """Two outcomes, one dead letter whose reason and payload hold an address, two timers."""
    keys = service.keys
    outcomes: list[OutcomeEvent] = [sent_to_maya(), paused()]
    await publish(redis, keys.outcomes, outcomes, maxlen=1000)
    await bury(
        redis,
        keys.dead,
        source=keys.due(0),
        entry_id="1-0",
        reason=f"gave up after 6 attempts: 421 for <{SECRET_ADDRESS}>",
        attempts=6,
        data=b'{"type":"nudge.due.v1","to":"' + SECRET_ADDRESS.encode() + b'"}',
        couple_id="maya-sam",
        maxlen=1000,
    )
    now = epoch_ms(NOW)
    await redis.zadd(keys.timers(0), {"late": now - 300_000, "soon": now + 60_000})


@pytest.fixture
async def notifier(
    redis: aioredis.Redis, redis_url: str, key_prefix: str, request: pytest.FixtureRequest
) -> AsyncIterator[NotifierService]:
    token = getattr(request, "param", TOKEN)
    settings = notifier_settings(
        redis_url,
        key_prefix,
        http_port=0,
        operator_token=None if token is None else SecretStr(token),
    )
    service = NotifierService(settings, ManualClock(NOW), channels={"email": RecordingChannel()})
    await service.start()
    try:
        await seed(redis, service)
        yield service
    finally:
        await service.stop()


def client(service: NotifierService) -> httpx.AsyncClient:
    assert service.http is not None
    return httpx.AsyncClient(base_url=service.http.url)


class TestStatusData:
    async def test_figures_outcomes_and_dead_letters_are_served_as_json(
        self, notifier: NotifierService
    ) -> None:
        """/status/data.json carries the status snapshot, recent outcomes and dead letters."""
        async with client(notifier) as http:
            data = (await http.get("/status/data.json")).json()
        assert data["status"]["totals"]["timers"] == 2
        assert data["status"]["totals"]["overdue"] == 1
        assert data["status"]["dead_letters"] == 1
        assert [o["type"] for o in data["outcomes"]] == ["suppressed", "sent"]
        [letter] = data["dead_letters"]
        assert letter["source"] == "due:{s00}"
        assert letter["attempts"] == 6
        assert data["replay_enabled"] is True

    async def test_outcomes_carry_type_kind_reason_channel_and_ids_only(
        self, notifier: NotifierService
    ) -> None:
        """No names, addresses, content or error text: only what identifies and classifies."""
        async with client(notifier) as http:
            data = (await http.get("/status/data.json")).json()
        suppressed, delivered = data["outcomes"]
        assert set(delivered) == {
            "entry_id",
            "at",
            "type",
            "kind",
            "reason",
            "channel",
            "occurrence_id",
            "couple_id",
            "partner_id",
            "attempt",
        }
        assert (suppressed["kind"], suppressed["reason"], suppressed["channel"]) == (
            "check_in",
            "paused",
            None,
        )
        assert delivered["occurrence_id"] == "maya-sam/d/both@1796407200"

    async def test_dead_letters_never_show_their_payload_or_addresses(
        self, notifier: NotifierService
    ) -> None:
        """The reason is scrubbed of addresses; the stored event is not sent to the browser."""
        async with client(notifier) as http:
            response = await http.get("/status/data.json")
        assert SECRET_ADDRESS not in response.text
        [letter] = response.json()["dead_letters"]
        assert letter["reason"] == "gave up after 6 attempts: 421 for <[email]>"
        assert letter["event_type"] == "nudge.due.v1"

    async def test_the_page_and_its_assets_are_served_with_a_strict_policy(
        self, notifier: NotifierService
    ) -> None:
        """HTML, JS and CSS come from the notifier itself; the CSP allows nothing else."""
        async with client(notifier) as http:
            page = await http.get("/status")
            script = await http.get("/status/app.js")
            style = await http.get("/status/app.css")
        assert page.status_code == script.status_code == style.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert script.headers["content-type"].startswith("text/javascript")
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "http" not in page.text.replace("http-equiv", "")  # no external URL at all
        assert "/status/data.json" in script.text
        assert "setInterval(refresh, POLL_MS)" in script.text  # figures refresh on their own


class TestReplay:
    async def test_the_right_token_replays_a_dead_letter_onto_its_source(
        self, notifier: NotifierService, redis: aioredis.Redis
    ) -> None:
        """POST with X-Operator-Token moves the entry back to its stream and off `dead`."""
        keys = notifier.keys
        async with client(notifier) as http:
            [letter] = (await http.get("/status/data.json")).json()["dead_letters"]
            response = await http.post(
                "/status/dead-letters/replay",
                json={"ids": [letter["id"]]},
                headers={TOKEN_HEADER: TOKEN},
            )
        assert response.status_code == 200
        assert response.json() == {"replayed": 1}
        assert await redis.xlen(keys.dead) == 0
        # Back on its source: the running notifier may already have read it, refused it (it is
        # no NudgeDue) and deleted it, so the stream's count of entries ever added tells.
        assert (await redis.xinfo_stream(keys.due(0)))["entries-added"] == 1

    async def test_a_replay_redis_refuses_is_a_503_and_the_letter_stays(
        self, key_prefix: str
    ) -> None:
        """Redis out of memory (`maxmemory`, `noeviction`; a private server): the copy onto
        the source stream is refused, so the answer is 503 and the letter is still in `dead`
        (its XDEL used to run anyway: the letter was lost and the answer a 500)."""
        with EmbeddedValkey() as server:
            redis = aioredis.Redis.from_url(server.url)
            settings = notifier_settings(
                server.url, key_prefix, http_port=0, operator_token=SecretStr(TOKEN)
            )
            service = NotifierService(
                settings, ManualClock(NOW), channels={"email": RecordingChannel()}
            )
            await service.start()
            try:
                await seed(redis, service)
                await redis.config_set("maxmemory-policy", "noeviction")
                await redis.config_set("maxmemory", 1)
                async with client(service) as http:
                    response = await http.post(
                        "/status/dead-letters/replay",
                        json={"all": True},
                        headers={TOKEN_HEADER: TOKEN},
                    )
                await redis.config_set("maxmemory", 0)
                kept = await redis.xlen(service.keys.dead)
            finally:
                await service.stop()
                await redis.aclose()
        assert response.status_code == 503
        assert "did not take" in response.json()["error"]
        assert kept == 1

    async def test_replay_all_takes_every_dead_letter(
        self, notifier: NotifierService, redis: aioredis.Redis
    ) -> None:
        """{"all": true} replays the whole dead-letter stream."""
        async with client(notifier) as http:
            response = await http.post(
                "/status/dead-letters/replay", json={"all": True}, headers={TOKEN_HEADER: TOKEN}
            )
        assert response.json() == {"replayed": 1}
        assert await redis.xlen(notifier.keys.dead) == 0

    @pytest.mark.parametrize("token", [None, "", "operator-token-for-tests-012345678X"])
    async def test_a_missing_or_wrong_token_is_refused(
        self, notifier: NotifierService, redis: aioredis.Redis, token: str | None
    ) -> None:
        """403, and the dead letter stays where it is."""
        headers = {} if token is None else {TOKEN_HEADER: token}
        async with client(notifier) as http:
            response = await http.post(
                "/status/dead-letters/replay", json={"all": True}, headers=headers
            )
        assert response.status_code == 403
        assert await redis.xlen(notifier.keys.dead) == 1

    @pytest.mark.parametrize("notifier", [None], indirect=True)
    async def test_without_a_configured_token_replay_is_disabled(
        self, notifier: NotifierService, redis: aioredis.Redis
    ) -> None:
        """No NUDGE_OPERATOR_TOKEN: every replay is refused, and the page says so."""
        async with client(notifier) as http:
            response = await http.post(
                "/status/dead-letters/replay", json={"all": True}, headers={TOKEN_HEADER: ""}
            )
            data = (await http.get("/status/data.json")).json()
        assert response.status_code == 403
        assert "NUDGE_OPERATOR_TOKEN" in response.json()["error"]
        assert data["replay_enabled"] is False
        assert await redis.xlen(notifier.keys.dead) == 1

    @pytest.mark.parametrize("body", [{}, {"ids": []}, {"ids": [1]}, {"all": "yes"}, [1]])
    async def test_a_malformed_request_is_refused(
        self, notifier: NotifierService, body: Any
    ) -> None:
        """400 with the expected shape, never a replay of everything by accident."""
        async with client(notifier) as http:
            response = await http.post(
                "/status/dead-letters/replay", json=body, headers={TOKEN_HEADER: TOKEN}
            )
        assert response.status_code == 400
        assert "ids" in response.json()["error"]


def _chromium() -> str:
    return require_tool("chromium")


async def browse(url: str, profile: Path, *args: str) -> bytes:
    """Run headless Chromium on `url` (non-blocking: this event loop serves the page)."""
    process = await asyncio.create_subprocess_exec(
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        "--virtual-time-budget=5000",
        *args,
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=90)
    assert process.returncode == 0, err.decode(errors="replace")[-2000:]
    return out


def png_facts(data: bytes) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the pixel data) of a PNG file."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    idat, position = b"", 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        if kind == b"IDAT":
            idat += data[position + 8 : position + 8 + length]
        position += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


class TestStatusPageInABrowser:
    async def test_the_script_renders_figures_outcomes_and_dead_letters(
        self, notifier: NotifierService, tmp_path: Path
    ) -> None:
        """The DOM after the page's own fetch holds the live figures and rows."""
        assert notifier.http is not None
        dom = (
            await browse(f"{notifier.http.url}/status", tmp_path / "profile", "--dump-dom")
        ).decode()
        assert 'data-state="ready"' in dom
        assert 'id="timers-total">2<' in dom
        assert 'id="timers-overdue">1<' in dom
        assert 'id="dead-count">1<' in dom
        assert "maya-sam/d/both@1796407200" in dom
        assert '<span class="pill suppressed">suppressed</span>' in dom
        assert "gave up after 6 attempts" in dom
        assert ">Replay</button>" in dom
        assert SECRET_ADDRESS not in dom

    async def test_a_screenshot_is_a_full_non_blank_page(
        self, notifier: NotifierService, tmp_path: Path
    ) -> None:
        """Chromium's screenshot has the window's size and real content (not one flat colour)."""
        assert notifier.http is not None
        shot = tmp_path / "status.png"
        await browse(f"{notifier.http.url}/status", tmp_path / "profile", f"--screenshot={shot}")
        width, height, distinct = png_facts(shot.read_bytes())
        assert (width, height) == (1280, 900)
        assert distinct > 50


@pytest.fixture
async def with_couple(
    notifier: NotifierService, redis: aioredis.Redis, redis_url: str, key_prefix: str
) -> NotifierService:
    """maya-sam's preferences applied by a real scheduler (the seed has its outcome)."""
    scheduler = SchedulerService(
        scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.02), ManualClock(NOW)
    )
    await scheduler.start()
    try:
        await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: preferences("maya-sam")})
        await eventually(lambda: redis.zcard(scheduler.keys.timers(0)), until=lambda n: n > 2)
    finally:
        await scheduler.stop()
    return notifier


class TestCoupleSearch:
    async def test_the_status_page_has_a_search_form_its_policy_allows(
        self, notifier: NotifierService
    ) -> None:
        """A GET form to /status/trace; the CSP lets forms go to this origin only."""
        async with client(notifier) as http:
            page = await http.get("/status")
        assert '<form class="search" action="/status/trace" method="get"' in page.text
        assert 'name="couple"' in page.text
        assert "form-action 'self'" in page.headers["content-security-policy"]

    async def test_the_trace_page_shows_a_couple_by_id_without_personal_data(
        self, with_couple: NotifierService
    ) -> None:
        """Schedules, next fires and the seeded outcome of maya-sam, server-rendered."""
        async with client(with_couple) as http:
            page = await http.get("/status/trace", params={"couple": "maya-sam"})
            data = (await http.get("/status/trace.json", params={"couple": "maya-sam"})).json()
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert "<script" not in page.text
        assert "maya-sam/d/both" in page.text  # a schedule
        assert "maya-sam/d/both@1796407200" in page.text  # the seeded outcome
        assert 'value="maya-sam"' in page.text  # the form keeps what was searched
        for personal in ("Maya", "Sam", SECRET_ADDRESS, "sam@example.test"):
            assert personal not in page.text
        assert data["couple_id"] == "maya-sam"
        assert data["found"] is True
        assert {s["schedule_id"] for s in data["schedules"]} >= {"maya-sam/d/both"}

    @pytest.mark.parametrize("couple", ["../etc", "<script>alert(1)</script>", "a" * 65])
    async def test_an_invalid_id_is_refused_without_echoing_it(
        self, notifier: NotifierService, couple: str
    ) -> None:
        """400 with the id rules, before any key is built; the input is not on the page."""
        async with client(notifier) as http:
            page = await http.get("/status/trace", params={"couple": couple})
            data = await http.get("/status/trace.json", params={"couple": couple})
        assert page.status_code == data.status_code == 400
        assert "not a couple id" in page.text
        assert couple not in page.text
        assert "<script>alert" not in page.text
        assert couple not in data.text

    async def test_an_unknown_couple_says_so(self, notifier: NotifierService) -> None:
        """A valid id with no couple: "No couple with this id", and its outcomes if any."""
        async with client(notifier) as http:
            page = await http.get("/status/trace", params={"couple": "nobody"})
        assert page.status_code == 200
        assert "No couple with this id in Redis" in page.text


class TestPagesAtPhoneAndDesktopWidth:
    @pytest.mark.parametrize("width", ["phone", "desktop"])
    async def test_nothing_clips_on_the_status_and_trace_pages(
        self, with_couple: NotifierService, tmp_path: Path, width: str
    ) -> None:
        """At 390 px and 1280 px no element passes the viewport's edge (wide tables scroll in
        their own box), and the screenshots are real pictures."""
        assert with_couple.http is not None
        base = with_couple.http.url
        async with chromium() as browser:
            page = await browser.new_page(viewport=viewport(width))
            await page.goto(f"{base}/status")
            await page.wait_for_selector("body[data-state=ready]")
            assert await layout_overflow(page) == []
            shot = await shoot(page, tmp_path / f"status-{width}.png")
            await page.goto(f"{base}/status/trace?couple=maya-sam")
            assert await layout_overflow(page) == []
            trace_shot = await shoot(page, tmp_path / f"trace-{width}.png")
        for picture in (shot, trace_shot):
            shot_width, _, distinct = png_facts(picture)
            assert shot_width == WIDTHS[width][0]
            assert distinct > 50
        print(f"screenshots at {width}: {tmp_path}")

    async def test_the_search_works_without_javascript(self, with_couple: NotifierService) -> None:
        """With scripts off, typing an id and pressing Enter opens its trace."""
        assert with_couple.http is not None
        async with chromium() as browser:
            context = await browser.new_context(java_script_enabled=False, viewport=None)
            page = await context.new_page()
            await page.set_viewport_size({"width": PHONE[0], "height": PHONE[1]})
            await page.goto(f"{with_couple.http.url}/status")
            await page.fill("#couple", "maya-sam")
            await page.press("#couple", "Enter")
            await page.wait_for_url("**/status/trace?couple=maya-sam")
            assert "maya-sam/d/both" in await page.inner_text("#trace-schedules")
            await context.close()
