"""Stream reads on the cluster find their keys in the client (cluster_keys.py), as the server would.

The server's own answers are the reference: its key specifications for XREADGROUP and XREAD,
and COMMAND GETKEYS for every form of read the services send.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr
from redis.asyncio.cluster import RedisCluster

from couples_nudge.common.cluster_keys import StreamKeysParser, route_stream_reads, stream_keys
from couples_nudge.common.runtime import broker_for
from couples_nudge.common.settings import CommonSettings
from tests.support.cluster import LocalCluster

pytestmark = pytest.mark.cluster

READS: list[tuple[Any, ...]] = [
    ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "k1", ">"),
    ("XREADGROUP", "GROUP", "g", "c", "COUNT", 10, "BLOCK", 100, "STREAMS", "k1", "k2", ">", ">"),
    (b"XREADGROUP", b"GROUP", b"g", b"c", b"NOACK", b"streams", b"k1", b"0-0"),
    ("xreadgroup", "GROUP", "streams", "streams", "STREAMS", "streams", ">"),  # names alike
    ("XREAD", "STREAMS", "k1", "0-0"),
    ("XREAD", "COUNT", 5, "BLOCK", 0, "STREAMS", "k1", "k2", "k3", "$", "$", "$"),
]


def _node(cluster: LocalCluster) -> Any:
    return cluster.primaries()[0].client()


def _getkeys_calls(cluster: LocalCluster) -> int:
    total = 0
    for node in cluster.primaries():
        with node.client() as client:
            stats = client.info("commandstats")
        total += int(stats.get("cmdstat_command|getkeys", {}).get("calls", 0))
    return total


class TestTheServersKeySpecification:
    def test_streams_keys_follow_the_keyword_from_the_arguments_we_assume(
        self, cluster: LocalCluster
    ) -> None:
        """XREADGROUP and XREAD: keyword STREAMS from argument 4 / 1, then half of the rest."""
        with _node(cluster) as client:
            info = client.execute_command("COMMAND", "INFO", "XREADGROUP", "XREAD")
        for name, start in (("xreadgroup", 4), ("xread", 1)):
            (spec,) = info[name]["key_specifications"]
            spec = {k.decode() if isinstance(k, bytes) else k: v for k, v in spec.items()}
            begin, find = _dict(spec["begin_search"]), _dict(spec["find_keys"])
            assert _text(begin["type"]) == "keyword"
            assert _dict(begin["spec"]) == {"keyword": b"STREAMS", "startfrom": start}
            assert _text(find["type"]) == "range"
            assert _dict(find["spec"]) == {"lastkey": -1, "keystep": 1, "limit": 2}

    @pytest.mark.parametrize("args", READS)
    def test_the_keys_are_the_ones_command_getkeys_gives(
        self, cluster: LocalCluster, args: tuple[Any, ...]
    ) -> None:
        """Each form of read: the client's keys equal the server's."""
        with _node(cluster) as client:
            server = client.execute_command("COMMAND GETKEYS", *args)
        ours = stream_keys(args)
        assert ours is not None
        assert [_text(k) for k in ours] == [_text(k) for k in server]


class TestStreamKeys:
    @pytest.mark.parametrize(
        "args",
        [
            ("XADD", "k", "*", "f", "v"),
            ("XREADGROUP", "GROUP", "g", "c", "k1", ">"),  # no STREAMS
            ("XREADGROUP", "GROUP", "g", "c", "STREAMS", "k1"),  # odd
            ("XREAD", "STREAMS"),  # nothing after it
            ("XREADGROUP", "GROUP", "STREAMS", "c", "k", ">"),  # before argument 4
            (),
        ],
    )
    def test_anything_else_is_left_to_redis_py(self, args: tuple[Any, ...]) -> None:
        """Other commands and reads the server's specification would not resolve: None."""
        assert stream_keys(args) is None


class TestClientsOnTheCluster:
    async def test_stream_reads_ask_no_node_for_their_keys(
        self, cluster: LocalCluster, cluster_redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """XREADGROUP and XREAD on streams of every primary: answered, no COMMAND GETKEYS."""
        assert isinstance(cluster_redis.commands_parser, StreamKeysParser)  # type: ignore[attr-defined]
        streams = [f"{key_prefix}:due:{{s{n:02d}}}" for n in range(8)]
        for stream in streams:
            await cluster_redis.xgroup_create(stream, "g", id="0", mkstream=True)
            await cluster_redis.xadd(stream, {"f": "v"})
        before = _getkeys_calls(cluster)
        for stream in streams:
            read: Any = await cluster_redis.xreadgroup("g", "c", {stream: ">"}, count=5, block=10)
            assert [name for name, _ in read] == [stream.encode()]
            assert len(await cluster_redis.xread({stream: "0-0"}, count=5)) == 1
        assert _getkeys_calls(cluster) == before

    async def test_the_brokers_client_finds_stream_keys_itself(self, cluster: LocalCluster) -> None:
        """FastStream's cluster client, as broker_for builds it, has the parser once connected."""
        broker = broker_for(CommonSettings(redis_url=SecretStr(cluster.url), redis_cluster=True))
        client = await broker.connect()
        try:
            assert isinstance(client.commands_parser, StreamKeysParser)  # type: ignore[attr-defined]
            await client.ping()
        finally:
            await broker.stop()

    async def test_a_client_already_in_use_is_refused(self, cluster: LocalCluster) -> None:
        """The parser is given before the first command, never swapped under a live client."""
        client = RedisCluster.from_url(cluster.url)
        try:
            await client.ping()
            with pytest.raises(RuntimeError, match="already loaded"):
                route_stream_reads(client)
        finally:
            await client.aclose()


def _dict(spec: Any) -> dict[str, Any]:
    if isinstance(spec, dict):
        return {_text(k): v for k, v in spec.items()}
    return {_text(k): v for k, v in zip(spec[::2], spec[1::2], strict=True)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
