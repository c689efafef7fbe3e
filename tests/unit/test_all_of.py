"""Specification of delivery.all_of: asyncio.gather(*coros) for a nudge's sends."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from couples_nudge.notifier.delivery import all_of


async def _value(value: int, steps: int = 0) -> int:
    for _ in range(steps):
        await asyncio.sleep(0)
    return value


async def _fail(message: str, steps: int = 0) -> int:
    for _ in range(steps):
        await asyncio.sleep(0)
    raise ValueError(message)


class TestAllOf:
    @pytest.mark.parametrize("count", [0, 1, 2, 5])
    async def test_results_in_order_as_gather(self, count: int) -> None:
        """The results come back in the coroutines' order, whatever order they finish in."""
        steps = [(count - i) % 3 for i in range(count)]
        mine = await all_of([_value(i, s) for i, s in enumerate(steps)])
        theirs = await asyncio.gather(*(_value(i, s) for i, s in enumerate(steps)))
        assert mine == theirs == list(range(count))

    async def test_coroutines_run_concurrently(self) -> None:
        """Every coroutine is started before any of them finishes (as gather's tasks)."""
        started: list[int] = []
        gate = asyncio.Event()

        async def send(i: int) -> int:
            started.append(i)
            await gate.wait()
            return i

        waiting = asyncio.ensure_future(all_of([send(0), send(1), send(2)]))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert started == [0, 1, 2]
        gate.set()
        assert await waiting == [0, 1, 2]

    async def test_an_error_is_raised_and_the_others_are_retrieved(self) -> None:
        """An error reaches the caller; the other coroutines' errors are retrieved (no
        "exception was never retrieved" from the loop), finished or not."""
        reported: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _, context: reported.append(context))
        try:
            with pytest.raises(ValueError, match="first"):
                await all_of([_fail("first", 1), _fail("done before", 0), _fail("later", 3)])
            for _ in range(5):
                await asyncio.sleep(0)
            gc.collect()
            await asyncio.sleep(0)
        finally:
            loop.set_exception_handler(None)
        assert reported == []

    async def test_one_error_among_results(self) -> None:
        """The same error as gather when one coroutine fails."""
        with pytest.raises(ValueError, match="bad"):
            await asyncio.gather(_value(1), _fail("bad", 1))
        with pytest.raises(ValueError, match="bad"):
            await all_of([_value(1), _fail("bad", 1)])

    @pytest.mark.parametrize("count", [1, 3])
    async def test_cancelling_the_caller_cancels_every_coroutine(self, count: int) -> None:
        """Cancelled, the caller raises CancelledError and every coroutine is cancelled."""
        cancelled: list[int] = []

        async def send(i: int) -> int:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(i)
                raise
            return i

        waiting = asyncio.ensure_future(all_of([send(i) for i in range(count)]))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await asyncio.sleep(0)
        assert sorted(cancelled) == list(range(count))
