"""AutoPipeline: concurrent calls share round trips, and each caller still gets its own reply."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from structlog.testing import capture_logs

from couples_nudge.common.autopipeline import AutoPipeline
from couples_nudge.embedded.valkey import EmbeddedValkey

ECHO_KEYS = "return {KEYS[1], ARGV[1]}"


@pytest.fixture(params=[_AsyncHiredisParser, _AsyncRESP2Parser], ids=["hiredis", "python"])
async def client(
    request: pytest.FixtureRequest, redis_url: str, key_prefix: str
) -> AsyncIterator[aioredis.Redis]:
    """Replies are read from hiredis's reader directly, or by redis-py's own parser. The
    test's keys (`<key_prefix>:...`) are removed afterwards."""
    connected = aioredis.Redis.from_url(redis_url, parser_class=request.param)
    yield connected
    keys = [k async for k in connected.scan_iter(match=f"{key_prefix}:*", count=1000)]
    if keys:
        await connected.delete(*keys)
    await connected.aclose()


class TestAutoPipeline:
    async def test_concurrent_calls_share_round_trips_and_keep_their_order(
        self, client: aioredis.Redis, key_prefix: str
    ) -> None:
        """500 coroutines each INCR then GET: every reply is theirs, in far fewer trips."""
        pipe = AutoPipeline(client)
        key = f"{key_prefix}:counter"

        async def one(i: int) -> tuple[int, bytes]:
            await pipe.call("SET", f"{key_prefix}:k{i}", f"v{i}")
            count = await pipe.call("INCR", key)
            value = await pipe.call("GET", f"{key_prefix}:k{i}")
            return int(count), value

        results = await asyncio.gather(*(one(i) for i in range(500)))

        assert [value for _, value in results] == [f"v{i}".encode() for i in range(500)]
        assert sorted(count for count, _ in results) == list(range(1, 501))
        assert pipe.commands == 1500
        assert pipe.round_trips <= 10  # one call at a time would take 1,500

    async def test_an_error_reaches_only_its_caller(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A WRONGTYPE reply fails that call alone; its neighbours in the pipeline succeed."""
        pipe = AutoPipeline(client)
        await redis.set(f"{key_prefix}:str", "x")
        good = pipe.call("SET", f"{key_prefix}:ok", "1")
        bad = pipe.call("LPUSH", f"{key_prefix}:str", "y")
        after = pipe.call("GET", f"{key_prefix}:ok")
        results = await asyncio.gather(good, bad, after, return_exceptions=True)
        assert results[0] == b"OK"
        assert isinstance(results[1], ResponseError)
        assert results[2] == b"1"

    async def test_scripts_run_again_after_the_server_forgot_them(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """After SCRIPT FLUSH (a restart, a failover) the NOSCRIPT reply is answered by
        calling the script again with its body."""
        pipe = AutoPipeline(client)
        script = redis.register_script(ECHO_KEYS)
        first = await pipe.script(script, [f"{key_prefix}:a"], ["1"])
        await redis.script_flush()
        again = await asyncio.gather(
            *(pipe.script(script, [f"{key_prefix}:a"], [str(i)]) for i in range(3))
        )
        assert first == [f"{key_prefix}:a".encode(), b"1"]
        assert again == [[f"{key_prefix}:a".encode(), str(i).encode()] for i in range(3)]

    async def test_a_forgotten_script_is_sent_again_with_its_body_once(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """The flusher answers a NOSCRIPT itself: the calls that met it go again as EVAL in
        the next round trip (the callers never see it) and the server caches the script, so
        the calls after them are plain EVALSHAs again."""
        pipe = AutoPipeline(client)
        script = redis.register_script(ECHO_KEYS)
        await redis.script_flush()
        replies = await asyncio.gather(
            *(pipe.script(script, [f"{key_prefix}:f"], [str(i)]) for i in range(4))
        )
        assert replies == [[f"{key_prefix}:f".encode(), str(i).encode()] for i in range(4)]
        assert (pipe.round_trips, pipe.commands) == (2, 8)  # 4 EVALSHA, then 4 EVAL
        assert await redis.script_exists(script.sha) == [True]
        assert await pipe.script(script, [f"{key_prefix}:f"], ["5"]) == [
            f"{key_prefix}:f".encode(),
            b"5",
        ]
        assert (pipe.round_trips, pipe.commands) == (3, 9)

    async def test_a_noscript_for_a_script_it_never_sent_reaches_the_caller(
        self, client: aioredis.Redis
    ) -> None:
        """Only a script whose body the pipeline holds is sent again: an EVALSHA of an
        unknown digest gets its NOSCRIPT, once."""
        pipe = AutoPipeline(client)
        with pytest.raises(NoScriptError):
            await pipe.call("EVALSHA", "0" * 40, 0)
        assert pipe.round_trips == 1

    async def test_a_lost_connection_fails_every_call_of_that_round_trip(
        self, redis_url: str, key_prefix: str
    ) -> None:
        """When the server cannot be reached, every waiting caller gets the error: none hangs."""
        unreachable = _unreachable()
        pipe = AutoPipeline(unreachable, retries=1)
        calls = [pipe.call("GET", f"{key_prefix}:{i}") for i in range(5)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(r, Exception) for r in results)
        await unreachable.aclose()

    async def test_a_dropped_connection_is_retried_like_redis_pys_own_pipelines(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """The server closes our pooled connection (as a restart or failover does): the next
        calls reconnect and succeed instead of failing their nudges."""
        client = aioredis.Redis.from_url(redis_url)
        pipe = AutoPipeline(client)
        victim = await pipe.call("CLIENT", "ID")
        killed = await redis.client_kill_filter(_id=victim)
        assert killed == 1
        replies = await asyncio.gather(
            *(pipe.call("SET", f"{key_prefix}:after{i}", i) for i in range(3))
        )
        assert replies == [b"OK"] * 3
        assert await redis.get(f"{key_prefix}:after2") == b"2"
        await client.aclose()

    async def test_a_cancelled_caller_does_not_break_the_others(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        pipe = AutoPipeline(redis)
        doomed = asyncio.ensure_future(pipe.call("SET", f"{key_prefix}:a", "1"))
        kept = pipe.call("SET", f"{key_prefix}:b", "2")
        doomed.cancel()
        assert await kept == b"OK"
        with pytest.raises(asyncio.CancelledError):
            await doomed
        await pipe.drain()
        assert await redis.get(f"{key_prefix}:b") == b"2"

    async def test_replies_larger_than_one_socket_read_arrive_whole(
        self, client: aioredis.Redis, key_prefix: str
    ) -> None:
        """1,000 replies of 1 KB each (many socket reads): every caller gets its own value."""
        pipe = AutoPipeline(client)
        values = [bytes([65 + i % 26]) * 1024 + str(i).encode() for i in range(1000)]
        await asyncio.gather(
            *(pipe.call("SET", f"{key_prefix}:v{i}", v) for i, v in enumerate(values))
        )
        got = await asyncio.gather(*(pipe.call("GET", f"{key_prefix}:v{i}") for i in range(1000)))
        assert got == values

    async def test_a_reply_that_never_comes_fails_its_callers_after_the_socket_timeout(
        self, redis_url: str, key_prefix: str
    ) -> None:
        """BLPOP on an empty list holds the reply back longer than socket_timeout allows."""
        slow = aioredis.Redis.from_url(redis_url, socket_timeout=0.2)
        pipe = AutoPipeline(slow, retries=0)
        results = await asyncio.gather(
            pipe.call("BLPOP", f"{key_prefix}:empty", 5), return_exceptions=True
        )
        assert isinstance(results[0], Exception), results
        assert "Timeout" in type(results[0]).__name__
        await slow.aclose()

    async def test_a_write_a_stopped_server_never_takes_fails_after_the_socket_timeout(
        self,
    ) -> None:
        """A server that stops reading (SIGSTOP: its socket buffers fill) fails the write of a
        pipeline larger than those buffers after socket_timeout, as a timeout (send_packed),
        not a hang; once the server runs again, the next call goes out on a new connection."""
        with EmbeddedValkey() as server:
            slow = aioredis.Redis.from_url(server.url, socket_timeout=0.5)
            pipe = AutoPipeline(slow, retries=0)
            pid = int((await slow.info("server"))["process_id"])
            os.kill(pid, signal.SIGSTOP)
            try:
                started = time.monotonic()
                results = await asyncio.wait_for(  # a write without a timeout would hang
                    asyncio.gather(
                        pipe.call("SET", "big", b"x" * 64 * 2**20), return_exceptions=True
                    ),
                    10,
                )
                waited = time.monotonic() - started
            finally:
                os.kill(pid, signal.SIGCONT)
            assert isinstance(results[0], RedisTimeoutError), results
            assert 0.4 < waited < 5, waited
            assert await pipe.call("SET", "small", "y") == b"OK"
            await slow.aclose()

    async def test_sent_returns_once_the_commands_are_written_not_answered(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A BLPOP on an empty list is held by the server: `sent` returns while its reply is
        still to come, and the server has it (a push from another client answers it)."""
        pipe = AutoPipeline(client)
        waiting = pipe.call("BLPOP", f"{key_prefix}:list", 5)
        await asyncio.wait_for(pipe.sent(), 2)
        assert not waiting.done()
        await redis.lpush(f"{key_prefix}:list", "hello")
        assert await waiting == [f"{key_prefix}:list".encode(), b"hello"]
        await pipe.sent()  # nothing queued: returns at once

    async def test_sent_returns_when_the_round_trip_fails(self, key_prefix: str) -> None:
        unreachable = _unreachable()
        pipe = AutoPipeline(unreachable, retries=0)
        call = pipe.call("GET", f"{key_prefix}:x")
        await asyncio.wait_for(pipe.sent(), 5)
        with pytest.raises(Exception, match="Connect"):
            await call
        await unreachable.aclose()

    async def test_script_many_is_queued_before_it_is_awaited(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A call queued after an un-awaited script_many runs after its scripts, in order."""
        pipe = AutoPipeline(client)
        script = redis.register_script("return redis.call('APPEND', KEYS[1], ARGV[1])")
        key = f"{key_prefix}:log"
        await redis.script_load(script.script)  # a NOSCRIPT would run the scripts again later
        scripts = pipe.script_many(script, [([key], [str(i)]) for i in range(5)])
        after = pipe.call("GET", key)
        assert await after == b"01234"
        assert await scripts == [1, 2, 3, 4, 5]


def _text(entry_id: bytes | str) -> str:
    return entry_id.decode() if isinstance(entry_id, bytes) else entry_id


class TestAck:
    """`ack`: acknowledgements of one stream and group waiting for the same round trip go as
    one XACK; each caller still awaits its own future."""

    async def _pending(self, redis: aioredis.Redis, stream: str, n: int) -> list[str]:
        await redis.xgroup_create(stream, "g", id="0", mkstream=True)
        ids = [_text(await redis.xadd(stream, {"i": i})) for i in range(n)]
        await redis.xreadgroup("g", "c", {stream: ">"}, count=n)
        return ids

    async def test_acks_queued_together_are_one_xack_per_stream(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """50 entries of one stream and 5 of another: two XACK commands, every entry
        acknowledged, every caller answered."""
        first, second = f"{key_prefix}:s1", f"{key_prefix}:s2"
        ids1, ids2 = await self._pending(redis, first, 50), await self._pending(redis, second, 5)
        pipe = AutoPipeline(client)
        replies = await asyncio.gather(
            *(pipe.ack(first, "g", i) for i in ids1), *(pipe.ack(second, "g", i) for i in ids2)
        )
        assert replies == [50] * 50 + [5] * 5  # each caller sees its XACK's count
        assert pipe.commands == 2
        assert (await redis.xpending(first, "g"))["pending"] == 0
        assert (await redis.xpending(second, "g"))["pending"] == 0

    async def test_an_ack_after_the_round_trip_left_goes_in_the_next(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """An acknowledgement queued once the XACK is on its way is a new XACK, never lost."""
        stream = f"{key_prefix}:s"
        ids = await self._pending(redis, stream, 3)
        pipe = AutoPipeline(client)
        early = pipe.ack(stream, "g", ids[0])
        await pipe.sent()  # the first XACK is written
        late = [pipe.ack(stream, "g", i) for i in ids[1:]]
        assert await early == 1
        assert await asyncio.gather(*late) == [2, 2]
        assert pipe.commands == 2
        assert (await redis.xpending(stream, "g"))["pending"] == 0

    async def test_an_error_reaches_every_merged_caller_and_a_cancelled_one_alone(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """XACK on a key that is not a stream fails each of its callers; cancelling one
        caller leaves the others' futures and the command as they were."""
        await redis.set(f"{key_prefix}:str", "x")
        stream = f"{key_prefix}:s"
        ids = await self._pending(redis, stream, 3)
        pipe = AutoPipeline(client)
        bad = [pipe.ack(f"{key_prefix}:str", "g", "1-0") for _ in range(2)]
        doomed = pipe.ack(stream, "g", ids[0])
        kept = [pipe.ack(stream, "g", i) for i in ids[1:]]
        doomed.cancel()
        for failed in bad:
            with pytest.raises(ResponseError, match="WRONGTYPE"):
                await failed
        assert await asyncio.gather(*kept) == [3, 3]
        assert (await redis.xpending(stream, "g"))["pending"] == 0

    async def test_unawaited_acks_join_the_awaited_ones_and_a_failure_is_one_warning(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Acknowledgements nobody awaits travel in the stream's one XACK with the awaited
        ones and are done once drained; an XACK that fails is one warning line with how many
        unawaited entries it held (they stay pending)."""
        stream = f"{key_prefix}:s"
        ids = await self._pending(redis, stream, 4)
        pipe = AutoPipeline(client)
        for i in ids[:3]:
            pipe.ack_unawaited(stream, "g", i)
        assert await pipe.ack(stream, "g", ids[3]) == 4
        assert pipe.commands == 1
        assert (await redis.xpending(stream, "g"))["pending"] == 0
        await redis.set(f"{key_prefix}:str", "x")
        with capture_logs() as logs:
            pipe.ack_unawaited(f"{key_prefix}:str", "g", "1-0")
            pipe.ack_unawaited(f"{key_prefix}:str", "g", "2-0")
            await pipe.drain()
        assert [(e["event"], e["entries"], e["error"]) for e in logs] == [
            ("xack_failed_entries_stay_pending", 2, "ResponseError")
        ]

    async def test_script_many_spanning_round_trips_answers_every_call_in_order(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """A run of calls longer than one round trip, after the server forgot the script:
        every reply in order, and the first error reply raises once all are answered."""
        pipe = AutoPipeline(client, max_batch=7)
        script = redis.register_script(ECHO_KEYS)
        await redis.script_flush()  # the run meets NOSCRIPT: called again with the body
        calls = [([f"{key_prefix}:k{i}"], [str(i)]) for i in range(20)]
        replies = await pipe.script_many(script, calls)
        assert replies == [[f"{key_prefix}:k{i}".encode(), str(i).encode()] for i in range(20)]
        assert pipe.round_trips >= 3

        failing = redis.register_script("if ARGV[1] == '3' then error('three') end return 1")
        await redis.script_load(failing.script)
        with pytest.raises(ResponseError, match="three"):
            await pipe.script_many(failing, [([f"{key_prefix}:f"], [str(i)]) for i in range(9)])
        await pipe.drain()

    async def test_a_cancelled_script_many_cancels_its_calls(
        self, client: aioredis.Redis, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """Cancelling the caller of a run cancels its calls (as gather did); the pipeline
        still answers whoever comes next."""
        pipe = AutoPipeline(client)
        script = redis.register_script(ECHO_KEYS)
        await redis.script_load(script.script)
        waiting = asyncio.ensure_future(
            pipe.script_many(script, [([f"{key_prefix}:c"], [str(i)]) for i in range(5)])
        )
        await asyncio.sleep(0)  # the run is queued and awaited
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await pipe.call("SET", f"{key_prefix}:next", "1") == b"OK"
        await pipe.drain()


def _unreachable() -> aioredis.Redis:
    """A client of a port nobody listens on, which fails each connect once: redis-py's default
    policy retries a connect 3 times with up to 1 + 2 + 4 s of jittered backoff, which would
    time these tests instead of the pipeline's own `retries` (CI once waited over 5 s)."""
    return aioredis.Redis(
        host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
