"""A Redis that stops answering holds no HTTP request (NUDGE_HTTP_DEADLINE_SECONDS), and
neither does a client that never finishes one.

The services' client has no socket timeout (blocking stream reads must not have one), so a
frozen Redis (SIGSTOP here: the server keeps its connections and answers nothing) held every
request that read it, a confirmation page, an answer, /readyz, for as long as the freeze
lasted. Each now gets 503 with Retry-After at the deadline, and the next request after the
server wakes is answered as usual.

A connection on which no request begins within the deadline (opened and left silent, or its
headers sent a line at a time: slowloris) is closed: uvicorn has no such timeout, and each
one held a socket, its file descriptor, for as long as the client liked.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time

import httpx
import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from couples_nudge.common.http import HttpServer
from couples_nudge.embedded.valkey import EmbeddedValkey

DEADLINE_S = 0.5


class TestDeadline:
    async def test_a_frozen_redis_gets_a_503_at_the_deadline_then_answers_again(self) -> None:
        with EmbeddedValkey() as server:
            client = aioredis.Redis.from_url(server.url)

            async def read(_: Request) -> PlainTextResponse:
                return PlainTextResponse(str(await client.incr("reads")))

            http = HttpServer(
                [Route("/a/{token}", read)], host="127.0.0.1", port=0, deadline_s=DEADLINE_S
            )
            await http.start()
            pid = int((await client.info("server"))["process_id"])
            try:
                async with httpx.AsyncClient(base_url=http.url, timeout=30) as web:
                    before = await web.get("/a/first")
                    os.kill(pid, signal.SIGSTOP)
                    try:
                        started = time.monotonic()
                        frozen = await web.get("/a/secret-token")
                        waited = time.monotonic() - started
                    finally:
                        os.kill(pid, signal.SIGCONT)
                    after = await web.get("/a/third")
            finally:
                await http.stop()
                await client.aclose()
        print(f"frozen Redis: {frozen.status_code} after {waited:.2f} s")
        assert (before.status_code, before.text) == (200, "1")
        assert frozen.status_code == 503
        assert frozen.headers["retry-after"] == "5"
        assert DEADLINE_S <= waited < DEADLINE_S + 5
        assert after.status_code == 200


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True if the server closed the connection (EOF) within `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(1024):
                pass
    except TimeoutError:
        return False
    return True


class TestSlowClients:
    async def test_a_connection_that_begins_no_request_in_time_is_closed(self) -> None:
        """A silent connection and a slowloris one (a header line every 0.2 s, never the end)
        are closed within a few deadlines; a client that keeps asking is served throughout."""

        async def ok(_: Request) -> PlainTextResponse:
            return PlainTextResponse("ok")

        http = HttpServer(
            [Route("/a/{token}", ok)], host="127.0.0.1", port=0, deadline_s=DEADLINE_S
        )
        await http.start()
        try:
            silent, silent_writer = await asyncio.open_connection("127.0.0.1", http.port)
            slow, slow_writer = await asyncio.open_connection("127.0.0.1", http.port)
            slow_writer.write(b"GET /a/x HTTP/1.1\r\nHost: nudges\r\n")

            async def trickle() -> None:
                for n in range(100):
                    await asyncio.sleep(0.2)
                    slow_writer.write(b"X-%d: y\r\n" % n)

            trickling = asyncio.create_task(trickle())
            started = time.monotonic()
            async with httpx.AsyncClient(base_url=http.url, timeout=5) as web:
                asking = [(await web.get(f"/a/{n}")).status_code for n in range(3)]
                closed = await asyncio.gather(
                    _closed_within(silent, 10 * DEADLINE_S), _closed_within(slow, 10 * DEADLINE_S)
                )
                waited = time.monotonic() - started
                asking += [(await web.get(f"/a/{n}")).status_code for n in range(3)]
            trickling.cancel()
            slow_writer.close()
            silent_writer.close()
        finally:
            await http.stop()
        print(f"silent and slowloris connections closed: {closed} after {waited:.2f} s")
        assert list(closed) == [True, True]
        assert waited < 10 * DEADLINE_S
        assert asking == [200] * 6
