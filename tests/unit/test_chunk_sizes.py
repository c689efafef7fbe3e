"""How a batch is cut into chunks (ingest.chunk_sizes): every event once, in order, the tail
shrinking so that each chunk's round trip is covered by reading and planning the next."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from couples_nudge.scheduler.ingest import _CHUNK, _TAIL_MIN, chunk_sizes


@given(st.integers(min_value=0, max_value=5_000))
def test_the_chunks_cover_the_batch_within_bounds(total: int) -> None:
    sizes = list(chunk_sizes(total))
    assert sum(sizes) == total
    assert all(0 < size <= _CHUNK for size in sizes)
    for i, size in enumerate(sizes):
        after = sum(sizes[i + 1 :])
        assert size >= min(_TAIL_MIN, size + after)  # only the last may be smaller
        assert 2 * size >= after or size == _CHUNK  # half of what follows, or full


@given(st.integers(min_value=1, max_value=5_000))
def test_the_last_chunk_is_small_and_the_extra_round_trips_few(total: int) -> None:
    sizes = list(chunk_sizes(total))
    assert sizes[-1] <= _TAIL_MIN
    assert len(sizes) <= -(-total // _CHUNK) + 6  # a full batch of 500: 10, not 5


def test_a_full_batch() -> None:
    assert list(chunk_sizes(500)) == [100, 100, 100, 67, 45, 30, 20, 16, 16, 6]
