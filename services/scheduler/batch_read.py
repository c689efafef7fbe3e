"""A batch of preferences entries read (validated) chunk by chunk, as its events are applied.

`SchedulerService` reads a batch of up to 500 entries at a time. Validating all of them first
and then applying them kept Redis idle during the validation (a third of an event's CPU) and
the scheduler idle while Redis ran the batch's last chunk: ~15 us of an event's ~100 us went
waiting. Read this way, `PreferenceIngest.apply_chunks` asks for the next chunk only once the
one before is on the wire, so Redis runs a chunk while the next is validated and planned.
Chunks follow `ingest.chunk_sizes`, shrinking towards the batch's end.

Whole chunks are read at a time, not one entry between two plans: the same instructions ran
~10 % slower interleaved entry by entry (validation's and planning's code evicting each other;
measured in the drain of `benchmarks/burst.py`, not with callgrind, which counts no cache).

Reading never raises (`entries.read_entry`); what has been read so far is kept in stream
order (`entries`, and `events` with their entries' indexes), so that a batch stopped, or one
that failed, is handled from what was read.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Generic, NamedTuple, TypeVar

from couples_nudge.scheduler.entries import Read
from couples_nudge.scheduler.ingest import chunk_sizes
from couples_nudge_schemas import EventRejected, PreferenceEvent

__all__ = ["BatchRead", "ReadEntry", "ReadEvent"]

# Longest stretch of reading without offering the Reclaimer a refresh of the batch's entries:
# validating on a starved CPU (a pod held to a small quota) can outlast its idle time.
READ_SLICE_S: Final = 0.05
_new: Final = tuple.__new__  # see BatchRead._read_chunks
_Stored = TypeVar("_Stored")  # an entry as its reader takes it: fields, or a stored payload


class ReadEntry(NamedTuple):
    """An entry as read: its id, its payload, and its event or why it has none."""

    entry_id: str
    payload: bytes
    read: PreferenceEvent | EventRejected


class ReadEvent(NamedTuple):
    """An event read, with its entry's position in the batch."""

    position: int  # its entry's index in the batch
    event: PreferenceEvent


@dataclass(slots=True)
class BatchRead(Generic[_Stored]):
    """The entries `ids` / `stored` of one batch, read with `read` as `chunks` is iterated.

    `keep_held` is awaited at least every `READ_SLICE_S` of reading (None: never)."""

    ids: Sequence[str]
    stored: Sequence[_Stored]
    read: Callable[[_Stored], Read]
    keep_held: Callable[[], Awaitable[None]] | None = None
    entries: list[ReadEntry] = field(default_factory=list)  # read so far, in stream order
    events: list[ReadEvent] = field(default_factory=list)  # the events among them
    _chunks: AsyncIterator[list[PreferenceEvent]] | None = None

    def chunks(self) -> AsyncIterator[list[PreferenceEvent]]:
        """The batch's events, a chunk at a time (`chunk_sizes` of the entries; a chunk holds
        fewer events where entries were refused); one iterator per batch, resumed by
        `read_rest`."""
        if self._chunks is None:
            self._chunks = self._read_chunks()
        return self._chunks

    async def read_rest(self) -> None:
        """Read whatever `chunks` has not yet (a batch that failed is applied entry by entry)."""
        async for _chunk in self.chunks():
            pass

    async def _read_chunks(self) -> AsyncIterator[list[PreferenceEvent]]:
        # Per entry: locals, and the NamedTuples made by tuple.__new__ (their generated
        # __new__ is Python, ~1.5k instructions a call; they define none of their own).
        ids, stored, read, keep_held = self.ids, self.stored, self.read, self.keep_held
        add_entry, add_event = self.entries.append, self.events.append
        monotonic = time.monotonic
        since = monotonic()
        start = 0
        for size in chunk_sizes(len(ids)):
            chunk: list[PreferenceEvent] = []
            for index in range(start, start + size):
                if keep_held is not None and monotonic() - since >= READ_SLICE_S:
                    await keep_held()
                    since = monotonic()
                payload, event = read(stored[index])
                add_entry(_new(ReadEntry, (ids[index], payload, event)))
                if not isinstance(event, EventRejected):
                    add_event(_new(ReadEvent, (index, event)))
                    chunk.append(event)
            start += size
            yield chunk
