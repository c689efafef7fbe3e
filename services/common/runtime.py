"""Small factories every service needs at start-up, built from its settings."""

from __future__ import annotations

import gc
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import redis.asyncio as aioredis
from faststream.redis import RedisBroker, RedisClusterBroker
from redis.asyncio.cluster import RedisCluster

from couples_nudge.common.clock import Clock, ScaledClock, SystemClock
from couples_nudge.common.cluster_keys import route_stream_reads
from couples_nudge.common.packing import hiredis_packing
from couples_nudge.common.settings import CommonSettings

__all__ = [
    "broker_for",
    "clock_from",
    "collections_held",
    "consumer_name",
    "redis_client",
    "settle_heap",
]


def consumer_name(settings: CommonSettings, role: str) -> str:
    """Unique per process: two replicas must never share a consumer name in a group."""
    return settings.consumer_name or f"{role}-{socket.gethostname()}-{os.getpid()}"


def redis_client(settings: CommonSettings) -> aioredis.Redis:
    """A client for one server, or for a Redis Cluster when NUDGE_REDIS_CLUSTER is set.

    The cluster client speaks the same commands, pipelines and scripts we use (every script
    touches keys of one shard's hash tag), so the rest of the code takes either; the cast
    states that shared surface, which redis-py's types do not express. The cluster client finds
    the keys of stream reads itself (cluster_keys.py).
    """
    url = settings.redis_url.get_secret_value()
    if settings.redis_cluster:
        cluster = RedisCluster.from_url(url, socket_keepalive=True)
        route_stream_reads(cluster)
        return cast("aioredis.Redis", cluster)
    client = aioredis.Redis.from_url(
        url, health_check_interval=30, socket_keepalive=True, retry_on_timeout=True
    )
    return hiredis_packing(client)


def broker_for(settings: CommonSettings) -> RedisBroker:
    """FastStream's broker for one server or (NUDGE_REDIS_CLUSTER) a cluster.

    On stop, FastStream waits up to its graceful timeout for the handlers running, then
    cancels them. Ours return promptly once their service is stopping, and the broker is the
    first thing a service stops, so its wait comes out of the shutdown budget: the graceful
    timeout is that budget (NUDGE_SHUTDOWN_TIMEOUT), an outer bound that is never reached
    unless a handler is stuck in a call.
    """
    url = settings.redis_url.get_secret_value()
    factory = _ClusterBroker if settings.redis_cluster else RedisBroker
    # FastStream logs some lines at INFO whatever log_level says; a child of the "faststream"
    # logger gets the level configure_logging gives it (WARNING unless debugging).
    return factory(
        url,
        logger=logging.getLogger("faststream.nudge"),
        log_level=logging.DEBUG,
        graceful_timeout=settings.shutdown_timeout.total_seconds(),
    )


class _ClusterBroker(RedisClusterBroker):
    """FastStream's cluster broker, whose client finds the keys of its XREADGROUP polls itself
    instead of asking the server before each one (cluster_keys.py)."""

    async def connect(self) -> Any:
        client = await super().connect()
        route_stream_reads(cast("RedisCluster", client))  # typed as the one-server broker's
        return client


def clock_from(settings: CommonSettings) -> Clock:
    if settings.clock_start is not None or settings.clock_speed != 1.0:
        start = settings.clock_start or SystemClock().now()
        return ScaledClock(start, settings.clock_speed, settings.clock_anchor)
    return SystemClock()


def settle_heap() -> None:
    """Put what start-up built out of the cyclic garbage collector's reach (`gc.freeze`).

    A service's heap after its imports and set-up (pydantic schemas, templates, the catalog:
    ~80,000 tracked objects) lives as long as the process, yet every full collection walks
    all of it again. In the burst benchmark that was ~30 us of each preference event's
    ~120 us of CPU; frozen, collections walk only what came later (~10 us). Called once per
    service process, before it starts consuming; garbage made before the call is collected
    first. Not for processes that start services over and over (tests): frozen objects are
    never freed.
    """
    gc.collect()
    gc.freeze()
    # The youngest generation is collected every 700 net allocations by default: a batch of
    # 500 preference events keeps ~10,000 objects alive until it is stored, and each of those
    # collections walked them again (~4 % of the instructions per event, measured with
    # callgrind). 20,000 lets a batch's objects die by reference counting first.
    gc.set_threshold(20_000, 10, 10)


class _Holds:
    """How many `collections_held` blocks are open, and whether collection was on before."""

    open = 0
    was_enabled = False


@contextmanager
def collections_held() -> Iterator[None]:
    """No cyclic garbage collection while a batch of events is in hand (nestable).

    The invariant it relies on: what a batch builds (the events' pydantic models, plans and
    arguments: ~50 tracked objects per realistic preferences.set, ~25,000 for a batch of 500)
    stays alive until the batch is stored and then dies by reference counting. Every
    collection in between walks all of it again and frees nothing: with the threshold of
    `settle_heap` that was ~10-20 us of a realistic event's ~100 us of CPU (gc.callbacks,
    `python -m benchmarks burst`). Cyclic garbage made meanwhile (a refused event's exception
    and its traceback) waits until the batch ends: bounded by the batch. Collection resumes
    as it was when the outermost block ends.
    """
    if _Holds.open == 0:
        _Holds.was_enabled = gc.isenabled()
        gc.disable()
    _Holds.open += 1
    try:
        yield
    finally:
        _Holds.open -= 1
        if _Holds.open == 0 and _Holds.was_enabled:
            gc.enable()
