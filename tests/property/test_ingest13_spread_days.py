"""`rules.week_spread` keys its cache of a shuffle's days by `shuffle // times!` (h/ingest13):
every shuffle of one such key gives the same days, and the spread is what it computed before."""

from __future__ import annotations

import hashlib
import struct
from math import factorial

from hypothesis import given
from hypothesis import strategies as st

from couples_nudge.scheduler import rules
from couples_nudge.scheduler.rules import _SAME_DAYS, _spread_days, week_spread

_DRAWS = struct.Struct("<13I")


def test_same_days_are_the_factorials() -> None:
    assert tuple(factorial(t) for t in range(8)) == _SAME_DAYS


def test_shuffles_of_one_key_give_the_same_days() -> None:
    """Exhaustive: all 5,040 shuffles, every count of days."""
    for times in range(1, 8):
        for shuffle in range(5040):
            base = shuffle // factorial(times) * factorial(times)
            assert _spread_days(shuffle, times) == _spread_days(base, times)


def _plain_spread(text: bytes, times: int, start: int, width: int) -> list[int]:
    """week_spread as it was before its cache: the shuffle drawn, its days, their minutes."""
    digest = hashlib.blake2b(digest_size=64, person=b"nudge-spread")
    digest.update(text)
    draws = _DRAWS.unpack_from(digest.digest())
    days = list(range(7))
    for i in range(6, 0, -1):
        j = draws[6 - i] % (i + 1)
        days[i], days[j] = days[j], days[i]
    return [1440 * day + start + draws[6 + day] % width for day in sorted(days[:times])]


@given(
    st.binary(max_size=40),
    st.integers(1, 7),
    st.integers(0, 1439),
    st.integers(1, 1440),
    st.booleans(),
)
def test_week_spread_is_the_plain_spread(
    text: bytes, times: int, start: int, width: int, cold: bool
) -> None:
    if cold:
        rules._DAYS.clear()
    assert week_spread(text, times, start, width) == _plain_spread(text, times, start, width)


def test_week_spread_on_many_seeds_through_one_cache() -> None:
    """Enough seeds that every key is hit again by other shuffles (a key too coarse fails)."""
    rules._DAYS.clear()
    for times in range(1, 8):
        for i in range(3000):
            text = f"c{i:07d}/a/p{times}\x002026-W49".encode()
            assert week_spread(text, times, 540, 720) == _plain_spread(text, times, 540, 720)
