"""Redis with TLS, an ACL user and a password works by configuration; secrets never leak."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import structlog
from pydantic import SecretStr
from redis.exceptions import AuthenticationError
from redis.exceptions import ConnectionError as RedisConnectionError

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.logging import configure_logging
from couples_nudge.common.runtime import redis_client
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.embedded.valkey import free_port
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import parse_outcome
from tests.support.events import preferences
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.tls import self_signed
from tests.support.tools import require_tool
from tests.support.waiting import eventually

from .test_end_to_end import FIRST_DATE_NIGHT, START

PASSWORD = "s3cret-Redis-pass"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[str]:
    """A private redis-server (Debian's, built with TLS) with TLS only and one ACL user."""
    binary = require_tool("redis-server")
    cert = self_signed(tmp_path)
    port = free_port()
    server = subprocess.Popen(
        [
            binary,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(cert.cert_file),
            "--tls-key-file",
            str(cert.key_file),
            "--tls-ca-cert-file",
            str(cert.cert_file),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--dir",
            str(tmp_path),
            "--user",
            "default",
            "off",
            "--user",
            "nudge",
            "on",
            f">{PASSWORD}",
            "~*",
            "&*",
            "+@all",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        check = subprocess.run(
            [
                "redis-cli",
                "--tls",
                "--cacert",
                str(cert.cert_file),
                "-p",
                str(port),
                "--user",
                "nudge",
                "--pass",
                PASSWORD,
                "--no-auth-warning",
                "ping",
            ],
            capture_output=True,
            check=False,
        )
        if check.stdout.strip() == b"PONG":
            break
        time.sleep(0.1)
    try:
        yield f"rediss://nudge:{PASSWORD}@127.0.0.1:{port}/0?ssl_ca_certs={cert.cert_file}"
    finally:
        server.terminate()
        server.wait(timeout=10)


class TestSecuredRedis:
    async def test_whole_path_over_tls_with_an_acl_user(
        self, tls_redis: str, mail: MailCatcher, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """rediss:// with user and password: preferences in, email out; logs hold no secret."""
        configure_logging("test", "json", "debug", cache_loggers=False)
        try:
            clock = ManualClock(START)
            scheduler = SchedulerService(
                scheduler_settings(tls_redis, "sec", max_poll_seconds=0.02), clock
            )
            notifier = NotifierService(
                notifier_settings(tls_redis, "sec", smtp_port=mail.port), clock
            )
            redis = aioredis.Redis.from_url(tls_redis)
            await scheduler.start()
            await notifier.start()
            try:
                await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: preferences("maya-sam")})
                await eventually(
                    lambda: redis.zscore(scheduler.keys.timers(0), "maya-sam/d/both"), until=bool
                )
                clock.set(FIRST_DATE_NIGHT + timedelta(seconds=1))
                sent = await eventually(
                    lambda: read_events(redis, scheduler.keys.outcomes, parse_outcome),
                    until=lambda found: sum(o.type == "nudge.sent.v1" for o in found) >= 2,
                )
                assert {o.data.kind for o in sent if o.type == "nudge.sent.v1"} == {"date_night"}
            finally:
                await notifier.stop()
                await scheduler.stop()
                await redis.aclose()
        finally:
            structlog.reset_defaults()
        output = capfd.readouterr()
        assert PASSWORD not in output.out + output.err
        assert len(mail.messages) >= 2

    async def test_wrong_password_fails_clearly_without_echoing_it(self, tls_redis: str) -> None:
        """A bad password is refused; neither the error nor the settings' repr shows it."""
        wrong = tls_redis.replace(PASSWORD, "not-the-password-123")
        settings = scheduler_settings(wrong, "sec")
        client = redis_client(settings)
        with pytest.raises((AuthenticationError, RedisConnectionError)) as caught:
            await client.ping()
        await client.aclose()
        assert "not-the-password-123" not in str(caught.value)
        assert "not-the-password-123" not in repr(settings)
        assert "not-the-password-123" not in str(settings.model_dump())
        assert isinstance(settings.redis_url, SecretStr)
