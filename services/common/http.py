"""Each service's small HTTP side (health, metrics, and the notifier's pages), in-process.

A Starlette app served by uvicorn on the service's own event loop, started and stopped with
the service. Routes come from the modules that own them; this module only serves them.

Two kinds of routes, two listeners (`listeners`): public routes (the notifier's unsubscribe
pages and links people follow) on NUDGE_HTTP_PORT; operator routes (/healthz, /readyz,
/metrics, /status) on NUDGE_OPERATOR_PORT when it is set, so that only the public port needs
to face the internet. Without NUDGE_OPERATOR_PORT everything shares NUDGE_HTTP_PORT.

Time is bounded twice: a request has the deadline to be answered (`_Deadline`), and a
connection has the deadline to begin each request (`_prompt_protocol`): a client that opens a
connection and sends nothing, or its headers a line at a time (slowloris), is cut off, where
uvicorn alone would keep its socket open for as long as the client liked.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Final

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["DEADLINE_S", "HttpServer", "listeners"]

log = structlog.get_logger()
# Longest a request may take. Every route answers in milliseconds while Redis answers; a
# Redis that stopped answering (frozen, a partition: the client has no socket timeout, as
# blocking stream reads must not have one) would otherwise hold each request, its
# connection and coroutine, for as long as the freeze lasts.
DEADLINE_S: Final = 10.0
_LATE: Final = b"The service is not answering in time; try again in a moment.\n"


class _Deadline:
    """ASGI middleware: a request not answered within `seconds` is cancelled and gets 503
    (Retry-After: 5), or, if its answer had begun, its connection is closed."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            async with asyncio.timeout(self.seconds):
                await self.app(scope, receive, sending)
        except TimeoutError:
            # The path's first part only ("a", "webhooks", "status"): the rest can be a token.
            section = str(scope.get("path", "/")).split("/", 2)[1][:32]
            log.warning("http_request_late", section=section, seconds=self.seconds)
            if started:
                raise
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [
                        (b"content-type", b"text/plain; charset=utf-8"),
                        (b"retry-after", b"5"),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": _LATE})


def _prompt_protocol(start_s: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection on which no request begins within
    `start_s` of its opening or of the previous check (an answered one left idle, headers
    trickling in). A request still being answered is the deadline's (`_Deadline`)."""

    class Prompt(H11Protocol):
        _watch: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._check_after(None)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._watch is not None:
                self._watch.cancel()
            super().connection_lost(exc)

        def _check_after(self, seen: object) -> None:
            self._watch = self.loop.call_later(start_s, self._check, seen)

        def _check(self, seen: object) -> None:
            cycle = self.cycle  # the request begun last (None: none yet)
            if cycle is not None and (cycle is not seen or not cycle.response_complete):
                self._check_after(cycle)  # a new request began, or one is being answered
            elif not self.transport.is_closing():
                self.transport.close()

    return Prompt


class HttpServer:
    def __init__(
        self, routes: list[BaseRoute], *, host: str, port: int, deadline_s: float = DEADLINE_S
    ) -> None:
        self.app = Starlette(routes=routes)
        # No "/a/<token>/" -> "/a/<token>" redirect: its Location would carry the token to
        # whatever host the request's Host header names, cacheable.
        self.app.router.redirect_slashes = False
        self.app.add_middleware(_Deadline, seconds=deadline_s)
        self._host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))  # port 0: the OS picks a free one, known at once
        self.port: int = self._socket.getsockname()[1]
        # log_config=None: uvicorn keeps its hands off logging, so its lines go through our
        # structlog configuration (JSON, redacted) like everything else.
        config = uvicorn.Config(
            self.app,
            http=_prompt_protocol(deadline_s),
            log_level="warning",
            access_log=False,
            lifespan="off",
            log_config=None,
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        while not self._server.started:
            if self._task.done():
                await self._task  # re-raise the start-up error
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._socket.close()


def listeners(
    public: list[BaseRoute],
    operator: list[BaseRoute],
    *,
    host: str,
    http_port: int | None,
    operator_port: int | None,
    deadline_s: float = DEADLINE_S,
) -> tuple[HttpServer | None, HttpServer | None]:
    """(the listener on `http_port`, the one on `operator_port`), bound, not yet started.

    With `operator_port` the operator routes are served there only and `http_port` serves the
    public routes only; without it `http_port` serves both. An unset port has no listener.
    """

    def server(routes: list[BaseRoute], port: int) -> HttpServer:
        return HttpServer(routes, host=host, port=port, deadline_s=deadline_s)

    if operator_port is None:
        return (None if http_port is None else server(operator + public, http_port)), None
    main = None if http_port is None else server(public, http_port)
    return main, server(operator, operator_port)


async def serve(
    public: list[BaseRoute],
    operator: list[BaseRoute],
    *,
    host: str,
    http_port: int | None,
    operator_port: int | None,
    deadline_s: float = DEADLINE_S,
) -> tuple[HttpServer | None, HttpServer | None]:
    """`listeners`, started: what a service serves (nothing when neither port is set)."""
    main, side = listeners(
        public,
        operator,
        host=host,
        http_port=http_port,
        operator_port=operator_port,
        deadline_s=deadline_s,
    )
    for server in (main, side):
        if server is not None:
            await server.start()
    return main, side
