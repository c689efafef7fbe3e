"""How the service stands, read from Redis: streams, consumer groups, timers, retries, dead
letters.

One `gather_status` call makes a fixed number of round trips whatever the size of the data
(pipelines per kind of figure, one Lua call to count recent rejections). It backs
`nudge status`, the notifier's status page and the Prometheus gauges.

Three clocks, on purpose: timer figures (due, overdue, next fire) use the service's clock, the
one that scores timers; ages of stream entries use the Redis server's TIME, the clock that
stamped their ids; whether the state was lost recently uses the wall clock, which stamped the
state marker. Works on Redis 7 and Valkey 9: XINFO GROUPS `lag` may be nil (the server
cannot tell after deletions), which is reported as unknown, not as zero.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import redis.asyncio as aioredis

from couples_nudge.common.clock import epoch_ms, from_ms
from couples_nudge.common.keys import Keys
from couples_nudge.common.state_marker import StateEpoch, read_state

__all__ = [
    "OVERDUE_AFTER",
    "REJECTED_COUNT_CAP",
    "GroupStatus",
    "RetryStatus",
    "Status",
    "StreamStatus",
    "TimerStatus",
    "gather_status",
]

OVERDUE_AFTER: Final = timedelta(minutes=1)
REJECTED_WINDOW: Final = timedelta(hours=1)
REJECTED_COUNT_CAP: Final = 10_000

COUNT_SINCE: Final = """
-- Count stream entries with an id at or after a start id, without sending them anywhere.
-- KEYS: 1 stream   ARGV: 1 start id ("<ms>-0"), 2 cap (stop counting there)
-- Returns the count (at most the cap, rounded up to a page).
local n, start, cap = 0, ARGV[1], tonumber(ARGV[2])
while true do
  local rows = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 500)
  n = n + #rows
  if #rows < 500 or n >= cap then return n end
  start = '(' .. rows[#rows][1]
end
"""


@dataclass(frozen=True, slots=True)
class GroupStatus:
    name: str
    consumers: int
    pending: int
    lag: int | None  # None: the server cannot tell
    oldest_pending_age_s: float | None  # None: nothing pending


@dataclass(frozen=True, slots=True)
class StreamStatus:
    stream: str  # the full key
    label: str  # without the prefix: preferences, due:{s00}, outcomes, rejected, dead
    length: int
    groups: tuple[GroupStatus, ...]

    def group(self, name: str) -> GroupStatus | None:
        return next((g for g in self.groups if g.name == name), None)


@dataclass(frozen=True, slots=True)
class TimerStatus:
    shard: int
    total: int
    due: int
    overdue: int
    next_fire: datetime | None


@dataclass(frozen=True, slots=True)
class RetryStatus:
    """A shard's retry queue (`<prefix>:retries:{sNN}`): sends waiting for another attempt."""

    shard: int
    waiting: int
    next_due: datetime | None  # None: nothing waiting


@dataclass(frozen=True, slots=True)
class Status:
    at: datetime  # the service clock's now
    streams: tuple[StreamStatus, ...]
    timers: tuple[TimerStatus, ...]
    dead_letters: int
    rejected_last_hour: int  # capped at REJECTED_COUNT_CAP
    state: StateEpoch | None = None  # the state marker (None: no service has started yet)
    state_lost_recently: bool = False  # the state was lost within LOSS_SHOWN_FOR
    retries: tuple[RetryStatus, ...] = ()

    @property
    def retries_waiting(self) -> int:
        return sum(r.waiting for r in self.retries)

    @property
    def next_retry(self) -> datetime | None:
        due = [r.next_due for r in self.retries if r.next_due is not None]
        return min(due) if due else None

    @property
    def timers_total(self) -> int:
        return sum(t.total for t in self.timers)

    @property
    def timers_due(self) -> int:
        return sum(t.due for t in self.timers)

    @property
    def timers_overdue(self) -> int:
        return sum(t.overdue for t in self.timers)

    @property
    def next_fire(self) -> datetime | None:
        fires = [t.next_fire for t in self.timers if t.next_fire is not None]
        return min(fires) if fires else None

    def stream(self, label: str) -> StreamStatus:
        return next(s for s in self.streams if s.label == label)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON types; datetimes as ISO 8601 strings."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["state"] = None if self.state is None else self.state.as_json()
        for timer in data["timers"]:
            fire = timer["next_fire"]
            timer["next_fire"] = None if fire is None else fire.isoformat()
        for retry in data["retries"]:
            due = retry["next_due"]
            retry["next_due"] = None if due is None else due.isoformat()
        data["totals"] = {
            "timers": self.timers_total,
            "due": self.timers_due,
            "overdue": self.timers_overdue,
            "next_fire": None if self.next_fire is None else self.next_fire.isoformat(),
            "retries_waiting": self.retries_waiting,
            "next_retry": None if self.next_retry is None else self.next_retry.isoformat(),
        }
        return data


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_ms(entry_id: Any) -> int:
    return int(_text(entry_id).split("-", 1)[0])


async def gather_status(redis: aioredis.Redis, keys: Keys, now: datetime) -> Status:
    """Every figure operators look at, in a handful of round trips."""
    streams = [keys.preferences, *keys.all_due(), keys.outcomes, keys.rejected, keys.dead]
    seconds, micros = await redis.time()  # on its own: a Redis Cluster pipeline refuses TIME
    server_ms = int(seconds) * 1000 + int(micros) // 1000
    async with redis.pipeline(transaction=False) as pipe:
        for stream in streams:
            pipe.xlen(stream)
            pipe.xinfo_groups(stream)
        replies = await pipe.execute(raise_on_error=False)
    raw_groups: dict[str, list[dict[str, Any]]] = {}
    lengths: dict[str, int] = {}
    for i, stream in enumerate(streams):
        length, groups = replies[2 * i], replies[2 * i + 1]
        if isinstance(length, Exception):  # a refused read: the refresh fails, counted
            raise length
        lengths[stream] = int(length)
        raw_groups[stream] = [] if isinstance(groups, Exception) else list(groups)

    oldest = await _oldest_pending(redis, raw_groups)
    stream_status = tuple(
        StreamStatus(
            stream=stream,
            label=stream.removeprefix(f"{keys.prefix}:"),
            length=lengths[stream],
            groups=tuple(
                _group(g, oldest.get((stream, _text(g["name"]))), server_ms)
                for g in raw_groups[stream]
            ),
        )
        for stream in streams
    )
    timers, retries = await _timers(redis, keys, now)
    rejected = await redis.eval(
        COUNT_SINCE,
        1,
        keys.rejected,
        f"{server_ms - int(REJECTED_WINDOW.total_seconds() * 1000)}-0",
        REJECTED_COUNT_CAP,
    )
    state = await read_state(redis, keys)
    return Status(
        at=now,
        streams=stream_status,
        timers=timers,
        dead_letters=lengths[keys.dead],
        rejected_last_hour=min(int(rejected), REJECTED_COUNT_CAP),
        state=state,
        state_lost_recently=state is not None and state.recently_lost(datetime.now(UTC)),
        retries=retries,
    )


async def _oldest_pending(
    redis: aioredis.Redis, groups: dict[str, list[dict[str, Any]]]
) -> dict[tuple[str, str], int]:
    """(stream, group) -> ms timestamp of the oldest pending entry, for groups with any."""
    asked = [
        (stream, _text(g["name"])) for stream, gs in groups.items() for g in gs if g["pending"]
    ]
    if not asked:
        return {}
    async with redis.pipeline(transaction=False) as pipe:
        for stream, group in asked:
            pipe.xpending(stream, group)
        summaries = await pipe.execute(raise_on_error=False)
    return {
        where: _id_ms(summary["min"])
        for where, summary in zip(asked, summaries, strict=True)
        if isinstance(summary, dict) and summary.get("min")
    }


def _group(raw: dict[str, Any], oldest_ms: int | None, server_ms: int) -> GroupStatus:
    lag = raw.get("lag")
    return GroupStatus(
        name=_text(raw["name"]),
        consumers=int(raw["consumers"]),
        pending=int(raw["pending"]),
        lag=None if lag is None else int(lag),
        oldest_pending_age_s=None if oldest_ms is None else max(0, server_ms - oldest_ms) / 1000,
    )


async def _timers(
    redis: aioredis.Redis, keys: Keys, now: datetime
) -> tuple[tuple[TimerStatus, ...], tuple[RetryStatus, ...]]:
    """Timer and retry sorted sets of every shard, in one pipeline."""
    now_ms = epoch_ms(now)
    late_ms = now_ms - int(OVERDUE_AFTER.total_seconds() * 1000)
    async with redis.pipeline(transaction=False) as pipe:
        for shard in range(keys.shards):
            timers = keys.timers(shard)
            pipe.zcard(timers)
            pipe.zcount(timers, "-inf", now_ms)
            pipe.zcount(timers, "-inf", f"({late_ms}")
            pipe.zrange(timers, 0, 0, withscores=True)
            pipe.zcard(keys.retries(shard))
            pipe.zrange(keys.retries(shard), 0, 0, withscores=True)
        replies = await pipe.execute()
    timer_result: list[TimerStatus] = []
    retry_result: list[RetryStatus] = []
    for shard in range(keys.shards):
        total, due, overdue, head, waiting, first = replies[6 * shard : 6 * shard + 6]
        timer_result.append(
            TimerStatus(
                shard=shard,
                total=int(total),
                due=int(due),
                overdue=int(overdue),
                next_fire=from_ms(int(head[0][1])) if head else None,
            )
        )
        retry_result.append(
            RetryStatus(
                shard=shard,
                waiting=int(waiting),
                next_due=from_ms(int(first[0][1])) if first else None,
            )
        )
    return tuple(timer_result), tuple(retry_result)
