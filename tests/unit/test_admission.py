"""Places: NUDGE_MAX_IN_FLIGHT taken without a coroutine while free, first come first served."""

from __future__ import annotations

import asyncio

import pytest

from couples_nudge.notifier.admission import Places


class TestPlaces:
    def test_free_places_are_taken_at_once_and_given_back(self) -> None:
        """take_now takes while places are free, and fails once none is."""
        places = Places(2)
        assert places.take_now()
        assert places.take_now()
        assert not places.take_now()
        places.give()
        assert places.free == 1

    async def test_a_waiter_is_served_first_and_never_overtaken(self) -> None:
        """A place given back goes to the first waiter; take_now fails while anyone waits."""
        places = Places(1)
        assert places.take_now()
        order: list[str] = []

        async def wait(name: str) -> None:
            await places.take()
            order.append(name)

        first, second = asyncio.create_task(wait("a")), asyncio.create_task(wait("b"))
        await asyncio.sleep(0)
        places.give()
        assert not places.take_now()  # "a" holds it, "b" waits
        await first
        places.give()
        await second
        assert order == ["a", "b"]
        assert places.free == 0

    async def test_a_cancelled_waiter_loses_no_place(self) -> None:
        """Cancelled while waiting, or just after it was handed a place: the place stays."""
        places = Places(1)
        assert places.take_now()
        waiting = asyncio.create_task(places.take())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        handed = asyncio.create_task(places.take())
        await asyncio.sleep(0)
        places.give()  # handed to the waiter, which is cancelled before it runs
        handed.cancel()
        with pytest.raises(asyncio.CancelledError):
            await handed
        assert places.free == 1
        assert places.take_now()
