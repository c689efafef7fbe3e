"""Writing to streams and preparing consumer groups.

Wire format: every event entry has one field, `__data__`, holding the event as plain JSON.
FastStream subscribers parse that as the message body, and any language can produce or read
it with XADD/XRANGE. Rejected entries are plain fields for operators reading with redis-cli.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, cast

import redis.asyncio as aioredis
from faststream.redis.annotations import RedisStreamMessage
from pydantic import BaseModel
from redis.exceptions import ResponseError

from couples_nudge_schemas import DATA_FIELD, safe_reason

__all__ = [
    "DATA_FIELD",
    "couple_id_in",
    "encode",
    "ensure_group",
    "entries_as_read",
    "entry_id",
    "group_names",
    "publish",
    "read_entries",
    "read_events",
    "reject",
    "rejected_fields",
    "scrub",
    "xadd_command",
]

T = TypeVar("T")

RAW_LIMIT: Final = 8 * 1024
_COUPLE_ID: Final = re.compile(rb'"couple_id"\s*:\s*"([A-Za-z0-9_.-]{1,64})"')


def encode(event: BaseModel) -> bytes:
    """`event.model_dump_json().encode()`: the same bytes from the model's serializer, without
    the wrapper's keyword handling and the str it decodes to (~8k instructions an event, two
    per message sent; tests/unit/test_streams_encode.py). The serializer is read through the
    instance: the class's own attribute (no field is named so), without the model
    metaclass's `__getattr__` hook that every read on the class takes (~1.5k instructions)."""
    data: bytes = event.__pydantic_serializer__.to_json(event)
    return data


def xadd_command(
    stream: str, event: BaseModel | bytes, maxlen: int
) -> tuple[str | int | bytes, ...]:
    """The XADD of one event (or its JSON as encoded before), as arguments for
    AutoPipeline.call (trimmed like `publish`)."""
    data = event if isinstance(event, bytes) else encode(event)
    return ("XADD", stream, "MAXLEN", "~", maxlen, "*", DATA_FIELD, data)


async def entries_as_read(
    msg: Mapping[str, Any], original: Callable[[Mapping[str, Any]], Awaitable[Any]]
) -> Any:
    """A batch subscriber's parser (`parser=`) for handlers that read `raw_message` themselves.

    FastStream's batch parser JSON-decodes every payload and re-encodes them all as one body:
    wasted work (a tenth of the notifier's CPU), and one payload that is not UTF-8 fails the
    whole batch, good entries included. So the parser is given no entries, and the message
    keeps them as they were read; each handler validates its entries one by one.
    """
    parsed = await original({**msg, "data": []})
    parsed.raw_message = msg
    return parsed


async def publish(
    redis: aioredis.Redis, stream: str, events: Iterable[BaseModel], *, maxlen: int
) -> list[bytes]:
    """XADD every event in one pipeline round trip; returns the entry ids."""
    async with redis.pipeline(transaction=False) as pipe:
        for event in events:
            pipe.execute_command(*xadd_command(stream, event, maxlen))
        ids: list[bytes] = await pipe.execute()
    return ids


def couple_id_in(raw: bytes) -> bytes:
    """The couple id a raw payload names ("couple_id": "<id>", any JSON spacing), or b"".

    Read from the whole payload, not only what a rejected entry keeps of it (RAW_LIMIT): the
    kept part may name the partners while the id comes later. One scan from a literal, so
    linear in the payload's size."""
    found = _COUPLE_ID.search(raw)
    return found.group(1) if found else b""


def rejected_fields(
    *, source: str, entry_id: str, raw: bytes, reason: str, service: str
) -> dict[str, bytes | str]:
    """The fields of a `rejected` entry: the raw message cut at RAW_LIMIT bytes (any bytes),
    the reason made safe (at most REASON_LIMIT printable characters, see
    couples_nudge_schemas.safe_reason).

    The couple id, when one can be read from the raw bytes, is kept in its own field so that
    erasing the couple also removes its rejected entries (see `scrub`).
    """
    return {
        "couple_id": couple_id_in(raw),
        "source": source,
        "entry_id": entry_id,
        "service": service,
        "reason": safe_reason(reason),
        "raw": raw[:RAW_LIMIT],
        "truncated": "1" if len(raw) > RAW_LIMIT else "0",
        "at": datetime.now(UTC).isoformat(),
    }


async def reject(
    redis: aioredis.Redis,
    stream: str,
    *,
    source: str,
    entry_id: str,
    raw: bytes,
    reason: str,
    service: str,
    maxlen: int,
) -> None:
    """Keep a bad message (truncated) with the reason it was refused, for operators."""
    fields = rejected_fields(
        source=source, entry_id=entry_id, raw=raw, reason=reason, service=service
    )
    await redis.xadd(stream, cast("Any", fields), maxlen=maxlen, approximate=True)


async def ensure_group(redis: aioredis.Redis, stream: str, group: str) -> None:
    """Create the group at the start of the stream (so a backlog is read), if missing.

    Called on every start: a Redis that restarted without persistence loses its groups, and
    FastStream's subscriber stops for good on a missing group.
    """
    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


async def group_names(redis: aioredis.Redis, stream: str) -> set[str]:
    """Consumer groups of a stream (empty if the stream does not exist)."""
    try:
        groups = await redis.xinfo_groups(stream)
    except ResponseError:
        return set()
    return {g["name"].decode() if isinstance(g["name"], bytes) else g["name"] for g in groups}


def entry_id(msg: RedisStreamMessage) -> str:
    """The stream entry id of a consumed message (FastStream's message_id is random)."""
    ids = msg.raw_message.get("message_ids") or [b"?"]
    first = ids[0]
    return first.decode() if isinstance(first, bytes) else str(first)


async def read_entries(
    redis: aioredis.Redis, stream: str, *, start: str = "-", count: int | None = None
) -> list[tuple[str, dict[bytes, bytes]]]:
    """XRANGE with plain types: (entry id, fields) in stream order."""
    rows = cast(
        "list[tuple[bytes, dict[bytes, bytes]]]",
        await redis.xrange(stream, min=start, count=count),
    )
    return [(entry.decode(), fields) for entry, fields in rows]


async def read_events(
    redis: aioredis.Redis, stream: str, parse: Callable[[bytes], T], *, count: int | None = None
) -> list[T]:
    """Every event on a stream, parsed (e.g. with schemas.parse_outcome)."""
    return [
        parse(fields[DATA_FIELD.encode()])
        for _, fields in await read_entries(redis, stream, count=count)
    ]


async def scrub(redis: aioredis.Redis, stream: str, couple_id: str, batch: int = 1000) -> int:
    """Delete every entry of `stream` that belongs to a couple (for erasure); returns how many.

    An entry belongs to the couple when its `couple_id` field says so or its payload names it.
    Streams are capped, so this reads at most the cap, in batches.
    """
    named = re.compile(rb'"couple_id"\s*:\s*"' + re.escape(couple_id.encode()) + rb'"')
    removed, start = 0, "-"
    while True:
        entries = await read_entries(redis, stream, start=start, count=batch)
        if not entries:
            return removed
        doomed = [
            entry
            for entry, fields in entries
            if fields.get(b"couple_id") == couple_id.encode()
            or any(named.search(v) for v in fields.values())
        ]
        if doomed:
            removed += int(await redis.xdel(stream, *doomed))
        if len(entries) < batch:
            return removed
        start = "(" + entries[-1][0]
