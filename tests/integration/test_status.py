"""Specification of couples_nudge.operator.status (figures read from Redis) and `nudge status`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from rich.console import Console
from typer.testing import CliRunner

from couples_nudge.cli import app
from couples_nudge.common.clock import epoch_ms
from couples_nudge.common.keys import NOTIFIER_GROUP, SCHEDULER_GROUP, Keys
from couples_nudge.operator import status_cli
from couples_nudge.operator.status import gather_status
from couples_nudge.operator.status_cli import render_status

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def server_ms(redis: aioredis.Redis) -> int:
    seconds, micros = await redis.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def backlog(redis: aioredis.Redis, keys: Keys, *, age_s: int) -> None:
    """Three due entries, the first `age_s` old; the notifier group took two, acked none."""
    stream = keys.due(0)
    old = await server_ms(redis) - age_s * 1000
    await redis.xadd(stream, {"__data__": b"{}"}, id=f"{old}-0")
    await redis.xadd(stream, {"__data__": b"{}"})
    await redis.xadd(stream, {"__data__": b"{}"})
    await redis.xgroup_create(stream, NOTIFIER_GROUP, id="0")
    await redis.xreadgroup(NOTIFIER_GROUP, "n1", {stream: ">"}, count=2)


class TestGatherStatus:
    async def test_streams_report_length_groups_pending_lag_and_oldest_age(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """The due stream's group shows 2 consumers' worth of work: 2 pending, 1 not read yet."""
        keys = Keys(prefix=key_prefix)
        await backlog(redis, keys, age_s=90)
        status = await gather_status(redis, keys, NOW)
        due = status.stream("due:{s00}")
        assert due.length == 3
        group = due.group(NOTIFIER_GROUP)
        assert group is not None
        assert (group.consumers, group.pending, group.lag) == (1, 2, 1)
        assert group.oldest_pending_age_s is not None
        assert 90 <= group.oldest_pending_age_s < 90 + 60

    async def test_every_stream_is_listed_even_before_it_exists(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A fresh deployment shows zeros, not errors, for streams nobody wrote yet."""
        keys = Keys(prefix=key_prefix, shards=2)
        status = await gather_status(redis, keys, NOW)
        assert [s.label for s in status.streams] == [
            "preferences",
            "due:{s00}",
            "due:{s01}",
            "outcomes",
            "rejected",
            "dead",
        ]
        assert all(s.length == 0 and s.groups == () for s in status.streams)
        assert (status.dead_letters, status.rejected_last_hour, status.next_fire) == (0, 0, None)

    async def test_a_lag_the_server_cannot_tell_is_unknown_not_zero(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """After a deletion inside the unread range XINFO GROUPS gives lag nil: we say None."""
        keys = Keys(prefix=key_prefix)
        stream = keys.preferences
        await redis.xadd(stream, {"__data__": b"1"})
        middle = await redis.xadd(stream, {"__data__": b"2"})
        await redis.xadd(stream, {"__data__": b"3"})
        await redis.xgroup_create(stream, SCHEDULER_GROUP, id="0")
        await redis.xreadgroup(SCHEDULER_GROUP, "s1", {stream: ">"}, count=1)
        await redis.xdel(stream, middle)
        group = (await gather_status(redis, keys, NOW)).stream("preferences").group("scheduler")
        assert group is not None
        assert group.lag is None

    async def test_timers_count_total_due_and_overdue_per_shard_with_the_next_fire(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Due: score <= now. Overdue: more than a minute late. Next fire: the earliest score."""
        keys = Keys(prefix=key_prefix, shards=2)
        now = epoch_ms(NOW)
        await redis.zadd(
            keys.timers(0),
            {"late": now - 5 * 60_000, "just-due": now - 30_000, "later": now + 3_600_000},
        )
        await redis.zadd(keys.timers(1), {"tomorrow": now + 86_400_000})
        status = await gather_status(redis, keys, NOW)
        shard0, shard1 = status.timers
        assert (shard0.total, shard0.due, shard0.overdue) == (3, 2, 1)
        assert (shard1.total, shard1.due, shard1.overdue) == (1, 0, 0)
        assert shard1.next_fire == NOW + timedelta(days=1)
        assert (status.timers_total, status.timers_due, status.timers_overdue) == (4, 2, 1)
        assert status.next_fire == NOW - timedelta(minutes=5)

    async def test_rejections_are_counted_for_the_last_hour_by_entry_id(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Entry ids are millisecond timestamps: one from two hours ago does not count."""
        keys = Keys(prefix=key_prefix)
        now = await server_ms(redis)
        await redis.xadd(keys.rejected, {"reason": "old"}, id=f"{now - 2 * 3_600_000}-0")
        await redis.xadd(keys.rejected, {"reason": "recent"}, id=f"{now - 600_000}-0")
        await redis.xadd(keys.rejected, {"reason": "now"})
        assert (await gather_status(redis, keys, NOW)).rejected_last_hour == 2

    async def test_dead_letters_are_the_length_of_the_dead_stream(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Dead-letter depth is read, never written, from `<prefix>:dead`."""
        keys = Keys(prefix=key_prefix)
        for _ in range(3):
            await redis.xadd(keys.dead, {"reason": "gave up"})
        assert (await gather_status(redis, keys, NOW)).dead_letters == 3

    async def test_the_json_form_holds_plain_types_and_totals(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """`as_json` survives json.dumps and names the totals scripts need."""
        keys = Keys(prefix=key_prefix)
        await redis.zadd(keys.timers(0), {"s": epoch_ms(NOW) + 60_000})
        await redis.zadd(keys.retries(0), {b"2|{}": epoch_ms(NOW) + 30_000})
        data = json.loads(json.dumps((await gather_status(redis, keys, NOW)).as_json()))
        assert data["totals"] == {
            "timers": 1,
            "due": 0,
            "overdue": 0,
            "next_fire": "2026-12-01T12:01:00+00:00",
            "retries_waiting": 1,
            "next_retry": "2026-12-01T12:00:30+00:00",
        }
        assert data["timers"][0]["next_fire"] == "2026-12-01T12:01:00+00:00"
        assert data["retries"] == [
            {"shard": 0, "waiting": 1, "next_due": "2026-12-01T12:00:30+00:00"}
        ]


class TestRenderStatus:
    async def test_tables_show_streams_groups_timers_and_counts(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """The rich output names each stream and group, shows an unknown lag as `?`."""
        keys = Keys(prefix=key_prefix)
        await backlog(redis, keys, age_s=10)
        await redis.xadd(keys.dead, {"reason": "gave up"})
        console = Console(width=140, record=True)
        console.print(render_status(await gather_status(redis, keys, NOW)))
        text = console.export_text()
        assert "due:{s00}" in text
        assert "notifier" in text
        assert "dead letters: 1" in text
        assert "rejected in the last hour: 0" in text


def _cli_env(redis_url: str, key_prefix: str) -> dict[str, str]:
    return {"REDIS_URL": redis_url, "NUDGE_KEY_PREFIX": key_prefix, "NUDGE_SHARDS": "2"}


class TestStatusCommand:
    async def test_json_output_is_one_object_with_every_figure(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """`nudge status --json` reads REDIS_URL, NUDGE_KEY_PREFIX and NUDGE_SHARDS."""
        keys = Keys(prefix=key_prefix, shards=2)
        await redis.zadd(keys.timers(1), {"s": 1})  # long overdue
        result = await _invoke(["status", "--json"], _cli_env(redis_url, key_prefix))
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert [s["label"] for s in data["streams"]][:3] == [
            "preferences",
            "due:{s00}",
            "due:{s01}",
        ]
        assert data["totals"]["overdue"] == 1
        assert set(data) >= {"streams", "timers", "dead_letters", "rejected_last_hour", "at"}

    async def test_tables_are_the_default(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Without --json the command prints the Streams and Timers tables."""
        result = await _invoke(["status"], _cli_env(redis_url, key_prefix))
        assert result.exit_code == 0, result.output
        assert "Streams" in result.output
        assert "Timers" in result.output

    async def test_watch_refreshes_until_interrupted(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str, monkeypatch: Any
    ) -> None:
        """--watch prints a fresh snapshot after each wait and exits cleanly on Ctrl-C."""
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            if len(waits) == 2:
                raise KeyboardInterrupt

        monkeypatch.setattr(status_cli, "time", SimpleNamespace(sleep=sleep))
        args = ["status", "--json", "--watch", "2"]
        result = await _invoke(args, _cli_env(redis_url, key_prefix))
        assert result.exit_code == 0, result.output
        assert waits == [2.0, 2.0]
        assert len(result.output.strip().splitlines()) == 2

    async def test_an_unreachable_redis_is_a_clear_error(self, key_prefix: str) -> None:
        """No traceback for operators: a one-line reason and exit code 1."""
        env = _cli_env("redis://127.0.0.1:1/0", key_prefix)
        result = await _invoke(["status"], env)
        assert result.exit_code == 1
        assert result.output.splitlines() == [
            "nudge: cannot reach Redis at 127.0.0.1:1 (connection refused): start it, "
            "or set REDIS_URL to a server that runs"
        ]


async def _invoke(args: list[str], env: dict[str, str]) -> Any:
    """Run the CLI in a worker thread: it starts its own event loop with asyncio.run."""
    return await asyncio.to_thread(CliRunner().invoke, app, args, env=env)


@pytest.fixture(autouse=True)
def _no_ambient_prefix(monkeypatch: Any) -> None:
    """The CLI reads the environment: keep the developer's own NUDGE_* out of these tests."""
    for name in ("NUDGE_KEY_PREFIX", "NUDGE_SHARDS"):
        monkeypatch.delenv(name, raising=False)
