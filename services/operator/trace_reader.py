"""Reads one couple's keys for its trace (services/operator/trace.py): read-only and bounded.

Two round trips: a pipeline over the couple's own keys (its hash, jar size, erasure
tombstone), the couple's shard's retry set and the newest entries of the outcomes and
dead-letter streams; then the timers (and legacy records) of the schedules the hash names.
The streams and the retry set are scanned from their newest entries, at most `scan` of each:
outcomes of a couple older than that are not found (the trace says how many were scanned).

The couple id is checked against the id pattern of the event contracts (SafeId) before any
key is built from it, so nothing typed in a search box can name another key.
"""

from __future__ import annotations

from typing import Any, Final, cast

import redis.asyncio as aioredis
from pydantic import TypeAdapter, ValidationError

from couples_nudge.common.couple_state import parse_couple
from couples_nudge.common.keys import Keys, couple_digest
from couples_nudge.common.streams import DATA_FIELD
from couples_nudge.operator.trace import TraceInput
from couples_nudge_schemas._base import SafeId

__all__ = ["DEFAULT_SCAN", "MAX_SCAN", "InvalidCoupleId", "read_trace", "valid_couple_id"]

DEFAULT_SCAN: Final = 5_000
MAX_SCAN: Final = 100_000
DEAD_SCAN: Final = 1_000
_SAFE_ID: Final = TypeAdapter(SafeId)


class InvalidCoupleId(ValueError):
    """Not a couple id; the message never repeats the input."""

    def __init__(self) -> None:
        super().__init__(
            "not a couple id: 1 to 64 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit"
        )


def valid_couple_id(text: str) -> str:
    """`text` if it is a couple id as the event contracts define it, else InvalidCoupleId."""
    try:
        return _SAFE_ID.validate_python(text, strict=True)
    except ValidationError:
        raise InvalidCoupleId from None


async def read_trace(
    redis: aioredis.Redis, keys: Keys, couple_id: str, *, scan: int = DEFAULT_SCAN
) -> TraceInput:
    """Everything the trace of `couple_id` shows, read in two round trips."""
    couple_id = valid_couple_id(couple_id)
    scan = max(1, min(scan, MAX_SCAN))
    shard = keys.shard_of(couple_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hgetall(keys.couple(couple_id))
        pipe.hlen(keys.jar(couple_id))
        pipe.zscore(keys.tombstones(shard), couple_digest(couple_id))
        pipe.xrevrange(keys.outcomes, count=scan)
        pipe.xrevrange(keys.dead, count=min(scan, DEAD_SCAN))
        pipe.zrange(keys.retries(shard), 0, scan - 1, withscores=True)
        couple, jar_size, erased, outcomes, dead, retries = await pipe.execute()
    couple = cast("dict[bytes, bytes]", couple)
    sids = _schedule_ids(couple)
    timers: dict[str, int] = {}
    legacy: dict[str, bytes] = {}
    if sids:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.zmscore(keys.timers(shard), sids)
            pipe.hmget(keys.schedules(shard), sids)
            scores, records = await pipe.execute()
        timers = {sid: int(score) for sid, score in zip(sids, scores, strict=True) if score}
        legacy = {sid: raw for sid, raw in zip(sids, records, strict=True) if raw is not None}
    field = DATA_FIELD.encode()
    return TraceInput(
        couple_id=couple_id,
        couple=couple,
        legacy_records=legacy,
        timers=timers,
        erased_ms=None if erased is None else int(erased),
        jar_size=int(jar_size),
        outcomes=[(_text(entry), fields.get(field, b"")) for entry, fields in outcomes],
        retries=[(member, int(score)) for member, score in retries],
        dead=[(_text(entry), fields) for entry, fields in dead],
    )


def _schedule_ids(couple: dict[bytes, bytes]) -> list[str]:
    if not couple:
        return []
    sids = parse_couple(couple).fields.get("sids", "")
    return [sid for sid in sids.split(",") if sid]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
