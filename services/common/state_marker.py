"""The state marker: how a service process tells that Redis lost its state, and says so once.

A Redis without persistence (or a flushed one) comes back empty: couples, timers, consumer
groups, all gone. Nothing in the data says so; an empty Redis looks like a new installation.
So every process remembers the *state epoch* it runs in, and Redis holds it in one hash
(`Keys.state`):

    epoch   random id of the epoch, written by the first process that found no marker
    began   ms (wall clock) when the epoch began
    lost    ms when a process noticed that the epoch before this one was lost (absent: the
            epoch began without a known loss: a new installation, an upgrade, or a loss
            while no process ran, which nobody can tell apart)
    by      which process noticed it
    prev    ms when the lost epoch had begun (from that process's memory)

`OBSERVE` compares the caller's epoch with the marker, atomically, and decides:

    no marker, caller knows none (start-up)     started   a new epoch begins
    marker epoch is the caller's                same
    marker present, caller knows none           adopted   the caller joins it (start-up)
    no marker, caller knew one                  reported  the state was lost: a new epoch with
                                                          lost/by/prev, and the notice
                                                          (service.state_lost.v1) is XADDed
    another epoch, without "lost"               reported  a process started on the empty
                                                          Redis before anyone noticed: the
                                                          epoch is marked lost, the notice
                                                          XADDed
    another epoch, with "lost"                  seen      someone else reported it

so exactly one process reports a loss, and the notice goes out in the same atomic step (the
marker shares the outcomes stream's cluster slot). Times are wall-clock: a demo's simulated
clock schedules nudges, not outages.

On a cluster (`per_shard`) the marker sits on one primary, and another primary can come back
empty on its own: its shards' couples, timers and groups gone, the marker intact. So each shard
also holds a copy of the epoch in its own slot (`Keys.shard_state`), written by every process
that learns an epoch. A copy that is missing while the marker still names the caller's epoch is
a loss too: OBSERVE is then called with `part` set, and for a caller whose epoch the marker
still names it begins a new epoch and reports, as if the marker were gone (once: the others
find another epoch, with "lost"). The notice then stands for the whole state: publishers
republish every couple, which is harmless for those whose state was kept.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, cast

import redis.asyncio as aioredis

from couples_nudge.common.clock import Clock, SystemClock, epoch_ms, from_ms
from couples_nudge.common.keys import Keys
from couples_nudge.common.streams import DATA_FIELD
from couples_nudge_schemas import ServiceStateLost, ServiceStateLostData

__all__ = [
    "LOSS_SHOWN_FOR",
    "OBSERVE",
    "Observation",
    "StateEpoch",
    "StateMarker",
    "Verdict",
    "read_state",
    "state_lost_notice",
]

# How long /readyz, `nudge status` and the status page point at a loss.
LOSS_SHOWN_FOR: Final = timedelta(days=1)
_NS: Final = uuid.UUID("6d1c0f8e-52b7-4a8e-9b55-3c0e7d2a91f4")
_NAME_UNSAFE: Final = re.compile(r"[^\w.:/-]")

Verdict = Literal["started", "same", "adopted", "reported", "seen"]

OBSERVE: Final = f"""
-- Compare the caller's state epoch with the marker; start, adopt or report (module docstring).
-- KEYS: 1 marker hash, 2 outcomes stream (same cluster slot)
-- ARGV: 1 the caller's epoch ('' at start-up), 2 a fresh epoch id, 3 now ms,
--       4 the caller's name, 5 when the caller's epoch began (ms, '' if none),
--       6 the notice's JSON (XADDed only when this call reports), 7 outcomes maxlen,
--       8 '1': the caller found a shard's copy of its epoch gone (part of the state lost)
-- Returns {{verdict, epoch, began, lost, by, prev}} of the marker as it is afterwards
-- ('' for absent fields).
local function report()
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', '{DATA_FIELD}', ARGV[6])
end
local cur = redis.call('HMGET', KEYS[1], 'epoch', 'began', 'lost', 'by', 'prev')
local epoch = cur[1]
if epoch and epoch == ARGV[1] and ARGV[8] == '1' then epoch = false end  -- as if gone
if not epoch then
  if ARGV[1] == '' then
    redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'began', ARGV[3])
    return {{'started', ARGV[2], ARGV[3], '', '', ''}}
  end
  redis.call('HSET', KEYS[1], 'epoch', ARGV[2], 'began', ARGV[3], 'lost', ARGV[3],
             'by', ARGV[4], 'prev', ARGV[5])
  report()
  return {{'reported', ARGV[2], ARGV[3], ARGV[3], ARGV[4], ARGV[5]}}
end
local verdict
if epoch == ARGV[1] then
  verdict = 'same'
elseif ARGV[1] == '' then
  verdict = 'adopted'
elseif not cur[3] then
  redis.call('HSET', KEYS[1], 'lost', ARGV[3], 'by', ARGV[4], 'prev', ARGV[5])
  report()
  return {{'reported', epoch, cur[2], ARGV[3], ARGV[4], ARGV[5]}}
else
  verdict = 'seen'
end
return {{verdict, epoch, cur[2], cur[3] or '', cur[4] or '', cur[5] or ''}}
"""


@dataclass(frozen=True, slots=True)
class StateEpoch:
    """The state Redis holds, as the marker describes it."""

    epoch: str
    began_at: datetime
    lost_at: datetime | None = None  # when the loss that began this epoch was noticed
    detected_by: str | None = None
    lost_epoch_began_at: datetime | None = None

    def recently_lost(self, now: datetime, within: timedelta = LOSS_SHOWN_FOR) -> bool:
        return self.lost_at is not None and now - self.lost_at < within

    def as_json(self) -> dict[str, str | None]:
        def iso(instant: datetime | None) -> str | None:
            return None if instant is None else instant.isoformat()

        return {
            "epoch_began_at": iso(self.began_at),
            "lost_at": iso(self.lost_at),
            "detected_by": self.detected_by,
            "lost_epoch_began_at": iso(self.lost_epoch_began_at),
        }


@dataclass(frozen=True, slots=True)
class Observation:
    verdict: Verdict
    epoch: StateEpoch

    @property
    def lost(self) -> bool:
        """The caller's state is gone (it reported the loss or someone else did)."""
        return self.verdict in ("reported", "seen")


def state_lost_notice(
    keys: Keys,
    lost: StateEpoch,
    *,
    detected_at: datetime,
    detected_by: str,
    producer: str,
) -> ServiceStateLost:
    """The notice for publishers. Its id is derived from the lost epoch: every process that
    could report one loss builds the same event."""
    return ServiceStateLost(
        type="service.state_lost.v1",
        event_id=uuid.uuid5(_NS, f"{keys.prefix}|{lost.epoch}"),
        occurred_at=detected_at,
        producer=producer,
        data=ServiceStateLostData(
            detected_at=detected_at,
            detected_by=safe_name(detected_by),
            lost_epoch_began_at=lost.began_at,
        ),
    )


def safe_name(name: str) -> str:
    """A process name as events carry it (NUDGE_CONSUMER_NAME is free text): bounded, plain."""
    return _NAME_UNSAFE.sub("_", name)[:64] or "unnamed"


def _epoch(values: list[Any]) -> StateEpoch:
    """A StateEpoch from [epoch, began, lost, by, prev] ('' or None for absent fields)."""
    text = [v.decode() if isinstance(v, bytes) else ("" if v is None else str(v)) for v in values]
    epoch, began, lost, by, prev = (text + [""] * 5)[:5]
    return StateEpoch(
        epoch=epoch,
        began_at=from_ms(int(began or 0)),
        lost_at=from_ms(int(lost)) if lost else None,
        detected_by=by or None,
        lost_epoch_began_at=from_ms(int(prev)) if prev else None,
    )


async def read_state(redis: aioredis.Redis, keys: Keys) -> StateEpoch | None:
    """The marker as it stands (None: there is none), for status views."""
    values = await redis.hmget(keys.state, ["epoch", "began", "lost", "by", "prev"])
    return None if values[0] is None else _epoch(list(values))


class StateMarker:
    """The marker's Redis edge for one process (`name`: its consumer name)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        name: str,
        producer: str,
        outcomes_maxlen: int,
        clock: Clock | None = None,
        per_shard: bool = False,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.per_shard = per_shard  # a copy of the epoch in each shard's slot (a cluster)
        self.name = name
        self.producer = producer
        self.outcomes_maxlen = outcomes_maxlen
        self.clock = clock or SystemClock()
        self._observe = redis.register_script(OBSERVE)

    async def read(self) -> StateEpoch | None:
        """The marker as it stands (None: there is none)."""
        return await read_state(self.redis, self.keys)

    async def observe(self, known: StateEpoch | None) -> Observation:
        """Compare what this process knows with the marker (see OBSERVE). One HGET when
        nothing changed (with `per_shard`, and a GET per shard, in one pipeline); the script
        only when the epoch differs or is missing, or a shard's copy of it is gone."""
        part = False
        if known is not None:
            current, copies = await self._epochs()
            if current == known.epoch:
                part = None in copies
                if not part:
                    await self._copy(known.epoch, copies)
                    return Observation("same", known)
        now = self.clock.now()
        notice = (
            ""
            if known is None
            else state_lost_notice(
                self.keys, known, detected_at=now, detected_by=self.name, producer=self.producer
            ).model_dump_json()
        )
        reply = cast(
            "list[bytes]",
            await self._observe(
                keys=[self.keys.state, self.keys.outcomes],
                args=[
                    "" if known is None else known.epoch,
                    uuid.uuid4().hex,
                    epoch_ms(now),
                    safe_name(self.name),
                    "" if known is None else epoch_ms(known.began_at),
                    notice,
                    self.outcomes_maxlen,
                    "1" if part else "",
                ],
            ),
        )
        verdict = cast("Verdict", reply[0].decode())
        seen = Observation(verdict, _epoch(list(reply[1:])))
        if self.per_shard:
            await self._copy(seen.epoch.epoch, (await self._epochs())[1])
        return seen

    async def _epochs(self) -> tuple[str | None, list[str | None]]:
        """The marker's epoch and, with `per_shard`, each shard's copy (None: absent)."""
        if not self.per_shard:
            return _text(await self.redis.hget(self.keys.state, "epoch")), []
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hget(self.keys.state, "epoch")
            for shard in range(self.keys.shards):
                pipe.get(self.keys.shard_state(shard))
            replies = await pipe.execute()
        return _text(replies[0]), [_text(v) for v in replies[1:]]

    async def _copy(self, epoch: str, copies: list[str | None]) -> None:
        """Write `epoch` into each shard's copy that holds something else or nothing."""
        stale = [s for s, copy in enumerate(copies) if copy != epoch]
        if not stale:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for shard in stale:
                pipe.set(self.keys.shard_state(shard), epoch)
            await pipe.execute()


def _text(value: Any) -> str | None:
    return value.decode() if isinstance(value, bytes) else value
