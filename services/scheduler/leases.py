"""Which shards this scheduler replica fires: one lease per shard (issue 20).

Every replica used to run every shard's firing loop. In a burst Redis's one core is the limit,
and a second replica on the same shard only added work there (its own lookahead read of every
timer, batches read twice, compare-and-sets lost): two replicas were slower than one (0.87x).
Now a shard's firing loop (look ahead, send what was prepared, tick) runs in the replica that
holds the shard's lease (`<prefix>:lease:{sNN}`, in the shard's slot); the others stand by and
take the lease over when its holder stops renewing it.

The invariant this relies on: a lease decides who spends Redis's time, never what is
published. Exactly once still rests on FIRE's compare-and-set on the timer score and the
record, so two holders at once (a holder stalled past its lease, which learns it lost the lease
at its next renewal) cost time, not a duplicate; and a shard without a holder (its holder
killed) waits at most `ttl + ttl / 3` before another replica fires it, late by that much and
counted so, within every grace window (a replica not seen for a lease's time to live is no
longer counted live, so the survivors' fair shares cover its shards by then too).

Fair share: a replica holds at most ceil(shards / live replicas) leases, live replicas counted
by a heartbeat (`<prefix>:schedulers`); a replica over its share gives up the excess, so
replicas split the shards between them (on a cluster each drives its own primaries) and a
shard has one firing replica. Renewals run in a task of their own (`keep`), so a long burst
does not let the lease lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Final

import structlog
from redis.exceptions import RedisError

from couples_nudge.scheduler.store import ScheduleStore

__all__ = ["LEASE_MIN_MS", "ShardLeases", "fair_share", "lease_ms"]

log = structlog.get_logger()
LEASE_MIN_MS: Final = 2_000  # real ms: a holder killed is replaced within this and a third


def lease_ms(max_poll_seconds: float) -> int:
    """A lease's time to live: well past a renewal (every third of it), and past a timer
    loop's longest sleep, so that an idle holder keeps its shards."""
    return max(LEASE_MIN_MS, int(3_000 * max_poll_seconds))


def fair_share(shards: int, live: int) -> int:
    """The most leases one of `live` replicas holds (at least one: every shard has a taker)."""
    return -(-shards // max(1, live))


@dataclass(slots=True)
class ShardLeases:
    """This replica's leases over `shards` (in its own round order, timer_loop.shard_round)."""

    store: ScheduleStore
    shards: list[int]
    ttl_ms: int
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)
    held: set[int] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def refresh(self) -> set[int]:
        """Renew the leases held (up to the fair share), take free ones up to it, give up the
        rest; returns the shards held now."""
        live = await self.store.heartbeat(self.holder, int(time.time() * 1000), self.ttl_ms)
        share = fair_share(len(self.shards), live)
        mine = [s for s in self.shards if s in self.held]
        keep, excess = mine[:share], mine[share:]
        held = {s for s, ok in zip(keep, await self._take(keep), strict=True) if ok}
        free = [s for s in self.shards if s not in self.held]
        while free and len(held) < share:  # as many at a time as are wanted: one round trip
            batch, free = free[: share - len(held)], free[share - len(held) :]
            held.update(s for s, ok in zip(batch, await self._take(batch), strict=True) if ok)
        if excess:
            await self.store.leases(excess, self.holder, 0)
        if held != self.held:
            log.info("shard_leases", held=sorted(held), share=share, live=live)
            self.held = held
            self.changed.set()
        return held

    async def _take(self, shards: list[int]) -> list[bool]:
        return await self.store.leases(shards, self.holder, self.ttl_ms) if shards else []

    async def keep(self, stop: asyncio.Event) -> None:
        """Refresh every third of the time to live until `stop`; then give every lease up (a
        replica stopping hands its shards over at once, not after the time to live).

        A replica says it is alive a sixth of the time to live before it takes any lease, so
        that replicas started together count each other first: none takes every shard only
        to give most back at its next refresh (and its lookahead reads with them)."""
        try:
            with contextlib.suppress(RedisError):
                await self.store.heartbeat(self.holder, int(time.time() * 1000), self.ttl_ms)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.ttl_ms / 6000)
            while not stop.is_set():
                try:
                    await self.refresh()
                except RedisError as exc:  # the timer loop reports Redis errors; keep trying
                    log.debug("shard_leases_error", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.ttl_ms / 3000)
        finally:
            await self.release()

    async def release(self) -> None:
        held, self.held = self.held, set()
        with contextlib.suppress(RedisError, OSError):
            if held:
                await self.store.leases(sorted(held), self.holder, 0)
            await self.store.heartbeat(self.holder, int(time.time() * 1000), 0)
