"""The scheduler's Redis edge: couples, schedule records and timers. No planning in here."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Coroutine, Mapping, Sequence
from typing import Any, Final, Literal, NamedTuple, cast

import redis.asyncio as aioredis

from couples_nudge.common.autopipeline import AutoPipeline
from couples_nudge.common.cjson_args import escaped_array
from couples_nudge.common.keys import Keys, couple_digest
from couples_nudge.scheduler import lua

__all__ = [
    "AheadPage",
    "ApplyResult",
    "Arm",
    "Fire",
    "Fired",
    "Plan",
    "ScheduleStore",
    "TimerRow",
    "build_arm",
]

ApplyResult = Literal["applied", "stale", "erased"]
# Past every prepared step's freshness (lookahead.FRESH_MS): a counter outlives its instant's
# sending, and a replica restarted later finds it spent and leaves the instant to `tick`.
CLAIM_TTL_MS = 60_000


def _json(strings: list[str]) -> bytes:
    """`strings` as one JSON array, UTF-8: APPLY_PLAN's variable arguments (lua.APPLY_PLAN
    decodes it with cjson; services/common/cjson_args.py: why one argument, and the invariant).

    A realistic couple's call had 40 arguments besides its keys, now one (48 -> 9 packed:
    90.1k -> 57.3k instructions for `_apply_call` and the packing, callgrind). The strings are
    joined by '","' as they are when all are `plain`: checked on the join, which holds exactly
    its separators' quotes (2 per separator) only when no string holds one. Any other list
    (rare: a quote or backslash in a profile value) is escaped. A lone surrogate raises
    UnicodeEncodeError here, before anything is queued, so none of the batch's calls is sent.
    tests/integration/test_apply_plan_args.py holds both paths to it on the test server."""
    joined = '","'.join(strings)
    if "\\" in joined or "\x00" in joined or joined.count('"') != 2 * len(strings) - 2:
        return escaped_array(strings).encode()
    return f'["{joined}"]'.encode()


# A byte looked for as an int: `b"\n" in state` tries its needle as an int first, which for
# bytes raises a formatted TypeError and clears it (~2k instructions), once a fire ahead.
_LF = ord("\n")


class Arm(NamedTuple):
    """A schedule to store with its first timer (spec: records.encode_spec); a tuple: one is
    built per schedule planned (`build_arm` makes one from the first four fields).

    `field` and `record` are what APPLY_PLAN writes for it, always derived from the others as
    `build_arm` derives them (tests/property/test_shape_planner.py holds the planner's Arms to it):
    carried so that the shape planner builds a shape's shared texts once, not once a couple
    (a record's text cost ~2.2k instructions, the field's slice ~1.1k: issue 20)."""

    schedule_id: str  # "<couple id>/<kind code>/<target>": its timer's member
    spec: str
    nominal_ms: int
    fire_ms: int
    field: str  # its record's field in the couple hash: the schedule id after "<couple id>/"
    record: str  # a new schedule's record, "0|<nominal_ms>|<spec>" (APPLY_PLAN keeps a seq)


def build_arm(schedule_id: str, spec: str, nominal_ms: int, fire_ms: int) -> Arm:
    """An Arm with its field and record derived (a couple id has no "/": SafeId)."""
    field = schedule_id.partition("/")[2]
    return Arm(schedule_id, spec, nominal_ms, fire_ms, field, f"0|{nominal_ms}|{spec}")


class Plan(NamedTuple):
    """One couple's APPLY_PLAN arguments (see :meth:`ScheduleStore.apply_plans`)."""

    couple_id: str
    revision: int
    occurred_ms: int
    profile: Mapping[str, str]  # couple hash fields but "id": couple_state.profile_fields
    arms: Sequence[Arm]


class Fire(NamedTuple):
    """One compare-and-set step of the timer loop (a tuple: one is built per fire); lua.FIRE."""

    schedule_id: str
    expected_ms: int  # the timer's score as read
    next_fire_ms: int | None  # re-arm here (None: remove the timer)
    state: bytes | None  # the record as DUE/AHEAD read it (None: none); must still be so
    record: bytes | None  # the record to write (firing.record_after; None: leave it)
    payload: bytes | None  # the NudgeDue to publish, if any


class Fired(NamedTuple):
    """What a FIRE call did not do: the steps it `lost` (the timer had moved or was gone) and
    the `stale` ones (the score held, the record or couple fields had changed, or the instant
    was still ahead): their timers are untouched. It did all the others."""

    lost: set[str]
    stale: set[str]


class TimerRow(NamedTuple):
    """A timer as lua.DUE and lua.AHEAD return it: its schedule id, its score (the instant it
    fires, in ms) and its record's state (None: the record is gone)."""

    schedule_id: str
    score: int
    state: bytes | None


class AheadPage(NamedTuple):
    """A page of lua.AHEAD: the shard's change counter as it was read (None: none yet), and
    the timers with their records."""

    read_at: bytes | None
    rows: list[TimerRow]


# A TimerRow built by tuple.__new__ in C: TimerRow(...) runs its generated Python __new__, ~0.1 us
# a row more (a burst is 100,000 rows). TimerRow defines no __new__ of its own to skip.
_new_row: Final = tuple.__new__


class _ShardKeys(NamedTuple):
    """A shard's couple-key and parked-key prefixes and the keys APPLY_PLAN touches
    (`_shard_keys`)."""

    couple_prefix: str
    timers: str
    schedules: str
    tombstones: str
    changes: str
    parked_prefix: str


class ScheduleStore:
    def __init__(self, redis: aioredis.Redis, keys: Keys, *, due_maxlen: int) -> None:
        self.redis = redis
        self.keys = keys
        self.due_maxlen = due_maxlen
        self.pipe = AutoPipeline(redis)  # concurrent calls share round trips
        self._named: dict[int, _ShardKeys] = {}  # see _shard_keys
        self._apply = redis.register_script(lua.APPLY_PLAN)
        self._due = redis.register_script(lua.DUE)
        self._ahead = redis.register_script(lua.AHEAD)
        self._claim = redis.register_script(lua.CLAIM)
        self._lease = redis.register_script(lua.LEASE)
        self._heartbeat = redis.register_script(lua.HEARTBEAT)
        self._fire = redis.register_script(lua.FIRE)
        self._fire_ahead = redis.register_script(lua.FIRE_AHEAD)
        self._erase = redis.register_script(lua.ERASE)
        self._set_if_newer = redis.register_script(lua.SET_IF_NEWER)
        self._jar_add = redis.register_script(lua.JAR_ADD)
        self._jar_remove = redis.register_script(lua.JAR_REMOVE)

    async def apply_plan(self, plan: Plan) -> ApplyResult:
        """One couple's APPLY_PLAN (through the shared pipeline, like `apply_plans`)."""
        (result,) = await self.apply_plans([plan])
        return result

    def apply_plans(self, plans: Sequence[Plan]) -> Coroutine[Any, Any, list[ApplyResult]]:
        """Many couples' APPLY_PLAN calls in one pipelined round trip, in order: queued on the
        shared pipeline before this returns (`self.pipe.sent()` tells when they are on the
        wire); await the result for each couple's outcome."""
        calls = [self._apply_call(*plan) for plan in plans]
        return _decoded(self.pipe.script_many(self._apply, calls))

    def _apply_call(
        self,
        couple_id: str,
        revision: int,
        occurred_ms: int,
        profile: Mapping[str, str],
        arms: Sequence[Arm],
    ) -> tuple[list[str], list[str | int | bytes]]:
        # Keys.shard_of, written out (a call frame a couple less, ~1k instructions; as
        # Keys.delivery_keys does): tests/unit/test_scheduler_store.py compares the two.
        shard = zlib.crc32(couple_id.encode()) % self.keys.shards
        # lua.APPLY_PLAN's one argument, as a JSON array of strings (`_json`); each int as the
        # text hiredis sent for it (an f-string of an exact int is its str, without a call).
        rest: list[str] = [
            f"{revision}",
            f"{occurred_ms}",
            couple_digest(couple_id),
            couple_id,
            f"{len(arms)}",
        ]
        for item in profile.items():
            rest += item
        fires: list[str] = []
        for schedule_id, _spec, _nominal_ms, fire_ms, field, record in arms:
            rest += (field, record)
            fires += (f"{fire_ms}", schedule_id)
        rest += fires
        args: list[str | int | bytes] = [_json(rest)]
        # The shard's keys by one dict read, `_shard_keys` (its frame, ~0.7k) only to name them.
        named = self._named.get(shard)
        if named is None:
            named = self._shard_keys(shard)
        prefix, timers, schedules, tombstones, changes, parked = named
        return [
            prefix + couple_id,
            timers,
            schedules,
            tombstones,
            changes,
            parked + couple_id,
        ], args

    def _shard_keys(self, shard: int) -> _ShardKeys:
        """A shard's key prefixes and the keys APPLY_PLAN touches, named once."""
        named = self._named.get(shard)
        if named is None:
            keys = self.keys
            named = self._named[shard] = _ShardKeys(
                keys.couple_prefix(shard),
                keys.timers(shard),
                keys.schedules(shard),
                keys.tombstones(shard),
                keys.changes(shard),
                keys.parked_prefix(shard),
            )
        return named

    async def erase(self, couple_id: str, *, occurred_ms: int, retention_ms: int) -> None:
        shard = self.keys.shard_of(couple_id)
        await self._erase(
            keys=[
                self.keys.couple(couple_id),
                self.keys.timers(shard),
                self.keys.schedules(shard),
                self.keys.tombstones(shard),
                self.keys.changes(shard),
                *self.keys.couple_keys(couple_id)[1:],
            ],
            args=[couple_digest(couple_id), occurred_ms, retention_ms, couple_id],
        )

    async def trim_tombstones(self, shards: Sequence[int], before_ms: int) -> None:
        """Forget the shards' erasures at or before `before_ms` (ERASE trims its own shard's
        so when it erases: a shard without another erasure kept its last ones for ever)."""
        trims = [self.keys.tombstones(s) for s in shards]
        await asyncio.gather(*(self.redis.zremrangebyscore(k, "-inf", before_ms) for k in trims))

    async def set_if_newer(
        self, couple_id: str, field: str, occurred_ms: int, value: str, *, park: bool = False
    ) -> int:
        """1 written, 0 older than the stored value, -1 unknown couple, -2 erased after the
        event occurred, -3 parked: `park`ed for a couple that does not exist yet, for its
        preferences.set to take (lua.SET_IF_NEWER)."""
        shard = self.keys.shard_of(couple_id)
        keys = [self.keys.couple(couple_id), self.keys.changes(shard), self.keys.tombstones(shard)]
        args: list[str | int] = [field, occurred_ms, value, couple_digest(couple_id)]
        if park:
            keys.append(self.keys.parked(couple_id))
            args.append(lua.PARKED_TTL_MS)
        return int(await self._set_if_newer(keys=keys, args=args))

    async def jar_add(
        self,
        couple_id: str,
        idea_id: str,
        entry: str,
        *,
        added_by: str,
        occurred_ms: int,
        limit: int,
    ) -> str:
        """One idea into the couple's date jar (see lua.JAR_ADD for what it returns)."""
        shard = self.keys.shard_of(couple_id)
        done = await self._jar_add(
            keys=[
                self.keys.couple(couple_id),
                self.keys.jar(couple_id),
                self.keys.tombstones(shard),
            ],
            args=[idea_id, entry, limit, couple_digest(couple_id), occurred_ms, added_by],
        )
        return cast("bytes", done).decode()

    async def jar_remove(self, couple_id: str, idea_id: str) -> str:
        """One idea out of the couple's date jar: "removed" or "absent"."""
        done = await self._jar_remove(
            keys=[self.keys.jar(couple_id), self.keys.jar_draws(couple_id)], args=[idea_id]
        )
        return cast("bytes", done).decode()

    async def due_records(
        self, shard: int, now_ms: int, limit: int, *, pick: int = 0
    ) -> list[TimerRow]:
        """Up to `limit` due timers with their records (one round trip); see lua.DUE."""
        return _triples(
            await self._due(
                keys=[self.keys.timers(shard), self.keys.schedules(shard)],
                args=[now_ms, limit, pick, self.keys.couple_prefix(shard)],
            )
        )

    async def ahead_records(
        self, shard: int, after_ms: int, horizon_ms: int, limit: int, *, cursor: str = ""
    ) -> AheadPage:
        """Up to `limit` timers with after_ms < score <= horizon_ms and their records, in the
        zset's order after the member `cursor`, and the change counter they were read at (see
        lua.AHEAD)."""
        keys = [self.keys.timers(shard), self.keys.schedules(shard), self.keys.changes(shard)]
        read_at, *rows = cast(
            "list[Any]",
            await self._ahead(
                keys=keys,
                args=[after_ms, horizon_ms, limit, self.keys.couple_prefix(shard), cursor],
            ),
        )
        return AheadPage(read_at or None, _triples(rows))

    async def due(self, shard: int, now_ms: int, limit: int) -> list[tuple[str, int]]:
        rows = cast(
            "list[tuple[bytes, float]]",
            await self.redis.zrangebyscore(
                self.keys.timers(shard), "-inf", now_ms, start=0, num=limit, withscores=True
            ),
        )
        return [(sid.decode(), int(score)) for sid, score in rows]

    async def fire(
        self, shard: int, steps: Sequence[Fire], now_ms: int, *, read_at: bytes | None = None
    ) -> Fired:
        """Compare-and-set each step at `now_ms` (see lua.FIRE): what it lost or found stale.
        `read_at`: the change counter when every step's state was read (AHEAD's), if known:
        steps of one score, each read from its couple hash, then go through lua.FIRE_AHEAD
        without their states, and through lua.FIRE only if the counter has moved since."""
        if not steps:
            return Fired(set(), set())
        if read_at is not None:
            done = await self._fired_ahead(shard, steps, now_ms, read_at)
            if done is not None:
                return done
        args: list[str | int | bytes] = [
            self.due_maxlen,
            self.keys.couple_prefix(shard),
            now_ms,
            read_at or b"",
        ]
        for sid, expected, next_fire, state, record, payload in steps:
            args += (
                sid,
                expected,
                "" if next_fire is None else next_fire,
                state or b"",
                record or b"",
                payload or b"",
            )
        lost, stale = await self._fire(
            keys=[
                self.keys.timers(shard),
                self.keys.schedules(shard),
                self.keys.due(shard),
                self.keys.changes(shard),
            ],
            args=args,
        )
        return Fired({sid.decode() for sid in lost}, {sid.decode() for sid in stale})

    async def _fired_ahead(
        self, shard: int, steps: Sequence[Fire], now_ms: int, read_at: bytes
    ) -> Fired | None:
        """lua.FIRE_AHEAD, when every step has one expected score and a state read from a couple
        hash (prepared steps do); None when it did nothing (the counter moved) or does not fit."""
        expected = steps[0].expected_ms
        args: list[str | int | bytes] = [
            self.due_maxlen,
            self.keys.couple_prefix(shard),
            now_ms,
            read_at,
            expected,
        ]
        # By next fire and record field, in order; each step as its couple id (lua.FIRE_AHEAD
        # rebuilds the schedule id), split where lua's state_of splits it: at the first "/".
        groups: dict[tuple[int | None, str], list[str | bytes]] = {}
        for sid, score, next_fire, state, record, payload in steps:
            couple, slash, field = sid.partition("/")
            if score != expected or state is None or _LF not in state or not slash:
                return None
            groups.setdefault((next_fire, field), []).extend(
                (couple, record or b"", payload or b"")
            )
        for (next_fire, field), triples in groups.items():
            args += ("" if next_fire is None else next_fire, field, len(triples) // 3, *triples)
        keys = [self.keys.timers(shard), self.keys.due(shard), self.keys.changes(shard)]
        done = await self._fire_ahead(keys=keys, args=args)
        if done is None:
            return None
        lost, stale = done
        return Fired({sid.decode() for sid in lost}, {sid.decode() for sid in stale})

    async def claim_chunk(self, shard: int, instant_ms: int) -> int:
        """The next chunk (0, 1, ...) of the instant's prepared fires for this replica to send:
        replicas count them off one counter, so each chunk goes out once (timer_loop)."""
        keys = [self.keys.ahead_claims(shard, instant_ms)]
        return int(await self._claim(keys=keys, args=[CLAIM_TTL_MS]))

    async def leases(self, shards: Sequence[int], holder: str, ttl_ms: int) -> list[bool]:
        """Take or renew each shard's firing lease for `holder` (ttl_ms 0: give it up), in one
        round trip; whether `holder` now holds each (see lua.LEASE, leases.py)."""
        calls = [([self.keys.fire_lease(shard)], [holder, ttl_ms]) for shard in shards]
        return [bool(held) for held in await self.pipe.script_many(self._lease, calls)]

    async def heartbeat(self, holder: str, ttl_ms: int) -> int:
        """Say `holder` is alive (ttl_ms 0: leaving); how many scheduler replicas are (by the
        server's clock: lua.HEARTBEAT)."""
        live = await self.pipe.script(self._heartbeat, [self.keys.schedulers], [holder, ttl_ms])
        return int(live)

    async def count_due(self, shard: int, from_ms: int, to_ms: int) -> int:
        """How many of the shard's timers are due from `from_ms` to `to_ms`, both included."""
        return int(await self.redis.zcount(self.keys.timers(shard), from_ms, to_ms))

    async def next_due_ms(self, shard: int) -> int | None:
        head = await self.redis.zrange(self.keys.timers(shard), 0, 0, withscores=True)
        return int(head[0][1]) if head else None


async def _decoded(replies: Awaitable[list[Any]]) -> list[ApplyResult]:
    decoded: list[Any] = [reply.decode() for reply in await replies]  # no cast() call per reply
    return decoded


def _triples(reply: object) -> list[TimerRow]:
    """DUE's and AHEAD's flat reply: schedule id, score (an integer), state or None; ..."""
    rows = iter(cast("list[Any]", reply))
    return [
        _new_row(TimerRow, (sid.decode(), score, state))
        for sid, score, state in zip(rows, rows, rows, strict=True)
    ]
