"""Liveness and readiness routes shared by both services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

__all__ = ["health_routes"]


def health_routes(
    ready: Callable[[], Awaitable[dict[str, bool]]],
    notes: Callable[[], Awaitable[Mapping[str, object]]] | None = None,
) -> list[BaseRoute]:
    """/healthz: the process answers. /readyz: every check in `ready()` holds (else 503);
    `notes()` adds what operators should know but does not decide readiness (a recent loss
    of the Redis state)."""

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> JSONResponse:
        try:
            checks = await ready()
            extra = {} if notes is None else dict(await notes())
        except Exception as exc:  # an unreachable Redis is "not ready", not a crash
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
        ok = all(checks.values())
        body = {"status": "ok" if ok else "unavailable", **checks, **extra}
        return JSONResponse(body, 200 if ok else 503)

    return [Route("/healthz", healthz), Route("/readyz", readyz)]
