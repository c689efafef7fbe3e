"""The shutdown budget: one deadline, and what is still running at it is cancelled."""

from __future__ import annotations

import asyncio
import time

from couples_nudge.common.shutdown import Deadline, settle


class TestDeadline:
    def test_remaining_counts_down_and_never_goes_negative(self) -> None:
        """What is left of a budget shrinks with time and stops at zero."""
        assert 9.0 < Deadline.after(10).remaining() <= 10.0
        assert Deadline(time.monotonic() - 5).remaining() == 0.0


class TestSettle:
    async def test_work_done_in_time_finishes_and_the_rest_is_cancelled(self) -> None:
        """Tasks that end before the deadline end normally; the others are cancelled at it."""
        quick = asyncio.create_task(asyncio.sleep(0.01, result="done"))
        stuck = asyncio.create_task(asyncio.sleep(60))
        began = time.monotonic()
        assert await settle([quick, stuck], Deadline.after(0.3)) == 1
        assert quick.result() == "done"
        assert stuck.cancelled()
        assert time.monotonic() - began < 30  # bounded by the deadline, not by the task

    async def test_a_failed_task_is_not_reported_as_never_retrieved(self) -> None:
        """A task that failed before the stop does not make settle raise."""

        async def fail() -> None:
            raise RuntimeError("boom")

        failed = asyncio.create_task(fail())
        await asyncio.sleep(0)
        assert await settle([failed], Deadline.after(1)) == 0
        assert isinstance(failed.exception(), RuntimeError)
