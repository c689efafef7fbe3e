"""A nudge's sends run as asyncio.gather would run them, the first in the nudge's own task
(delivery._concurrently): results in order, every send concurrent, the first error raised
while the others go on to record their sends, a cancellation reaching them all."""

from __future__ import annotations

import asyncio

import pytest

from couples_nudge.notifier.delivery import _concurrently


async def _after(steps: int, value: str, log: list[str]) -> str:
    for _ in range(steps):
        await asyncio.sleep(0)
    log.append(value)
    return value


async def test_results_in_order_and_run_concurrently() -> None:
    log: list[str] = []
    done = await _concurrently([_after(3, "a", log), _after(1, "b", log), _after(2, "c", log)])
    assert done == ["a", "b", "c"]
    assert log == ["b", "c", "a"]  # "a" did not hold the others back


async def test_none_and_one_need_no_task() -> None:
    assert await _concurrently([]) == []
    before = len(asyncio.all_tasks())
    seen: list[int] = []

    async def one() -> str:
        seen.append(len(asyncio.all_tasks()))
        return "x"

    assert await _concurrently([one()]) == ["x"]
    assert seen == [before]


async def test_first_error_raises_while_the_others_finish() -> None:
    log: list[str] = []

    async def fails() -> str:
        await asyncio.sleep(0)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await _concurrently([fails(), _after(5, "recorded", log)])
    assert log == []
    for _ in range(10):
        await asyncio.sleep(0)
    assert log == ["recorded"]  # not cancelled: its send is recorded


async def test_a_cancellation_reaches_every_send() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def hangs(name: str) -> str:
        try:
            started.set()
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        return name

    task = asyncio.ensure_future(_concurrently([hangs("first"), hangs("second")]))
    await started.wait()
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert sorted(cancelled) == ["first", "second"]
