"""NUDGE_OPERATOR_PORT: operator endpoints on a port of their own, public pages on
NUDGE_HTTP_PORT, each refusing the other's paths; unset, everything stays on one port."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import ValidationError

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.settings import CommonSettings
from couples_nudge.healthcheck import healthz_url
from couples_nudge.notifier.channels.base import RecordingChannel
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from tests.support.cli import cli_env, closed_port
from tests.support.settings import notifier_settings, scheduler_settings

NOW = datetime(2026, 12, 1, tzinfo=UTC)
PUBLIC_URL = "https://nudges.example.org"
KEY = "k1:" + "p" * 40
OPERATOR_PATHS = ("/healthz", "/readyz", "/metrics", "/status", "/status/data.json")
BAD_TOKEN = "/unsubscribe/not-a-token"  # a public path: 400 where served, 404 elsewhere


def _notifier(redis_url: str, key_prefix: str, **ports: int) -> NotifierService:
    settings = notifier_settings(
        redis_url, key_prefix, public_url=PUBLIC_URL, unsubscribe_secrets=[KEY], **ports
    )
    return NotifierService(settings, ManualClock(NOW), channels={"email": RecordingChannel()})


@pytest.mark.usefixtures("redis")  # removes the consumer groups' streams afterwards
class TestTwoPorts:
    async def test_the_public_port_serves_only_public_pages(
        self, redis_url: str, key_prefix: str
    ) -> None:
        """With both ports set, health, metrics and /status are 404 on the public port."""
        service = _notifier(redis_url, key_prefix, http_port=0, operator_port=0)
        await service.start()
        try:
            assert service.http is not None
            assert service.operator_http is not None
            assert service.http.port != service.operator_http.port
            async with httpx.AsyncClient(base_url=service.http.url) as client:
                assert (await client.get(BAD_TOKEN)).status_code == 400
                for path in OPERATOR_PATHS:
                    assert (await client.get(path)).status_code == 404, path
        finally:
            await service.stop()

    async def test_the_operator_port_serves_only_operator_endpoints(
        self, redis_url: str, key_prefix: str
    ) -> None:
        """The operator port answers health, readiness, metrics and /status; not /unsubscribe."""
        service = _notifier(redis_url, key_prefix, http_port=0, operator_port=0)
        await service.start()
        try:
            assert service.operator_http is not None
            async with httpx.AsyncClient(base_url=service.operator_http.url) as client:
                for path in OPERATOR_PATHS:
                    assert (await client.get(path)).status_code == 200, path
                assert "nudge_" in (await client.get("/metrics")).text
                assert (await client.get(BAD_TOKEN)).status_code == 404
                assert (await client.post(BAD_TOKEN)).status_code == 404
        finally:
            await service.stop()

    async def test_the_scheduler_needs_only_the_operator_port(
        self, redis_url: str, key_prefix: str
    ) -> None:
        """A scheduler with NUDGE_OPERATOR_PORT alone opens that port and no other."""
        service = SchedulerService(
            scheduler_settings(redis_url, key_prefix, operator_port=0), ManualClock(NOW)
        )
        await service.start()
        try:
            assert service.http is None
            assert service.operator_http is not None
            async with httpx.AsyncClient(base_url=service.operator_http.url) as client:
                assert (await client.get("/readyz")).status_code == 200
                assert (await client.get("/metrics")).status_code == 200
        finally:
            await service.stop()


@pytest.mark.usefixtures("redis")
class TestOnePort:
    async def test_without_an_operator_port_everything_shares_the_http_port(
        self, redis_url: str, key_prefix: str
    ) -> None:
        """Backwards compatible: NUDGE_HTTP_PORT alone serves public and operator paths."""
        service = _notifier(redis_url, key_prefix, http_port=0)
        await service.start()
        try:
            assert service.operator_http is None
            assert service.http is not None
            async with httpx.AsyncClient(base_url=service.http.url) as client:
                assert (await client.get(BAD_TOKEN)).status_code == 400
                for path in OPERATOR_PATHS:
                    assert (await client.get(path)).status_code == 200, path
        finally:
            await service.stop()


class TestSettings:
    def test_one_port_cannot_be_both(self) -> None:
        """NUDGE_OPERATOR_PORT equal to NUDGE_HTTP_PORT is refused: it would not separate."""
        with pytest.raises(ValidationError, match="operator_port must differ"):
            CommonSettings(http_port=8080, operator_port=8080)


class TestHealthcheckCommand:
    @pytest.mark.usefixtures("redis")
    async def test_it_is_healthy_when_the_operator_port_answers(
        self, redis_url: str, key_prefix: str
    ) -> None:
        """`python -m couples_nudge.healthcheck` (the image's HEALTHCHECK) exits 0 against a live
        service's operator port, and 1 when nothing listens there."""
        service = SchedulerService(
            scheduler_settings(redis_url, key_prefix, operator_port=0), ManualClock(NOW)
        )
        await service.start()
        try:
            assert service.operator_http is not None
            port = service.operator_http.port
            # As in the image: listening on every interface, checked through loopback.
            env = cli_env(NUDGE_OPERATOR_PORT=str(port), NUDGE_HTTP_HOST="0.0.0.0")  # noqa: S104
            live = await _healthcheck(env)
        finally:
            await service.stop()
        dead = await _healthcheck(cli_env(NUDGE_OPERATOR_PORT=str(closed_port())))
        print(f"healthcheck: live exit {live[0]}, nothing listening exit {dead[0]}")
        assert live == (0, "")
        assert dead[0] == 1
        assert dead[1].startswith("unhealthy: no answer from /healthz")

    def test_it_falls_back_to_the_http_port_and_needs_one(self) -> None:
        """Without an operator port /healthz is on NUDGE_HTTP_PORT; without any, no URL."""
        assert healthz_url(CommonSettings(http_port=8080)) == "http://127.0.0.1:8080/healthz"
        both = CommonSettings(http_host="::", http_port=8080, operator_port=9090)
        assert healthz_url(both) == "http://[::1]:9090/healthz"
        assert healthz_url(CommonSettings()) is None


async def _healthcheck(env: dict[str, str]) -> tuple[int, str]:
    """Run the healthcheck in its own process (the service must keep answering meanwhile)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "couples_nudge.healthcheck",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, err.decode().strip()
