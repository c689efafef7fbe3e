"""Why the batch subscribers keep `streams.entries_as_read`: FastStream 0.7's own batch parser
still fails a whole batch on one entry that is not UTF-8, and the good entries with it."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from faststream.redis import RedisBroker, StreamSub
from faststream.redis.annotations import RedisStreamMessage

from couples_nudge.common.streams import DATA_FIELD, entries_as_read

GOOD = b'{"good": 1}'
NOT_TEXT = b"\xff\xfe not UTF-8"


async def handled_entries(redis_url: str, stream: str, parser: Any) -> list[int]:
    """Run a FastStream batch subscriber on `stream` for a moment: how many entries each
    batch that reached the handler held."""
    seen: list[int] = []
    broker = RedisBroker(redis_url)

    @broker.subscriber(
        stream=StreamSub(stream, group="g", consumer="c", batch=True, polling_interval=50),
        parser=parser,
    )
    async def handle(msg: RedisStreamMessage) -> None:
        seen.append(len(msg.raw_message["data"]))

    await broker.start()
    try:
        for _ in range(40):  # at most 2 s
            if seen:
                break
            await asyncio.sleep(0.05)
    finally:
        await broker.stop()
    return seen


class TestFastStreamBatchParser:
    async def test_its_parser_loses_the_batch_ours_keeps_every_entry(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """With FastStream's parser the handler never sees a batch holding an entry that is
        not UTF-8 (nor the good entry beside it); with `entries_as_read` it gets both. If the
        first half starts failing, FastStream fixed it: re-check entries_as_read."""
        outcomes = {}
        cases = (
            ("faststream, all text", None, [GOOD]),  # the control: its parser works
            ("faststream", None, [GOOD, NOT_TEXT]),
            ("ours", entries_as_read, [GOOD, NOT_TEXT]),
        )
        for number, (name, parser, payloads) in enumerate(cases):
            stream = f"{key_prefix}:batch:{number}"
            await redis.xgroup_create(stream, "g", id="0", mkstream=True)
            for payload in payloads:
                await redis.xadd(stream, {DATA_FIELD: payload})
            outcomes[name] = await handled_entries(redis_url, stream, parser)
            await redis.delete(stream)
        print(f"\nentries per batch handled: {outcomes}")
        assert outcomes == {"faststream, all text": [1], "faststream": [], "ours": [2]}
