"""Rejected preference events put back on the preferences stream once this version reads them.

During a rolling upgrade an older scheduler refuses the events only a newer schema knows (a
new field, cadence or event type, such as those the newer notifier's action links and relay
webhooks publish): it copies each to the rejected stream, acknowledges it and deletes it from
the preferences stream, so the newer schedulers never see it. `requeue_rejected` puts back,
oldest first, every rejected entry of the preferences stream that this version reads as a
valid event (`entries.read_entry`, as the scheduler reads an entry), each deleted from the
rejected stream once its copy is on the preferences stream (`dead_letters.put_back`). What
this version refuses too stays, and so does an entry the rejected stream keeps cut at
`RAW_LIMIT` (its event is not all there: its publisher must send it again).

Applying an event again changes nothing twice (revisions, last-writer-wins consent, erasure
tombstones: docs/reliability.md), so an event that was applied after all, or is older than
what the couple has since, is harmless to put back.
"""

from __future__ import annotations

from typing import NamedTuple

import redis.asyncio as aioredis

from couples_nudge.common.dead_letters import put_back
from couples_nudge.common.keys import Keys
from couples_nudge.common.streams import DATA_FIELD, read_entries
from couples_nudge.scheduler.entries import read_entry
from couples_nudge_schemas import EventRejected

__all__ = ["Requeued", "requeue_rejected"]

_DATA = DATA_FIELD.encode()


class Requeued(NamedTuple):
    requeued: int  # put back on the preferences stream
    kept: int  # rejected preference events this version refuses too, or kept cut


async def requeue_rejected(redis: aioredis.Redis, keys: Keys) -> Requeued:
    """Put back the rejected preference events this version reads (the module docstring)."""
    source = keys.preferences.encode()
    back: list[tuple[str, str, bytes]] = []
    kept = 0
    for entry, fields in await read_entries(redis, keys.rejected, count=100_000):
        if fields.get(b"source") != source:
            continue
        raw = fields.get(b"raw", b"")
        read = read_entry({_DATA: raw})
        if fields.get(b"truncated") == b"1" or isinstance(read.outcome, EventRejected):
            kept += 1
        else:
            back.append((entry, keys.preferences, read.payload))
    await put_back(redis, keys.rejected, back)
    return Requeued(len(back), kept)
