"""Each service's small HTTP side (health, metrics, and the notifier's pages), in-process.

A Starlette app served by uvicorn on the service's own event loop, started and stopped with
the service. Routes come from the modules that own them; this module only serves them.

Two kinds of routes, two listeners (`listeners`): public routes (the notifier's unsubscribe
pages and links people follow) on NUDGE_HTTP_PORT; operator routes (/healthz, /readyz,
/metrics, /status) on NUDGE_OPERATOR_PORT when it is set, so that only the public port needs
to face the internet. Without NUDGE_OPERATOR_PORT everything shares NUDGE_HTTP_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.routing import BaseRoute

__all__ = ["HttpServer", "listeners"]


class HttpServer:
    def __init__(self, routes: list[BaseRoute], *, host: str, port: int) -> None:
        self.app = Starlette(routes=routes)
        self._host = host
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))  # port 0: the OS picks a free one, known at once
        self.port: int = self._socket.getsockname()[1]
        # log_config=None: uvicorn keeps its hands off logging, so its lines go through our
        # structlog configuration (JSON, redacted) like everything else.
        config = uvicorn.Config(
            self.app, log_level="warning", access_log=False, lifespan="off", log_config=None
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
) -> tuple[HttpServer | None, HttpServer | None]:
    """(the listener on `http_port`, the one on `operator_port`), bound, not yet started.

    With `operator_port` the operator routes are served there only and `http_port` serves the
    public routes only; without it `http_port` serves both. An unset port has no listener.
    """
    if operator_port is None:
        both = operator + public
        return (None if http_port is None else HttpServer(both, host=host, port=http_port)), None
    main = None if http_port is None else HttpServer(public, host=host, port=http_port)
    return main, HttpServer(operator, host=host, port=operator_port)


async def serve(
    public: list[BaseRoute],
    operator: list[BaseRoute],
    *,
    host: str,
    http_port: int | None,
    operator_port: int | None,
) -> tuple[HttpServer | None, HttpServer | None]:
    """`listeners`, started: what a service serves (nothing when neither port is set)."""
    main, side = listeners(
        public, operator, host=host, http_port=http_port, operator_port=operator_port
    )
    for server in (main, side):
        if server is not None:
            await server.start()
    return main, side
