"""Send records and sightings an older release wrote without an expiry are given one.

RECORD_SENT (state.py) gives a couple's sent and seen sets an expiry at every write: the
retention (the repeat window) and a day. Releases before it (daad069, the first development
round, among them) wrote them without one, and nothing but a send gives one: after an upgrade,
the sets of a couple sent nothing more (paused for good, unsubscribed, its nudges removed)
were kept for ever (measured on daad069's state: the 18 sets of 10 couples it paused still
had no expiry after 40 simulated hours of this release).

So the notifier sweeps them in the background from its start: every `<prefix>:sent:*` and
`<prefix>:seen:*` zset without an expiry gets the one RECORD_SENT gives, counted from now
(`PEXPIRE ... NX`, Redis 7: a set that has one keeps it). A sweep that gave any is repeated a day
later, since an older notifier still running during a rolling update writes more; the first
sweep that finds none marks the keyspace swept (`Keys.records_swept`), and no later start
sweeps again (a new installation's first sweep finds none). SCAN walks the whole keyspace, on
a cluster every primary, 1,000 keys a call; notifiers starting together sweep together,
harmlessly.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Final

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError

from couples_nudge.common.keys import Keys

__all__ = ["RecordExpiry"]

log = structlog.get_logger()

_DAY: Final = timedelta(days=1)
_COUNT: Final = 1_000


class RecordExpiry:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        retention: timedelta,
        repeat_window: timedelta,
        again_after_s: float = _DAY.total_seconds(),
    ) -> None:
        self.redis = redis
        self.keys = keys
        # What RECORD_SENT gives each set: its retention and a day.
        self._keep_ms = {
            "sent": int((retention + _DAY).total_seconds() * 1000),
            "seen": int((repeat_window + _DAY).total_seconds() * 1000),
        }
        self._again_after_s = again_after_s

    async def sweep(self) -> int:
        """Give every sent and seen set without an expiry one; how many were given."""
        given = 0
        for name, keep_ms in self._keep_ms.items():
            batch: list[bytes] = []
            match = f"{self.keys.prefix}:{name}:*"
            async for key in self.redis.scan_iter(match=match, count=_COUNT, _type="zset"):
                batch.append(key)
                if len(batch) >= _COUNT:
                    given += await self._give(batch, keep_ms)
                    batch = []
            given += await self._give(batch, keep_ms)
        return given

    async def _give(self, batch: list[bytes], keep_ms: int) -> int:
        """One round trip a batch (a cluster's pipeline: one a node)."""
        if not batch:
            return 0
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.pexpire(key, keep_ms, nx=True)
            given: list[bool] = await pipe.execute()
        return sum(given)

    async def run(self, stop: asyncio.Event) -> None:
        """Sweep until a sweep finds nothing to give (the module docstring)."""
        while not stop.is_set():
            try:
                if await self.redis.exists(self.keys.records_swept):
                    return
                given = await self.sweep()
                if given == 0:
                    await self.redis.set(self.keys.records_swept, "1")
                    return
                log.info("record_expiry_given", sets=given)
            except RedisError as exc:  # tried again later; nothing depends on it meanwhile
                log.warning("record_expiry_redis_error", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._again_after_s)
