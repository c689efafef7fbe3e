"""The replay cache: a request (or a relay's event) is acted on once. Redis edge.

`first(source, key, ttl)` is SET NX PX on `<prefix>:replay:<source>:<digest of key>`: True the
first time, False for a replay while the key lives. Keys are digests of the relays' ids
(tokens, signatures, message ids), never of personal data; they expire on their own. When
acting on a request fails after it was marked (Redis refused the publish), `forget` unmarks it
so the relay's retry is not mistaken for a replay.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import redis.asyncio as aioredis

from couples_nudge.common.keys import Keys

__all__ = ["ReplayCache"]


class ReplayCache:
    def __init__(self, redis: aioredis.Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def _key(self, source: str, key: str) -> str:
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return self.keys.replay(source, digest)

    async def first(self, source: str, key: str, ttl: timedelta) -> bool:
        ms = max(1000, int(ttl.total_seconds() * 1000))
        return bool(await self.redis.set(self._key(source, key), b"1", nx=True, px=ms))

    async def forget(self, source: str, key: str) -> None:
        await self.redis.delete(self._key(source, key))
