"""BatchRelay: one batch at a time, in the order started, its errors its own."""

from __future__ import annotations

import asyncio

import pytest

from couples_nudge.common.relay import BatchRelay


class TestBatchRelay:
    async def test_batches_run_one_at_a_time_in_the_order_started(self) -> None:
        """Each batch starts after `wait` has seen the one before it end, whatever it awaits."""
        relay = BatchRelay("test")
        log: list[str] = []

        async def batch(name: str) -> None:
            log.append(f"{name} starts")
            await asyncio.sleep(0.01)
            log.append(f"{name} ends")

        for name in ("a", "b", "c"):
            await relay.wait()
            relay.start(batch(name))
        await relay.wait()
        assert log == ["a starts", "a ends", "b starts", "b ends", "c starts", "c ends"]
        assert relay.running() == []

    async def test_a_batch_cannot_start_while_the_one_before_runs(self) -> None:
        """`start` without `wait` refuses, and the refused work never runs."""
        relay = BatchRelay("test")
        ran: list[str] = []

        async def batch(name: str) -> None:
            ran.append(name)
            await asyncio.sleep(0.01)

        first = relay.start(batch("first"))
        assert relay.running() == [first]
        with pytest.raises(RuntimeError):
            relay.start(batch("second"))
        await relay.wait()
        assert ran == ["first"]

    async def test_a_failed_batch_does_not_stop_the_next(self) -> None:
        """A batch's error stays in its task (never reported "never retrieved"); `wait` returns."""
        relay = BatchRelay("test")

        async def fail() -> None:
            raise RuntimeError("boom")

        failed = relay.start(fail())
        await relay.wait()
        assert isinstance(failed.exception(), RuntimeError)
        relay.start(asyncio.sleep(0))
        await relay.wait()
