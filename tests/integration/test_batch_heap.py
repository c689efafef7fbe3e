"""A batch's objects die inside `collections_held` (services/common/runtime.py).

Cyclic collection is off while a batch is in hand and resumes when the block ends. If the
batch's events were still referenced then (a local of the handler, which lives until the
handler returns), the first allocation after the block would start a collection that walks
them all: +20k instructions an event on the realistic mix (callgrind_ingest, 2026-12-07). So
when collection resumes, no event of the batch may be alive.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import cast

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.runtime import collections_held
from couples_nudge.common.streams import DATA_FIELD
from couples_nudge.scheduler import service as service_module
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import PreferencesSet
from tests.support.couples import couple_event
from tests.support.settings import scheduler_settings

NOW = datetime(2026, 12, 1, tzinfo=UTC)
BATCH = 50


def _alive_events() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is PreferencesSet)


class TestBatchHeap:
    @pytest.mark.parametrize("path", ["handle_fields", "handle_batch"])
    async def test_no_event_of_the_batch_is_alive_when_collection_resumes(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        monkeypatch: pytest.MonkeyPatch,
        path: str,
    ) -> None:
        alive_after: list[int] = []

        @contextlib.contextmanager
        def watched() -> Iterator[None]:
            with collections_held():
                yield
            alive_after.append(_alive_events())  # as collection resumes

        monkeypatch.setattr(service_module, "collections_held", watched)
        service = SchedulerService(scheduler_settings(redis_url, key_prefix), ManualClock(NOW))
        await service.before_start()
        try:
            stream = service.keys.preferences
            for n in range(BATCH):
                await redis.xadd(stream, {DATA_FIELD: couple_event(n)})
            entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(stream))
            before = _alive_events()
            if path == "handle_fields":
                await service.handle_fields(entries)
            else:
                field = DATA_FIELD.encode()
                await service.handle_batch([(eid.decode(), f[field]) for eid, f in entries])
            assert await redis.hlen(service.keys.couple("c00000")) > 0  # the batch was applied
            assert alive_after == [before]
        finally:
            await service.redis.aclose()
