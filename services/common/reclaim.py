"""Reclaiming messages a crashed consumer left pending (XAUTOCLAIM), with a delivery cap.

FastStream's subscribers read only new entries (`>`): a message whose handler raised, or whose
consumer died, stays in the group's pending list forever. (FastStream's own claiming
subscriber, `StreamSub(min_idle_time=...)`, is not used: it claims one entry per round trip,
knows no entries a live process holds, has no cap and stops on NOGROUP; docs/architecture.md,
"FastStream, re-checked", names the tests that show it.) Every service process runs one
Reclaimer per stream: entries idle longer than `min_idle_ms` are claimed in batches and handled
again; an entry delivered more than `max_deliveries` times is poison and goes to the
dead-letter stream. Claiming is atomic in Redis, so replicas never handle the same entry at once.
Entries a live process is still handling (`held`) are re-claimed to it on every pass, so their
idle time never reaches `min_idle_ms`: only a dead or stuck consumer's work is taken over.
A missing group (NOGROUP: Redis came back without its state) is not retried blindly: the
reclaimer tells `on_missing_group` (the process's StateWatcher, which recreates the groups)
and carries on with its next pass.
A stop is honoured between entries: what a pass has claimed but not handled stays pending.

A delivery is counted when handling an entry starts, not when it is claimed: a sweep takes
idle entries over without counting (XAUTOCLAIM JUSTID) and counts each one (XCLAIM, which also
reads it) just before handling it. Before, a batch of 100 claimed entries was counted at once
while they were handled one by one, so a process killed again and again (a crash loop, a
busy deploy) dead-lettered entries nobody had tried, and the reason "delivered N times
without success" was not true. The cap still catches poison: an entry whose handling keeps
failing or crashing the process counts one delivery per try.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

import redis.asyncio as aioredis
import structlog
from redis.exceptions import RedisError, ResponseError

from couples_nudge.common.dead_letters import bury
from couples_nudge.common.settings import CommonSettings
from couples_nudge.common.streams import DATA_FIELD

__all__ = ["Handler", "Interrupted", "Reclaimer"]

log = structlog.get_logger()

# (raw __data__, entry id, all fields) -> done; raising leaves the entry pending
Handler = Callable[[bytes, str, dict[bytes, bytes]], Awaitable[None]]
_NOGROUP: Final = "NOGROUP"
TAKE_OVER: Final = """
-- Take over entries idle for min_idle ms without counting a delivery (XAUTOCLAIM JUSTID;
-- redis-py's reply parser drops the cursor of a JUSTID reply, hence a script).
-- KEYS: 1 stream   ARGV: 1 group, 2 consumer, 3 min idle ms, 4 cursor, 5 count
-- Returns {next cursor, entry ids}
local reply = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', ARGV[5], 'JUSTID')
return {reply[1], reply[2]}
"""

FORGET: Final = """
-- Remove the group's consumers that hold nothing and were idle for at least ARGV[2] ms (the
-- names of processes gone: every restart adds one), never ARGV[3] (the caller). In one step,
-- so that none takes an entry between the check and the removal: XGROUP DELCONSUMER drops a
-- consumer's pending entries with it. A live consumer reads every few hundred ms (its idle
-- time restarts with each read); one removed all the same comes back at its next read.
-- KEYS: 1 stream   ARGV: 1 group, 2 idle ms, 3 this process's consumer
-- Returns how many were removed.
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
  if info['name'] ~= ARGV[3] and info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
"""
# How long a consumer holding nothing may stay idle before FORGET removes it, and how often a
# reclaimer asks: a day, hourly (a group's list stays one name a live process, and a few of
# the last day's restarts).
FORGET_IDLE_MS: Final = 86_400_000
_FORGET_EVERY_S: Final = 3600.0


class Interrupted(Exception):
    """Raised by a handler that did not handle its entry because the process is stopping:
    the entry stays pending and nothing is logged (the stop ends the pass)."""


class Reclaimer:
    @classmethod
    def from_settings(
        cls,
        redis: aioredis.Redis,
        settings: CommonSettings,
        *,
        stream: str,
        group: str,
        consumer: str,
        handle: Handler,
        held: set[str] | None = None,
        on_missing_group: Callable[[], None] | None = None,
        delete_buried: bool = False,
    ) -> Reclaimer:
        """The reclaimer a service runs for one stream, tuned by NUDGE_RECLAIM_IDLE etc."""
        idle = settings.reclaim_idle.total_seconds()
        return cls(
            redis,
            stream=stream,
            group=group,
            consumer=consumer,
            handle=handle,
            dead_stream=settings.keys.dead,
            dead_maxlen=settings.dead_maxlen,
            min_idle_ms=int(idle * 1000),
            max_deliveries=settings.max_deliveries,
            poll_seconds=min(5.0, idle / 2),
            held=held,
            on_missing_group=on_missing_group,
            delete_buried=delete_buried,
        )

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        stream: str,
        group: str,
        consumer: str,
        handle: Handler,
        dead_stream: str,
        dead_maxlen: int,
        min_idle_ms: int,
        max_deliveries: int,
        count: int = 100,
        poll_seconds: float = 1.0,
        held: set[str] | None = None,
        on_missing_group: Callable[[], None] | None = None,
        delete_buried: bool = False,
        forget_idle_ms: int = FORGET_IDLE_MS,
    ) -> None:
        self.redis = redis
        self.forget_idle_ms = forget_idle_ms
        self._forgotten_at: float | None = None  # when FORGET last ran (None: not yet)
        # Delete an entry once its dead letter holds all of it: for a stream whose handled
        # entries are deleted too (the preferences stream, raw input with names and
        # addresses), where a copy left behind would outlive the couple's erasure.
        self.delete_buried = delete_buried
        self.stream, self.group, self.consumer = stream, group, consumer
        self.handle = handle
        self.dead_stream, self.dead_maxlen = dead_stream, dead_maxlen
        self.min_idle_ms = min_idle_ms
        self.max_deliveries = max_deliveries
        self.count = count
        self.poll_seconds = poll_seconds
        # Entry ids this process is handling right now (its subscriber adds and removes them):
        # see `refresh`. Shared with the subscriber, so never replaced.
        self.held: set[str] = held if held is not None else set()
        self.on_missing_group = on_missing_group
        self._refreshed = time.monotonic()
        self._stop: asyncio.Event | None = None  # set by `run`: a pass ends at the next entry
        self._take_over = redis.register_script(TAKE_OVER)
        self._forget = redis.register_script(FORGET)
        self.reclaimed = 0
        self.buried = 0

    async def refresh(self) -> None:
        """Re-claim the held entries to this consumer (XCLAIM JUSTID: idle time back to 0, no
        delivery counted), so no replica reclaims work that a live process is still doing.

        Without it, an entry that waits in a busy process longer than `min_idle_ms` is taken
        over and sent again by another replica, and an overloaded group then does all its work
        twice. The run loop refreshes every `poll_seconds`, well inside `min_idle_ms`.
        """
        self._refreshed = time.monotonic()
        if self.held:
            ids: list[Any] = sorted(self.held)
            await self.redis.xclaim(
                self.stream,
                self.group,
                self.consumer,
                min_idle_time=0,
                message_ids=ids,
                justid=True,
            )

    async def keep_held(self) -> None:
        """Refresh the held entries if half a pass has gone by since the last refresh: for work
        that holds the event loop longer than a pass (a long preferences batch calls it between
        entries). Half, not a whole pass: on a starved CPU (a pod held to a small quota) one
        step between two calls can take a second of wall time, and a pass is half the idle
        time after which another replica takes the entries over. A Redis error is logged, not
        raised: the next call tries again."""
        if time.monotonic() - self._refreshed < self.poll_seconds / 2:
            return
        try:
            await self.refresh()
        except RedisError as exc:
            log.warning("reclaim_redis_error", stream=self.stream, error=type(exc).__name__)

    async def forget_idle(self) -> int:
        """Remove the group's consumers gone for `forget_idle_ms` with nothing pending (FORGET);
        how many."""
        self._forgotten_at = time.monotonic()
        removed = int(
            await self._forget(
                keys=[self.stream], args=[self.group, self.forget_idle_ms, self.consumer]
            )
        )
        if removed:
            log.info("consumers_forgotten", stream=self.stream, group=self.group, count=removed)
        return removed

    async def sweep(self) -> int:
        """Claim and handle one pass over the pending list; returns how many were claimed."""
        cursor, claimed_total = "0-0", 0
        while True:
            reply: list[Any] = await self._take_over(
                keys=[self.stream],
                args=[self.group, self.consumer, self.min_idle_ms, cursor, self.count],
            )
            cursor = reply[0].decode() if isinstance(reply[0], bytes) else str(reply[0])
            ids = [eid.decode() if isinstance(eid, bytes) else str(eid) for eid in reply[1]]
            if ids:
                claimed_total += len(ids)
                await self._handle_claimed(ids)
            if cursor == "0-0" or self._stopping():
                return claimed_total

    async def _handle_claimed(self, ids: list[str]) -> None:
        # Entries this process is handling right now were claimed only because their refresh
        # could not reach Redis for a while (an outage): the claim refreshed them; handling
        # them a second time, concurrently, would send twice.
        ids = [eid for eid in ids if eid not in self.held]
        if not ids:
            return
        pending = await self.redis.xpending_range(
            self.stream,
            self.group,
            min=ids[0],
            max=ids[-1],
            count=len(ids) * 2,
            consumername=self.consumer,
        )
        deliveries: dict[str, int] = {
            (
                p["message_id"].decode()
                if isinstance(p["message_id"], bytes)
                else str(p["message_id"])
            ): int(p["times_delivered"])
            for p in pending
        }
        self.held.update(ids)  # ours now: a long batch must not be taken over meanwhile
        try:
            for entry in ids:
                if self._stopping():
                    return  # the rest stay pending, for whichever replica claims them next
                if time.monotonic() - self._refreshed >= self.poll_seconds:
                    await self.refresh()
                await self._handle_one(entry, deliveries.get(entry, 1))
                self.held.discard(entry)
        finally:
            self.held.difference_update(ids)

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def _handle_one(self, entry: str, times: int) -> None:
        """`times`: deliveries so far (the first read, and each handling that started)."""
        if times >= self.max_deliveries:
            rows: Any = await self.redis.xrange(self.stream, min=entry, max=entry)
            stored: dict[bytes, bytes] = rows[0][1] if rows else {}
            raw = stored.get(DATA_FIELD.encode(), b"")
            await bury(
                self.redis,
                self.dead_stream,
                source=self.stream,
                entry_id=entry,
                reason=f"{times} deliveries, none handled to the end",
                attempts=times,
                data=raw,
                maxlen=self.dead_maxlen,
            )
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xack(self.stream, self.group, entry)
                if self.delete_buried and list(stored) == [DATA_FIELD.encode()]:
                    pipe.xdel(self.stream, entry)  # the letter holds all of it
                await pipe.execute()
            self.buried += 1
            log.error(  # a dead letter is always an error line (docs/operations.md)
                "message_dead_lettered", stream=self.stream, entry_id=entry, deliveries=times
            )
            return
        # Counts this delivery (an XCLAIM that is not JUSTID) and reads the entry.
        claimed: Any = await self.redis.xclaim(
            self.stream, self.group, self.consumer, min_idle_time=0, message_ids=[entry]
        )
        if not claimed or claimed[0][1] is None:  # deleted meanwhile (XTRIM, erasure)
            await self.redis.xack(self.stream, self.group, entry)
            return
        fields: dict[bytes, bytes] = claimed[0][1]
        raw = fields.get(DATA_FIELD.encode(), b"")
        try:
            await self.handle(raw, entry, fields)
        except Interrupted:
            return
        except Exception as exc:  # stays pending; the next sweep counts another delivery
            log.warning(
                "reclaimed_message_failed",
                stream=self.stream,
                entry_id=entry,
                error=type(exc).__name__,
            )
            return
        await self.redis.xack(self.stream, self.group, entry)
        self.reclaimed += 1

    async def run(self, stop: asyncio.Event) -> None:
        self._stop = stop
        while not stop.is_set():
            try:
                await self.refresh()
                await self.sweep()
                since = self._forgotten_at
                if since is None or time.monotonic() - since >= _FORGET_EVERY_S:
                    await self.forget_idle()
            except ResponseError as exc:
                if _NOGROUP not in str(exc):
                    log.warning("reclaim_redis_error", stream=self.stream, error=type(exc).__name__)
                else:
                    log.warning("reclaim_group_missing", stream=self.stream, group=self.group)
                    if self.on_missing_group is not None:
                        self.on_missing_group()
            except RedisError as exc:
                log.warning("reclaim_redis_error", stream=self.stream, error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.poll_seconds)
