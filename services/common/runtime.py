"""Small factories every service needs at start-up, built from its settings."""

from __future__ import annotations

import os
import socket

import redis.asyncio as aioredis

from services.common.clock import Clock, ScaledClock, SystemClock
from services.common.settings import CommonSettings

__all__ = ["clock_from", "consumer_name", "redis_client"]


def consumer_name(settings: CommonSettings, role: str) -> str:
    """Unique per process: two replicas must never share a consumer name in a group."""
    return settings.consumer_name or f"{role}-{socket.gethostname()}-{os.getpid()}"


def redis_client(settings: CommonSettings) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        settings.redis_url.get_secret_value(),
        health_check_interval=30,
        socket_keepalive=True,
        retry_on_timeout=True,
    )


def clock_from(settings: CommonSettings) -> Clock:
    if settings.clock_start is not None or settings.clock_speed != 1.0:
        start = settings.clock_start or SystemClock().now()
        return ScaledClock(start, settings.clock_speed)
    return SystemClock()
