"""Auto-pipelining: Redis commands issued by concurrent coroutines share round trips.

A notifier handles many nudges at once, each doing a few small Redis calls in sequence (load,
reserve a slot, record, publish, ack). One round trip per call costs ~0.3-1 ms of client CPU
and latency, which capped the notifier at a few hundred nudges a second. With an
`AutoPipeline`, each call is queued and a single flusher sends everything queued so far as one
non-transactional pipeline; calls made while that pipeline is in flight go in the next one
("group commit"). Under load the pipelines grow by themselves; when idle a call goes out at
once, after one event-loop turn. Each caller still awaits its own reply, in order, with its
own error: nothing about a call's meaning changes, only how it travels.

Acknowledgements (`ack`) of one stream and group waiting for the same round trip travel as one
XACK with all their entry ids: one command per stream and round trip instead of one per entry.
Invariant: this changes nothing about when an entry is acknowledged (each is queued only once
its caller's work is done, and goes out in the next round trip, as its own XACK would have),
and the one reply answers each caller alike (an error reply fails them all, as it would have
failed each of them alone: same stream, same group). Each caller still has its own future,
except with `ack_unawaited`: a caller whose work is durable queues the id and goes on without
waiting for the reply (no future, no wake-up per entry); a failed XACK is then one warning line
for the ids nobody awaited, which stay pending (handled again: at-least-once).

Scripts travel as EVALSHA. A NOSCRIPT reply (a restarted or failed-over server, a cluster
node that never ran the script) is answered by the flusher: the call goes again, in its next
round trip, as EVAL with the script's body, which also caches the script on that server, with
the caller's own future; so `script` is a plain function returning that future (no coroutine
frame of its own to resume on every reply).

On one server the batch is packed by hiredis (C) and written on a pooled redis-py connection,
and its replies are taken from that connection's hiredis reader in one loop (redis-py reads
one reply per awaited call, each with its own timeout scope; its pure-Python packing had
taken half of the pipeline's CPU). Replies come raw (no redis-py response callbacks: HGETALL
is a flat list, SET is b"OK").
A lost connection is retried with backoff for several seconds, as redis-py's own pipelines do
with a retry policy (so a command may run twice after a reconnect: every script here is
idempotent, and an outcome XADD twice is the at-least-once our consumers already handle).

On a cluster the same fast path runs per primary (`_execute_on_nodes`): each command whose
one key we can read (a script's first key, or the key of a single-key command we know) goes
to the primary serving that key's slot in redis-py's slot map, packed by hiredis with the
other commands for that primary, every primary's round trip at once (all written, then all
read: no task per primary). What that cannot place
or that a node turns away (no known key, a slot not covered, MOVED, ASK, TRYAGAIN,
CLUSTERDOWN, READONLY after a failover, a lost connection) goes through redis-py's
ClusterPipeline, which follows redirects and refreshes the slot map: the invariant is that a
command redirected or unanswered either did not run or is one of the idempotent commands the
retry above may already run twice. redis-py's ClusterPipeline had cost the notifier ~1.5x the
CPU per nudge of one server (pure-Python packing and routing per command).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final

import redis.asyncio as aioredis
import structlog
from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    ReadOnlyError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from couples_nudge.common.packing import pack

__all__ = ["AutoPipeline", "read_replies", "send_packed"]

log = structlog.get_logger()

_SLOT_CACHE: Final = 65_536  # keys whose slot is remembered (`AutoPipeline._slot_of`)
MAX_BATCH: Final = 1000  # commands per pipeline; more wait for the next one
# Commands with exactly one key, the first argument: routed by it on a cluster.
_KEYED: Final = frozenset(
    {"XADD", "XACK", "XCLAIM", "XLEN", "HDEL", "HSET", "HGET", "HGETALL", "ZADD", "ZREM", "ZSCORE"}
)
_SCRIPTS: Final = frozenset({"EVAL", "EVALSHA"})
# Futures made as `asyncio.Future()`: the running loop found in C, not `loop.create_future()`,
# which on uvloop is `Future(loop=self)`, a keyword dict per future (2.3k -> 1.2k instructions,
# callgrind; ~8 futures a nudge). The same class on the same loop; like `get_running_loop`,
# only from inside the running loop, where every caller here is.
_Future: Final = asyncio.Future
# A node's answer that the command belongs elsewhere (or nowhere, for now): ClusterPipeline's job.
_ELSEWHERE: Final = (MovedError, AskError, TryAgainError, ClusterDownError, ReadOnlyError)


@dataclass(slots=True)
class _Acks:
    """Entry ids of one stream and group to acknowledge, queued as one XACK (`ack`)."""

    head: tuple[str, str, str]  # "XACK", stream, group
    ids: list[str]
    callers: list[asyncio.Future[Any]]
    unawaited: int = 0  # ids queued by `ack_unawaited`: no caller of theirs hears the reply

    def command(self) -> tuple[Any, ...]:
        return (*self.head, *self.ids)

    def answer(self, shared: asyncio.Future[Any]) -> None:
        """The XACK's reply (or error) to every caller still waiting; a failure of ids
        nobody waits for is a warning line (they stay pending: the Reclaimer's)."""
        error = None if shared.cancelled() else shared.exception()
        if error is not None and self.unawaited:
            log.warning(
                "xack_failed_entries_stay_pending",
                stream=self.head[1],
                entries=self.unawaited,
                error=type(error).__name__,
            )
        for caller in self.callers:
            if caller.done():
                continue
            if shared.cancelled():
                caller.cancel()
            elif error is not None:
                caller.set_exception(error)
            else:
                caller.set_result(shared.result())


class AutoPipeline:
    def __init__(
        self, redis: aioredis.Redis, *, max_batch: int = MAX_BATCH, retries: int = 12
    ) -> None:
        self.redis = redis
        self.max_batch = max_batch
        self._cluster = isinstance(redis, RedisCluster)
        self._queue: list[tuple[tuple[Any, ...] | _Acks, asyncio.Future[Any]]] = []
        self._acks: dict[tuple[str, str], _Acks] = {}  # XACKs still queued, by (stream, group)
        self._flusher: asyncio.Task[None] | None = None
        self._bodies: dict[
            str, str | bytes | memoryview
        ] = {}  # sha -> script (EVAL for ClusterPipeline)
        # 12: ~8 s of reconnect attempts, longer than a restart from AOF or a promotion.
        self.retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=retries)
        self.round_trips = 0  # pipelines sent (for tests and benchmarks)
        self.commands = 0
        self.rerouted = 0  # on a cluster: commands sent through ClusterPipeline instead
        self._queued = 0  # commands ever queued; those up to _written are on the wire (or failed)
        self._written = 0
        self._waiting: list[tuple[int, asyncio.Future[None]]] = []  # see `sent`
        self._slots: dict[Any, int] = {}  # key -> hash slot (`_slot_of`)

    def call(self, *args: Any) -> asyncio.Future[Any]:
        """Queue one command (e.g. "HGETALL", key); await the result to get its reply."""
        future: asyncio.Future[Any] = _Future()
        # `_enqueue` of one entry, written out: a nudge queues ~7 commands through here.
        self._queue.append((args, future))
        self._queued += 1
        if self._flusher is None or self._flusher.done():
            self._start_flusher()
        return future

    def _enqueue(self, entries: list[tuple[tuple[Any, ...] | _Acks, asyncio.Future[Any]]]) -> None:
        """Queue commands with their futures; start a flusher unless one is running."""
        self._queue += entries
        self._queued += len(entries)
        if entries and (self._flusher is None or self._flusher.done()):
            self._start_flusher()

    def _start_flusher(self) -> None:
        self._flusher = asyncio.create_task(self._flush(), name="autopipeline-flush")

    def ack(self, stream: str, group: str, entry_id: str) -> asyncio.Future[Any]:
        """XACK one entry, in one command with the stream's other acknowledgements queued for
        the same round trip (see the module docstring); await for that XACK's reply."""
        mine: asyncio.Future[Any] = _Future()
        acks = self._acks_of(stream, group)
        acks.ids.append(entry_id)
        acks.callers.append(mine)
        return mine

    def ack_unawaited(self, stream: str, group: str, entry_id: str) -> None:
        """`ack` for a caller that does not wait for the reply: no future of its own. Its
        work is durable already (the only condition to acknowledge); if the XACK fails, the
        entry stays pending (handled again: at-least-once) and one warning line says how
        many entries the failed XACK held. `drain` waits for it like for any command."""
        acks = self._acks_of(stream, group)
        acks.ids.append(entry_id)
        acks.unawaited += 1

    def _acks_of(self, stream: str, group: str) -> _Acks:
        """The XACK of (stream, group) queued for the next round trip, queued now if none."""
        acks = self._acks.get((stream, group))
        if acks is None:
            acks = self._acks[(stream, group)] = _Acks(("XACK", stream, group), [], [])
            shared: asyncio.Future[Any] = _Future()
            shared.add_done_callback(acks.answer)
            self._enqueue([(acks, shared)])
        return acks

    def script(
        self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]
    ) -> asyncio.Future[Any]:
        """Run a registered Lua script through the shared pipeline; await the result for its
        reply. A plain function: the flusher answers a NOSCRIPT itself (`_flush`), so every
        await of a script is one coroutine frame shorter. EVALSHA, its body remembered for a
        NOSCRIPT (`_forgotten`). `call`'s body, written out: four scripts a nudge, and a
        call with unpacked arguments is a frame and a tuple more each."""
        sha = script.sha
        self._bodies[sha] = script.script
        future: asyncio.Future[Any] = _Future()
        self._queue.append((("EVALSHA", sha, len(keys), *keys, *args), future))
        self._queued += 1
        if self._flusher is None or self._flusher.done():
            self._start_flusher()
        return future

    def script_many(
        self, script: AsyncScript, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]
    ) -> Coroutine[Any, Any, list[Any]]:
        """Run a script once per (keys, args), queued together at once (before this returns:
        see `sent`) and so sent in order in as few round trips as the batch limit allows; await
        the result for the replies in order. The first error raises (after every call has been
        answered), as a redis-py pipeline's execute() does."""
        self._bodies[script.sha] = script.script
        head = ("EVALSHA", script.sha)  # as `script`, each command built once, queued as is
        futures: list[asyncio.Future[Any]] = [_Future() for _ in calls]
        self._enqueue(
            [
                ((*head, len(keys), *keys, *args), future)
                for (keys, args), future in zip(calls, futures, strict=True)
            ]
        )
        return self._script_replies(futures)

    @staticmethod
    async def _script_replies(futures: list[asyncio.Future[Any]]) -> list[Any]:
        replies = await _in_order(futures)  # a NOSCRIPT was answered by the flusher
        for reply in replies:
            if isinstance(reply, BaseException):
                raise reply
        return replies

    def _forgotten(self, args: tuple[Any, ...] | _Acks, reply: Exception) -> tuple[Any, ...] | None:
        """A call the server answered NOSCRIPT (a restart, a failover, another cluster node),
        as EVAL with the script's body: sent again by the flusher with the caller's future (so
        the caller never sees it), and cached by the server that runs it. None for any other
        error reply (the caller gets it)."""
        if not isinstance(reply, NoScriptError) or isinstance(args, _Acks) or args[0] != "EVALSHA":
            return None
        body = self._bodies.get(args[1])
        return None if body is None else ("EVAL", body, *args[2:])

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # one loop turn: let the coroutines that are ready queue theirs
        while self._queue:
            batch = self._queue[: self.max_batch]
            del self._queue[: self.max_batch]
            self._acks.clear()  # those taken are complete: later ones go in a new XACK
            upto = self._written + len(batch)
            commands = [args.command() if isinstance(args, _Acks) else args for args, _ in batch]
            try:
                replies = await self._execute(commands, upto)
            except Exception as exc:  # the whole round trip failed: every caller sees why
                self._wrote(upto)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.round_trips += 1
            self.commands += len(batch)
            again: list[tuple[tuple[Any, ...] | _Acks, asyncio.Future[Any]]] = []
            for (args, future), reply in zip(batch, replies, strict=True):
                if future.done():  # the caller was cancelled meanwhile
                    continue
                if isinstance(reply, Exception):
                    retry = self._forgotten(args, reply)
                    if retry is None:
                        future.set_exception(reply)
                    else:
                        again.append((retry, future))
                else:
                    future.set_result(reply)
            if again:
                self._enqueue(again)  # in the next round trip of this loop

    async def sent(self) -> None:
        """Wait until every command queued so far is written to Redis (or its round trip has
        failed), not for the replies: a producer can then prepare the next batch while Redis
        runs this one (queueing is synchronous: `call`, `script_many`)."""
        if self._written >= self._queued:
            return
        waiter: asyncio.Future[None] = _Future()
        self._waiting.append((self._queued, waiter))
        await waiter

    def _wrote(self, upto: int) -> None:
        """Commands up to number `upto` are on the wire (or failed): wake who waits for them."""
        self._written = max(self._written, upto)
        still: list[tuple[int, asyncio.Future[None]]] = []
        for target, waiter in self._waiting:
            if target > self._written:
                still.append((target, waiter))
            elif not waiter.done():
                waiter.set_result(None)
        self._waiting = still

    async def _execute(self, commands: list[tuple[Any, ...]], upto: int) -> list[Any]:
        if self._cluster:
            self._wrote(upto)  # written and read in one call per node: as good as sent
            return await self._execute_on_nodes(commands)
        packed = b"".join([pack(args) for args in commands])
        pool = self.redis.connection_pool

        async def round_trip() -> list[Any]:
            connection = await pool.get_connection()  # type: ignore[no-untyped-call]
            try:
                await send_packed(connection, packed)
                self._wrote(upto)
                return await read_replies(connection, len(commands))
            except BaseException:
                await _drop(connection)  # replies may be left unread: never reuse it as is
                raise
            finally:
                await pool.release(connection)

        async def failed(_: Exception) -> None:
            return None  # round_trip already dropped the connection

        # A connection lost to a server restart or failover is retried with backoff, not failed
        # at once: a send already made must get its record once Redis is back.
        done: list[Any] = await self.retry.call_with_retry(round_trip, failed)
        return done

    async def _execute_on_nodes(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """A cluster's batch: per primary on the fast path, the rest through ClusterPipeline
        (see the module docstring)."""
        assert isinstance(self.redis, RedisCluster)
        await self.redis.initialize()  # the slot map: loaded once, refreshed when asked for
        nodes = self.redis.nodes_manager
        groups: dict[str, _NodeBatch] = {}
        rest: list[int] = []
        for i, args in enumerate(commands):
            key = _only_key(args)
            try:
                if key is None:
                    raise SlotNotCoveredError("no key to route by")
                node = nodes.get_node_from_slot(self._slot_of(key))
            except SlotNotCoveredError:
                rest.append(i)
                continue
            batch = groups.get(node.name)
            if batch is None:
                batch = groups[node.name] = _NodeBatch(node, [])
            batch.indexes.append(i)
        answers = await _node_round_trips(
            [_NodeTrip(b.node, [commands[i] for i in b.indexes]) for b in groups.values()]
        )
        replies: list[Any] = [None] * len(commands)
        for batch, answer in zip(groups.values(), answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, Exception):
                    raise answer  # cancelled: not for ClusterPipeline to retry
                rest += batch.indexes  # may have run: the retry's at-least-once
                continue
            for i, reply in zip(batch.indexes, answer, strict=True):
                if isinstance(reply, _ELSEWHERE):
                    rest.append(i)
                else:
                    replies[i] = reply
        if rest:
            rest.sort()
            self.rerouted += len(rest)
            again = await self._cluster_pipeline([commands[i] for i in rest])
            for i, reply in zip(rest, again, strict=True):
                replies[i] = reply
        return replies

    def _slot_of(self, key: Any) -> int:
        """The key's hash slot, remembered: a pure function of the key's bytes (its hash tag's
        CRC16), so a cached slot is never stale; which primary serves it is asked of the slot
        map each time. A nudge routes ~8 keys, mostly its couple's and the same few streams:
        redis-py's encode + CRC + wrappers cost ~1.5 us a key. Bounded: cleared when full."""
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) >= _SLOT_CACHE:
                self._slots.clear()
            assert isinstance(self.redis, RedisCluster)
            slot = self._slots[key] = self.redis.keyslot(key)
        return slot

    async def _cluster_pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """redis-py's ClusterPipeline: redirects followed, the slot map refreshed. Scripts go
        as EVAL with their body there (a node it lands on may not know them)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for args in commands:
                if args[0] == "EVALSHA" and args[1] in self._bodies:
                    args = ("EVAL", self._bodies[args[1]], *args[2:])
                pipe.execute_command(*args)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies

    async def drain(self) -> None:
        """Wait until every queued command has been sent and answered."""
        while self._flusher is not None and not self._flusher.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._flusher)


async def _in_order(futures: list[asyncio.Future[Any]]) -> list[Any]:
    """The replies of calls queued one after another, an error reply or a failed round trip
    as its value (as `asyncio.gather(..., return_exceptions=True)` gives them).

    The invariant it relies on: one flusher at a time resolves the queue's futures in the
    order they were queued, so once the last of a run of calls is done, so is every one
    before it: awaiting the last is awaiting all, without gather's callback per future (~1 us
    a call, measured: a tenth of the ingestion path's pipeline work). Should one still be
    pending (a call answered NOSCRIPT goes again in a later round trip: `_forgotten`), the
    rest are awaited with gather. Cancelled, the
    calls are cancelled with the caller, as gather's would be (the flusher skips them).
    """
    if not futures:
        return []
    try:
        await asyncio.wait([futures[-1]])
    except asyncio.CancelledError:
        for future in futures:
            future.cancel()
        raise
    if not all(future.done() for future in futures):
        return await asyncio.gather(*futures, return_exceptions=True)
    return [_outcome(future) for future in futures]


def _outcome(future: asyncio.Future[Any]) -> Any:
    """A done future's result, or its error (a CancelledError if it was cancelled)."""
    if future.cancelled():
        return asyncio.CancelledError()
    return future.exception() or future.result()


@dataclass(slots=True)
class _NodeBatch:
    """The commands of one round trip that go to one cluster primary."""

    node: ClusterNode
    indexes: list[int]  # positions in the batch, in order


def _only_key(args: tuple[Any, ...]) -> Any | None:
    """The key that routes a command on a cluster: a script's first key (all of a call's
    keys share one slot: one couple's hash tag), or the key of a known single-key command."""
    name = args[0]
    if name in _SCRIPTS:
        return args[3] if int(args[2]) > 0 else None
    return args[1] if name in _KEYED else None


@dataclass(slots=True)
class _NodeTrip:
    """One primary's share of a batch: its commands, then the connection they went out on."""

    node: ClusterNode
    commands: list[tuple[Any, ...]]
    connection: Connection | None = None  # set once sent; None again once read


async def _node_round_trips(trips: list[_NodeTrip]) -> list[list[Any] | Exception]:
    """One pipeline per primary, packed by hiredis: every primary's batch is written first,
    then each one's replies are read, so the primaries work at once without a task per
    primary (`gather` made one each: their scheduling and extra event-loop turns; with
    `_slot_of`, a flush of 12 commands over 3 primaries went from 1.01M to 0.84M client
    instructions, callgrind). Replies raw, a command's error reply its value; a primary's
    failed round trip is its answer (an Exception) and drops its connection, the others'
    answers stand. Cancelled, every connection with replies unread is dropped."""
    answers: list[list[Any] | Exception] = []
    try:
        for trip in trips:
            try:
                await _send_on(trip)
            except Exception as exc:
                answers.append(exc)
            else:
                answers.append([])
        for i, trip in enumerate(trips):
            if trip.connection is None:
                continue  # its send failed: answered above
            try:
                answers[i] = await read_replies(trip.connection, len(trip.commands))
            except Exception as exc:
                await _drop(trip.connection)
                answers[i] = exc
            _release(trip)
    finally:
        for trip in trips:  # only when cancelled (or a BaseException) mid-way
            if trip.connection is not None:
                await _drop(trip.connection)  # replies left unread: never reuse it
                _release(trip)
    return answers


async def _send_on(trip: _NodeTrip) -> None:
    connection = trip.node.acquire_connection()
    try:
        await send_packed(connection, b"".join([pack(args) for args in trip.commands]))
    except BaseException:
        await _drop(connection)
        trip.node.release(connection)
        raise
    trip.connection = connection


def _release(trip: _NodeTrip) -> None:
    if trip.connection is not None:
        trip.node.release(trip.connection)
        trip.connection = None


async def _drop(connection: AbstractConnection) -> None:
    """Close a connection a round trip failed on, without waiting for the close: a graceful
    one first flushes what is still buffered, and to a server that stopped reading that
    waited socket_connect_timeout (5 s) and then failed with a timeout of its own (redis-py
    closes this way on its own errors too)."""
    await connection.disconnect(nowait=True)


async def send_packed(connection: AbstractConnection, packed: bytes) -> None:
    """Write one packed pipeline on `connection` (connecting it first if it is not).

    redis-py's `send_packed_command` wraps the write in `asyncio.wait_for` whenever the
    connection has a socket timeout (redis-py 8 gives every connection one: 5 s), and on
    Python 3.11 `wait_for` runs its coroutine as a new task, one more event-loop turn per
    round trip. Here the write runs in the caller's task under `asyncio.timeout` (a timer,
    no task); its errors are redis-py's (a timeout, a closed connection). Like
    `read_replies`, it uses the connection's internals, kept to this function, and falls back
    to the public call where they are missing. A failed write leaves the connection unusable:
    the caller disconnects it.
    """
    write = getattr(connection, "_send_packed_command", None)
    if write is None:
        await connection.send_packed_command(packed, check_health=False)
        return
    if not connection.is_connected:
        await connection.connect()  # type: ignore[no-untyped-call]
    try:
        async with asyncio.timeout(connection.socket_timeout):
            await write([packed])
    except TimeoutError as exc:  # asyncio's, a builtin
        raise RedisTimeoutError("Timeout writing to socket") from exc
    except OSError as exc:
        raise RedisConnectionError(f"Error while writing to socket: {exc}") from exc


async def read_replies(connection: AbstractConnection, count: int) -> list[Any]:
    """The next `count` replies on `connection`; a command's error reply is its value.

    With redis-py's hiredis parser the replies are taken straight from its `hiredis.Reader`,
    reading the socket only when the reader runs dry (parser internals, kept to this function;
    the result is the same as the fallback's, and the tests run both). As with
    `read_response`, an I/O error or timeout leaves the connection unusable: the caller
    disconnects it.
    """
    parser = getattr(connection, "_parser", None)
    reader = getattr(parser, "_reader", None)
    if not isinstance(parser, _AsyncHiredisParser) or reader is None:
        return [await _read_one(connection) for _ in range(count)]
    replies: list[Any] = []
    timeout = connection.socket_timeout
    while len(replies) < count:
        reply = reader.gets()
        if reply is NOT_ENOUGH_DATA:
            try:
                async with asyncio.timeout(timeout):
                    await parser.read_from_socket()  # type: ignore[no-untyped-call]
            except TimeoutError as exc:  # asyncio's, a builtin
                raise RedisTimeoutError("Timeout reading from Redis") from exc
            except OSError as exc:
                raise RedisConnectionError(f"Error while reading from Redis: {exc}") from exc
            continue
        if isinstance(reply, RedisConnectionError):
            raise reply
        replies.append(reply)
    if connection.health_check_interval:
        loop_time = asyncio.get_running_loop().time()
        connection.next_health_check = loop_time + connection.health_check_interval
    return replies


async def _read_one(connection: AbstractConnection) -> Any:
    try:
        return await connection.read_response()
    except ResponseError as exc:  # that command's error, for its caller alone
        return exc
