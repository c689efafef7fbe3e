"""Keys a test left behind in the shared server, found (and removed) after its clean-up.

A test's keys live under its `key_prefix` (`<prefix>:...`, or a service prefix that starts
with it, such as `<prefix>-batch:...`); the `redis` fixture removes `<prefix>:*`. The guard
in tests/conftest.py scans `<prefix>*` (no colon) afterwards, so a key named
`f"{key_prefix}k{i}"` is caught too.
"""

from __future__ import annotations

import redis as sync_redis

__all__ = ["remove_leftovers"]


def remove_leftovers(url: str, prefix: str, *, sample: int = 3) -> tuple[int, list[str]]:
    """Delete every key matching `<prefix>*`; return how many and a few of their names."""
    client = sync_redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        return len(keys), sorted(k.decode(errors="replace") for k in keys)[:sample]
    finally:
        client.close()


def dbsize(url: str) -> int:
    """Keys in the server's database named by `url`."""
    client = sync_redis.Redis.from_url(url)
    try:
        return int(client.dbsize())
    finally:
        client.close()
