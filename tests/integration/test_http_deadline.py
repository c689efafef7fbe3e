"""A Redis that stops answering holds no HTTP request (NUDGE_HTTP_DEADLINE_SECONDS).

The services' client has no socket timeout (blocking stream reads must not have one), so a
frozen Redis (SIGSTOP here: the server keeps its connections and answers nothing) held every
request that read it, a confirmation page, an answer, /readyz, for as long as the freeze
lasted. Each now gets 503 with Retry-After at the deadline, and the next request after the
server wakes is answered as usual.
"""

from __future__ import annotations

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
