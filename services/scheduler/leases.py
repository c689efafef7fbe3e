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
counted so, within every grace window.

Two policies (`NUDGE_LEASE_POLICY`; `auto` picks `one` on a single server, `fair` on a
cluster, `lease_policy`):

- `one`: one replica fires every shard, the others are hot standbys (they heartbeat, ingest,
  and take over). On one server every shard's commands run on the same core, so a second
  firing replica adds no throughput there, only contention for it (and for the machine's
  CPU, which Redis shares). The firer is whoever holds the lease of the lowest shard, the
  anchor: a replica takes the other shards only while it holds the anchor, and a replica
  that does not hold it holds nothing. The choice is made by Redis, atomically (LEASE reads
  and sets the key in one script), so two replicas started together cannot both win, and it
  is sticky: a replica that arrives or comes back never displaces a warm firer (its prepared
  fires, its place in the burst), unlike a rule such as "the lowest live holder id fires",
  which would hand the shards over on every restart of a lower id, with a gap in between.
  The anchor is renewed first and given up last (its expiry is the earliest of the
  firer's leases), so a replica that wins the anchor finds the others free or about to be;
  one short of shards retries every thirtieth of a lease instead of every third. Takeover:
  killed or stalled past its lease, the firer's leases lapse together and a standby's next
  refresh (every third of a lease) takes them, within `ttl + ttl / 3`; stopping, it gives
  them up (the anchor last) and a standby takes them within `ttl / 3`; a stalled firer back
  learns at its next refresh that the anchor is gone and gives the rest up at once.
- `fair`: a replica holds at most ceil(shards / live replicas) leases, live replicas counted
  by a heartbeat (`<prefix>:schedulers`; a replica not seen for a lease's time to live is no
  longer counted, so the survivors' fair shares cover its shards by the takeover bound too);
  a replica over its share gives up the excess, so replicas split the shards between them:
  on a cluster each primary is a core of its own and each replica drives some of them.

Every replica heartbeats under both. Every replica must run the same policy. Renewals run in
a task of their own (`keep`), so a long burst does not let the lease lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, Literal

import structlog
from redis.exceptions import RedisError

from couples_nudge.scheduler.store import ScheduleStore

__all__ = ["LEASE_MIN_MS", "LeasePolicy", "ShardLeases", "fair_share", "lease_ms", "lease_policy"]

log = structlog.get_logger()
LEASE_MIN_MS: Final = 2_000  # real ms: a holder killed is replaced within this and a third


class LeasePolicy(StrEnum):
    ONE = "one"  # one replica fires every shard; the others stand by
    FAIR = "fair"  # each live replica fires its fair share of the shards


def lease_policy(setting: Literal["auto", "one", "fair"], cluster: bool) -> LeasePolicy:
    """`auto`: one firer on a single server (one core for every shard), fair shares on a
    cluster (a core per primary)."""
    if setting == "auto":
        return LeasePolicy.FAIR if cluster else LeasePolicy.ONE
    return LeasePolicy(setting)


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
    policy: LeasePolicy
    holder: str = field(default_factory=lambda: uuid.uuid4().hex)
    held: set[int] = field(default_factory=set)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def anchor(self) -> int:
        """The shard whose holder fires every shard under LeasePolicy.ONE (the same for all
        replicas, whatever their round order)."""
        return min(self.shards)

    @property
    def short(self) -> bool:
        """Holding the anchor but not every shard yet (`one`: the last firer's other leases
        are about to lapse or be given up)."""
        one = self.policy is LeasePolicy.ONE
        return one and self.anchor in self.held and len(self.held) < len(self.shards)

    async def refresh(self) -> set[int]:
        """Renew the leases held, take the free ones this replica should hold, give up the
        rest (per the policy); returns the shards held now."""
        live = await self.store.heartbeat(self.holder, self.ttl_ms)
        if self.policy is LeasePolicy.ONE:
            held, share = await self._one(), len(self.shards)
        else:
            share = fair_share(len(self.shards), live)
            held = await self._fair(share)
        if held != self.held:
            log.info("shard_leases", held=sorted(held), share=share, live=live, policy=self.policy)
            self.held = held
            self.changed.set()
        return held

    async def _one(self) -> set[int]:
        anchor = self.anchor
        others = [s for s in self.shards if s != anchor]
        if anchor in self.held:  # renew the anchor first: the others expire after it
            anchor_ok, *ok = await self._take([anchor, *others])
            mine = [s for s, took in zip(others, ok, strict=True) if took]
            if not anchor_ok:  # stalled past the lease: another replica fires now
                await self._give_up(mine)
                return set()
            return {anchor, *mine}
        if not (await self._take([anchor]))[0]:
            return set()  # standing by: another replica fires every shard
        return {
            anchor,
            *(s for s, took in zip(others, await self._take(others), strict=True) if took),
        }

    async def _fair(self, share: int) -> set[int]:
        mine = [s for s in self.shards if s in self.held]
        keep, excess = mine[:share], mine[share:]
        held = {s for s, ok in zip(keep, await self._take(keep), strict=True) if ok}
        free = [s for s in self.shards if s not in self.held]
        while free and len(held) < share:  # as many at a time as are wanted: one round trip
            batch, free = free[: share - len(held)], free[share - len(held) :]
            held.update(s for s, ok in zip(batch, await self._take(batch), strict=True) if ok)
        await self._give_up(excess)
        return held

    async def _take(self, shards: list[int]) -> list[bool]:
        return await self.store.leases(shards, self.holder, self.ttl_ms) if shards else []

    async def _give_up(self, shards: list[int]) -> None:
        if shards:
            await self.store.leases(shards, self.holder, 0)

    async def keep(self, stop: asyncio.Event) -> None:
        """Refresh every third of the time to live until `stop` (every thirtieth while
        `short`); then give every lease up (a replica stopping hands its shards over at
        once, not after the time to live).

        A replica says it is alive a sixth of the time to live before it takes any lease, so
        that under `fair` replicas started together count each other first: none takes every
        shard only to give most back at its next refresh (and its lookahead reads with them).
        `one` needs no such wait (the anchor decides at once) but keeps it: both policies
        start firing alike, so that what differs between them is who fires (benchmarks
        compare a server under one with a cluster under the other)."""
        try:
            with contextlib.suppress(RedisError):
                await self.store.heartbeat(self.holder, self.ttl_ms)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.ttl_ms / 6000)
            while not stop.is_set():
                try:
                    await self.refresh()
                except RedisError as exc:  # the timer loop reports Redis errors; keep trying
                    log.debug("shard_leases_error", error=type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    period = self.ttl_ms / (30_000 if self.short else 3_000)
                    await asyncio.wait_for(stop.wait(), timeout=period)
        finally:
            await self.release()

    async def release(self) -> None:
        """Give every lease up, highest shard first: the anchor (the lowest) last, so that a
        standby that takes it finds the others free; then leave the heartbeat."""
        held, self.held = self.held, set()
        with contextlib.suppress(RedisError, OSError):
            await self._give_up(sorted(held, reverse=True))
            await self.store.heartbeat(self.holder, 0)
