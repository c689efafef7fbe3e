"""Stream reads routed on a Redis Cluster without asking the server where their keys are.

redis-py's cluster client routes a command by its keys. It finds them in the command table
(COMMAND), and for a "movablekeys" command in its key specifications; XREADGROUP and XREAD
name their keys after the STREAMS keyword, a specification redis-py 8.2 does not read
(`begin_search` of type "keyword"), so before every read it asked the node `COMMAND GETKEYS`:
one more round trip and node command per poll of every stream subscriber (FastStream's, 8 per
notifier with 8 shards, polling even when idle) and per batch read.

`StreamKeysParser` reads those keys itself, exactly as the server's key specification says:
the first STREAMS at or after argument 4 (XREADGROUP GROUP group consumer ...) or 1 (XREAD
...), then the first half of the arguments after it are the keys, the second half their ids.
Anything else, and any read it does not recognise (no STREAMS, an odd or empty rest), goes to
redis-py's parser as before, which asks the server. The invariant it relies on is that key
specification, the same in Redis 7+ and Valkey 7+; `tests/cluster/test_cluster_keys.py`
compares it with the server's COMMAND INFO and COMMAND GETKEYS, so a server that changes it
fails there, loudly, not in routing.

The parser is put in place on a client before its first command (`route_stream_reads`):
redis-py loads the command table into whichever parser the client holds when it first
connects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from redis._parsers.commands import AsyncCommandsParser
from redis.asyncio.cluster import RedisCluster

__all__ = ["StreamKeysParser", "route_stream_reads", "stream_keys"]

# Where the search for STREAMS begins (the key specifications' `startfrom`, argument 0 being
# the command's name).
_STREAMS_FROM: Final = {"XREADGROUP": 4, "XREAD": 1}


def stream_keys(args: Sequence[Any]) -> tuple[Any, ...] | None:
    """The keys of an XREADGROUP or XREAD (name first, then its arguments); None for any other
    command or arguments the server's key specification would not resolve."""
    if not args:
        return None
    start = _STREAMS_FROM.get(_text(args[0]).upper())
    if start is None:
        return None
    for i in range(start, len(args)):
        if _text(args[i]).upper() == "STREAMS":
            rest = len(args) - i - 1
            if rest == 0 or rest % 2:
                return None
            return tuple(args[i + 1 : i + 1 + rest // 2])
    return None


def _text(arg: Any) -> str:
    if isinstance(arg, bytes):
        return arg.decode("latin-1")
    return arg if isinstance(arg, str) else ""


class StreamKeysParser(AsyncCommandsParser):
    """redis-py's parser, which finds the keys of stream reads itself (module docstring)."""

    __slots__ = ()

    async def get_keys(self, *args: Any) -> tuple[str, ...] | None:
        keys = stream_keys(args)
        if keys is not None:
            return keys
        return await super().get_keys(*args)


def route_stream_reads(client: RedisCluster) -> None:
    """Give `client` a `StreamKeysParser`, unless it has one; before the client's first
    command (see the module docstring)."""
    if isinstance(client.commands_parser, StreamKeysParser):
        return
    if client.commands_parser.commands:
        raise RuntimeError("route_stream_reads: the client has already loaded its commands")
    client.commands_parser = StreamKeysParser()
