"""When Redis says "not now": which errors mean it refuses writes or cannot be reached, and
how long to wait before asking again.

Such an error is not the message's fault: handling it again at once, or leaving it to the
reclaimer (which counts a delivery per try and dead-letters after a few), would burn its
attempts while Redis is out of memory (`maxmemory` + `noeviction`: OOM), read-only after a
failover (READONLY), short of replicas (NOREPLICAS), failing to persist (MISCONF), loading
(LOADING), or unreachable. The caller waits (`WAIT`, capped exponential backoff with jitter,
redis-py's own) and tries again, until it is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from redis.backoff import EqualJitterBackoff
from redis.exceptions import (
    BusyLoadingError,
    ClusterDownError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["WAIT", "not_now", "pause"]

# 0.1 s doubling to at most 5 s; each wait is between half and all of that.
WAIT: Final = EqualJitterBackoff(cap=5.0, base=0.1)

_NOT_NOW: Final = (
    OutOfMemoryError,
    ReadOnlyError,
    BusyLoadingError,
    TryAgainError,
    ClusterDownError,
    MasterDownError,
    RedisConnectionError,
    RedisTimeoutError,
)
# Refusals redis-py has no class for; scripts report them with the same prefixes.
_PREFIXES: Final = ("NOREPLICAS", "MISCONF", "OOM", "READONLY")


def not_now(exc: BaseException) -> bool:
    """Redis refused or could not take the command for now: not the command's fault."""
    if isinstance(exc, _NOT_NOW):
        return True
    return isinstance(exc, ResponseError) and str(exc).startswith(_PREFIXES)


async def pause(stop: asyncio.Event, failures: int) -> bool:
    """Wait before try number `failures + 1`; True when `stop` was set (stop trying)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=WAIT.compute(failures))
    return stop.is_set()
