"""A payload far too large to hold an event is refused for its size without being parsed.

`read_payload` unwraps a refused payload FastStream's way (its framing, a legacy envelope),
which runs `json.loads` over all of it, twice: a 64 MB array of objects held the scheduler's
event loop 11 s and took 3.4 GB (16 MB: 2.3 s and 790 MB), for a payload its size alone had
refused. Measured here by the memory the reading allocates (tracemalloc), not by time.
"""

from __future__ import annotations

import tracemalloc

import pytest

from couples_nudge.scheduler.entries import read_payload
from couples_nudge_schemas import MAX_EVENT_BYTES, EventRejected

MEGABYTE = 2**20


@pytest.mark.parametrize(
    "payload",
    [b"[" + b"{}," * (16 * MEGABYTE // 3) + b"{}]", b'{"data": "' + b"x" * 16 * MEGABYTE + b'"}'],
    ids=["objects", "envelope"],
)
def test_a_16_mb_payload_is_refused_for_its_size_without_being_parsed(payload: bytes) -> None:
    tracemalloc.start()
    try:
        read = read_payload(payload)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    print(f"{len(payload):,} bytes read with a peak of {peak / MEGABYTE:.1f} MB allocated")
    assert isinstance(read.outcome, EventRejected)
    assert str(MAX_EVENT_BYTES) in read.outcome.reason
    assert peak < 4 * MEGABYTE
