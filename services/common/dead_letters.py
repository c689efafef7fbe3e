"""The dead-letter stream: messages that exhausted their retries or deliveries, kept for people.

Each entry keeps where it came from, why it died and the original `__data__`, so an operator
can read the reason and replay it onto its source stream (`nudge dlq replay`).
Entry fields: source, entry_id, reason, attempts, at, couple_id (when known), __data__.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import redis.asyncio as aioredis

from couples_nudge.common.streams import DATA_FIELD, couple_id_in, read_entries
from couples_nudge_schemas import MAX_EVENT_BYTES

__all__ = ["DeadLetter", "bury", "list_dead", "purge", "put_back", "replay", "replay_letters"]

_EVENT_TYPE: Final = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+){1,4}")


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: str
    source: str
    entry_id: str
    reason: str
    attempts: int
    at: str
    couple_id: str
    data: bytes

    @property
    def event_type(self) -> str:
        """The payload's `type`, read by parsing its JSON (not validated), else "?".

        Shown only when it looks like an event type: a dead letter holds unchecked input,
        and a name or an address in its `type` must not reach an operator's screen.
        """
        if len(self.data) > MAX_EVENT_BYTES:
            return "?"
        try:
            event = json.loads(self.data)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, nested too deep
            return "?"
        kind = event.get("type") if isinstance(event, dict) else None
        return kind if isinstance(kind, str) and _EVENT_TYPE.fullmatch(kind) else "?"


async def bury(
    redis: aioredis.Redis,
    dead_stream: str,
    *,
    source: str,
    entry_id: str,
    reason: str,
    attempts: int,
    data: bytes,
    couple_id: str = "",
    maxlen: int,
) -> str:
    """Keep a message that could not be handled on the dead stream; the letter's id."""
    letter = await redis.xadd(
        dead_stream,
        {
            "source": source,
            "entry_id": entry_id,
            "reason": reason[:2000],
            "attempts": attempts,
            "at": datetime.now(UTC).isoformat(),
            # The couple's own field, so that its erasure finds the letter (streams.scrub).
            "couple_id": couple_id or couple_id_in(data),
            DATA_FIELD: data,
        },
        maxlen=maxlen,
        approximate=True,
    )
    return letter.decode() if isinstance(letter, bytes) else str(letter)


def _letter(entry: str, fields: dict[bytes, bytes]) -> DeadLetter:
    def text(name: str) -> str:
        return fields.get(name.encode(), b"").decode(errors="replace")

    return DeadLetter(
        id=entry,
        source=text("source"),
        entry_id=text("entry_id"),
        reason=text("reason"),
        attempts=int(text("attempts") or 0),
        at=text("at"),
        couple_id=text("couple_id"),
        data=fields.get(DATA_FIELD.encode(), b""),
    )


async def list_dead(redis: aioredis.Redis, dead_stream: str, count: int = 100) -> list[DeadLetter]:
    return [_letter(e, f) for e, f in await read_entries(redis, dead_stream, count=count)]


async def replay(redis: aioredis.Redis, dead_stream: str, ids: list[str] | None = None) -> int:
    """How many dead letters `replay_letters` put back."""
    return len(await replay_letters(redis, dead_stream, ids))


async def replay_letters(
    redis: aioredis.Redis, dead_stream: str, ids: list[str] | None = None
) -> list[str]:
    """Put dead letters back on their source streams (all of them if `ids` is None); the ids
    of those put back (an id that names no dead letter is not among them).

    A letter leaves the dead stream only once its copy is on its source stream (`put_back`).
    """
    letters = await list_dead(redis, dead_stream, count=100_000)
    chosen = [d for d in letters if ids is None or d.id in ids]
    await put_back(redis, dead_stream, [(d.id, d.source, d.data) for d in chosen])
    return [letter.id for letter in chosen]


async def put_back(
    redis: aioredis.Redis, stream: str, entries: Sequence[tuple[str, str, bytes]]
) -> None:
    """Copy each (entry id, source stream, payload) of `stream` onto its source stream as
    `__data__`, in order, then delete from `stream` the entries whose copy Redis took.

    The copies are written first (one round trip), then the entries Redis took are deleted; if
    Redis refused any copy, its error is raised after that and the entry stays. (In one
    pipeline, under `maxmemory` Redis refused the XADD and still ran the XDEL, which needs no
    memory: the entry was lost.)
    """
    if not entries:
        return
    async with redis.pipeline(transaction=False) as pipe:
        for _, source, data in entries:
            pipe.xadd(source, {DATA_FIELD: data})
        copies: list[Any] = await pipe.execute(raise_on_error=False)
    copied = [
        entry for (entry, _, _), copy in zip(entries, copies, strict=True)
        if not isinstance(copy, Exception)
    ]  # fmt: skip
    if copied:
        await redis.xdel(stream, *copied)
    refused = next((copy for copy in copies if isinstance(copy, Exception)), None)
    if refused is not None:
        raise refused


async def purge(redis: aioredis.Redis, dead_stream: str) -> int:
    length = int(await redis.xlen(dead_stream))
    await redis.delete(dead_stream)
    return length
