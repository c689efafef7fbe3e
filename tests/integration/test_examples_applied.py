"""Every preference event in examples/ is applied by a real scheduler, as docs/publishers.md
says (`redis-cli XADD nudges:preferences '*' __data__ "$(cat examples/...)"`): none lands on
the rejected stream. The unit corpus test (tests/unit/test_contract_corpus.py) checks the
models; this one also meets what only a running scheduler checks, such as the clock (an
example dated ahead of the wall clock is refused `more than 300 s ahead`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_entries
from couples_nudge.scheduler.service import SchedulerService
from tests.support.contracts import EXAMPLES, event_types
from tests.support.settings import scheduler_settings
from tests.support.waiting import eventually


def _when(path: Path) -> datetime:
    event = json.loads(path.read_text())
    return datetime.fromisoformat(event.get("occurred_at") or event["time"])


def preference_examples() -> list[Path]:
    """The couples first (the other events need them), then every preference event in
    examples/events and examples/cloudevents, oldest first, as an app would publish them."""
    preference_types = event_types("preference-event")
    events = [
        path
        for path in (*EXAMPLES.glob("events/*.json"), *EXAMPLES.glob("cloudevents/*.json"))
        if json.loads(path.read_text())["type"] in preference_types
    ]
    return [*sorted(EXAMPLES.glob("couples/*.json")), *sorted(events, key=_when)]


class TestExamplesOnAScheduler:
    async def test_every_preference_example_is_applied(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        paths = preference_examples()
        assert len(paths) >= 20  # six couples, every preference type, the CloudEvents
        settings = scheduler_settings(redis_url, key_prefix)
        # The simulated clock is behind the wall clock; the future check reads the wall clock.
        service = SchedulerService(settings, ManualClock(datetime(2026, 12, 1, tzinfo=UTC)))
        await service.start()
        try:
            for path in paths:
                await redis.xadd(settings.keys.preferences, {DATA_FIELD: path.read_bytes()})
            await eventually(
                lambda: redis.xinfo_groups(settings.keys.preferences),
                until=lambda groups: groups[0]["lag"] == 0 and groups[0]["pending"] == 0,
            )
            rejected = await read_entries(redis, settings.keys.rejected)
            names = {path.read_bytes()[:8192]: str(path.relative_to(EXAMPLES)) for path in paths}
            refused = {
                names.get(fields[b"raw"], "?"): fields[b"reason"].decode()
                for _id, fields in rejected
            }
            assert refused == {}
            assert await redis.hget(settings.keys.couple("zoe-ravi"), "rev") == b"7"
            assert await redis.exists(settings.keys.couple("lena-jo")) == 0  # erased
        finally:
            await service.stop()
