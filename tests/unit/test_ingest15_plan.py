"""apply_many plans each preferences.set as PreferenceIngest._plan does (its body written out
in the batch loop, issue 20): the same Plans, in order, for a mix of shapes and refusals."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis

from benchmarks.harness import couple_event
from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.common.keys import Keys
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import Plan
from couples_nudge_schemas import PreferencesSet, parse_preference

START = datetime(2026, 3, 27, 23, tzinfo=UTC)


class _Pipe:
    async def sent(self) -> None:
        return None


class _Store:
    """The parts of ScheduleStore apply_many uses: the plans it is given are kept."""

    def __init__(self) -> None:
        self.redis = aioredis.Redis()
        self.keys = Keys(prefix="t")
        self.pipe = _Pipe()
        self.plans: list[Plan] = []

    async def _results(self, n: int) -> list[str]:
        return ["applied"] * n

    def apply_plans(self, plans: Sequence[Plan]) -> Any:
        self.plans += plans
        return self._results(len(plans))


class TestBatchPlans:
    async def test_apply_many_plans_as_plan_does(self) -> None:
        """Realistic and burst couples at instants a day apart: every Plan equal to _plan's."""
        clock = ManualClock(START)
        settings = SchedulerSettings()
        store = _Store()
        batch = PreferenceIngest(store, clock, settings)  # type: ignore[arg-type]
        alone = PreferenceIngest(_Store(), clock, settings)  # type: ignore[arg-type]
        for day in range(3):
            events = [
                parse_preference(couple_event(i, mix=mix, occurred=START))
                for i in range(40)
                for mix in ("realistic", "burst")
            ]
            store.plans.clear()
            assert await batch.apply_many(events) == ["applied"] * len(events)
            expected = []
            for event in events:
                assert isinstance(event, PreferencesSet)
                expected.append(alone._plan(event.data, epoch_ms(event.occurred_at)))
            assert store.plans == expected
            clock.advance(timedelta(days=1, minutes=day))
