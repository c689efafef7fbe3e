"""redis-py connections whose commands are packed by hiredis (C) instead of Python.

redis-py's asyncio connection packs every command in Python, argument by argument, even when
hiredis is installed (hiredis then only parses replies): 6.6 us for an 11-argument EVALSHA,
against 1.4 us with `hiredis.pack_command` (measured in one process). The bytes on the wire
are the same (a property test compares them with redis-py's own packer), so this is a drop-in
for any connection class of a single-server client.

An XADD whose last argument (the payload) is bytes is packed as a remembered prefix (every
argument but the payload, packed by hiredis once) and the payload: hiredis formats each
argument with `sprintf`, ~1.5k instructions an argument, 12.5k for an outcome's XADD against
~3k this way (callgrind). Invariant: a command's RESP bytes are its argument count, then each
argument on its own, so the bytes of the arguments before the payload depend only on those
arguments and their types: 1 and True, or 1 and 1.0, are equal keys but pack differently or
not at all. So a prefix is remembered, by the arguments alone, only for arguments that are
each exactly a str or an int, with the places of the ints; a head found equal to it is then
checked at those places only (an int there, not a bool or a float): what equals a str is a
str (a subclass packs alike), so only numbers can be equal and pack otherwise. That check
costs less than a tuple of every argument's type per XADD (~2k instructions). A property test
compares both packings.

An EVALSHA (four a notifier nudge, h/notify13) is packed likewise from its head: the
command's count line, "EVALSHA", the script's SHA-1 and the key count, packed once per script,
key count and length (`_script_heads`, keyed only when the SHA is exactly a str and the count
exactly an int: the same invariant), then the keys and arguments as hiredis packs them, but
their own count line (whose length the head knows): three `sprintf`s and an int's text less
a call. A property test compares both.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final, NamedTuple

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import DataError

__all__ = ["hiredis_packing", "pack"]


_PREFIXES_KEPT: Final = 256  # XADD prefixes remembered (one per stream and trim, in practice)
_prefixes: dict[tuple[Any, ...], _Prefix] = {}
_script_heads: dict[tuple[str, int, int], _ScriptHead] = {}  # by SHA, key count, length
_PLAIN: Final = frozenset({str, int})


class _Prefix(NamedTuple):
    """An XADD's packed arguments but the payload, and where its ints are."""

    packed: bytes
    ints: tuple[int, ...]


class _ScriptHead(NamedTuple):
    """An EVALSHA's packed count line, name, SHA-1 and key count, and the length of the count
    line of its keys and arguments packed alone (what the head replaces)."""

    packed: bytes
    skip: int


def pack(args: tuple[Any, ...]) -> bytes:
    """One command in RESP, as redis-py would pack it (literal words in a str name split)."""
    if args[0] == "XADD" and type(args[-1]) is bytes:  # see the module docstring
        head = args[:-1]
        found = _prefixes.get(head)
        if found is not None:
            for i in found.ints:  # not any(): a generator per XADD
                if type(head[i]) is not int:
                    found = None
                    break
        if found is None:
            found = _prefix(head, len(args))
        data = args[-1]
        return b"%b$%d\r\n%b\r\n" % (found.packed, len(data), data)
    if args[0] == "EVALSHA" and len(args) > 3 and type(args[1]) is str and type(args[2]) is int:
        try:  # see the module docstring
            tail: bytes = hiredis.pack_command(args[3:])
        except TypeError:
            return _pack(args)  # an argument hiredis refuses: `_pack` decides
        script = _script_heads.get((args[1], args[2], len(args)))
        if script is None:
            script = _script_head(args[1], args[2], len(args))
        return script.packed + tail[script.skip :]
    if type(args[0]) is str and args[0].isalpha():  # `_pack`'s first case, without its call
        try:  # not contextlib.suppress: its __enter__ and __exit__ are Python calls
            return hiredis.pack_command(args)  # type: ignore[no-any-return]
        except TypeError:
            pass  # an argument hiredis refuses: `_pack` decides, as for any other command
    return _pack(args)


def _prefix(head: tuple[Any, ...], count: int) -> _Prefix:
    """`head` packed as the first arguments of a command of `count`, remembered if each
    argument is exactly a str or an int (see the module docstring)."""
    packed = _pack(head)  # "*<n - 1>\r\n" and the arguments but the payload
    prefix = _Prefix(
        b"*%d\r\n%b" % (count, packed[packed.index(b"\n") + 1 :]),
        tuple(i for i, arg in enumerate(head) if type(arg) is int),
    )
    if _PLAIN.issuperset(map(type, head)):
        if len(_prefixes) >= _PREFIXES_KEPT:
            _prefixes.clear()
        _prefixes[head] = prefix
    return prefix


def _script_head(sha: str, count: int, length: int) -> _ScriptHead:
    """The head of an EVALSHA of `length` arguments, `sha` and `count` its second and third;
    remembered."""
    packed: bytes = hiredis.pack_command(("EVALSHA", sha, count))  # type: ignore[arg-type]
    name = packed[packed.index(b"\n") + 1 :]  # without its own count line
    head = _ScriptHead(b"*%d\r\n%b" % (length, name), len(b"*%d\r\n" % (length - 3)))
    if len(_script_heads) >= _PREFIXES_KEPT:
        _script_heads.clear()
    _script_heads[(sha, count, length)] = head
    return head


def _pack(args: tuple[Any, ...]) -> bytes:
    name = args[0]
    if isinstance(name, str):
        if not name.isalpha():  # "CONFIG GET": words that go as separate arguments
            args = (*name.encode().split(), *args[1:])
    elif isinstance(name, bytes) and b" " in name:
        args = (*name.split(), *args[1:])
    try:
        return hiredis.pack_command(args)  # type: ignore[no-any-return]
    except TypeError:
        # hiredis takes str, bytes, int and float (and refuses bool, as redis-py does);
        # redis-py also sends bytearray and memoryview as they are.
        buffers = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return hiredis.pack_command(buffers)  # type: ignore[arg-type,no-any-return]
        except TypeError as exc:
            kinds = ", ".join(sorted({type(a).__name__ for a in args}))
            raise DataError(f"{exc} (got {kinds})") from exc


class _HiredisPacking:
    """Mixin over a redis-py asyncio connection class: both packers replaced, nothing else."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return [pack(args)]

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        return [b"".join([pack(tuple(command)) for command in commands])]


_classes: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def _packing_class(base: type[AbstractConnection]) -> type[AbstractConnection]:
    if issubclass(base, _HiredisPacking):
        return base
    if base not in _classes:
        _classes[base] = type(f"Hiredis{base.__name__}", (_HiredisPacking, base), {})
    return _classes[base]


def hiredis_packing(client: aioredis.Redis) -> aioredis.Redis:
    """Make every connection `client`'s pool opens from now on pack with hiredis."""
    pool = client.connection_pool
    pool.connection_class = _packing_class(pool.connection_class)
    return client
