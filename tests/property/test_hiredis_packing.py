"""Commands packed by hiredis are the bytes redis-py's own packer would have sent."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection
from redis.exceptions import DataError
from redis.typing import EncodableT

from couples_nudge.common.packing import hiredis_packing, pack

argument = st.one_of(
    st.binary(max_size=64),
    st.text(max_size=32),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.binary(max_size=16).map(bytearray),
    st.binary(max_size=16).map(lambda b: memoryview(b)),
)
name = st.sampled_from(["SET", "CONFIG GET", b"XADD", b"SCRIPT LOAD", "EVALSHA"])
command = st.tuples(name, st.lists(argument, max_size=8)).map(lambda c: (c[0], *c[1]))


def _python_packer() -> Connection:
    return Connection()


@given(command)
def test_one_command_is_packed_as_redis_py_packs_it(args: tuple[EncodableT, ...]) -> None:
    assert pack(args) == b"".join(bytes(p) for p in _python_packer().pack_command(*args))


@given(st.lists(command, min_size=1, max_size=5))
def test_a_pipeline_is_packed_as_redis_py_packs_it(commands: list[tuple[EncodableT, ...]]) -> None:
    client = hiredis_packing(aioredis.Redis())
    ours = client.connection_pool.connection_class().pack_commands(commands)
    theirs = _python_packer().pack_commands(commands)
    assert b"".join(ours) == b"".join(bytes(p) for p in theirs)


@pytest.mark.parametrize("bad", [True, None, object(), [1]])
def test_what_redis_py_refuses_is_refused(bad: object) -> None:
    with pytest.raises(DataError):
        pack(("SET", "k", bad))


# An XADD with a bytes payload is packed from a remembered prefix (packing.py): the same bytes.
xadd_head = st.lists(
    st.one_of(st.text(max_size=16), st.integers(-(2**40), 2**40), st.sampled_from(["~", "*"])),
    min_size=1,
    max_size=7,
)


@given(xadd_head, st.binary(max_size=300), st.binary(max_size=300))
def test_an_xadd_is_packed_from_its_prefix_as_redis_py_packs_it(
    head: list[EncodableT], first: bytes, second: bytes
) -> None:
    for payload in (first, second):  # the second from the prefix the first left
        args = ("XADD", *head, payload)
        assert pack(args) == b"".join(bytes(p) for p in _python_packer().pack_command(*args))


def test_an_xadd_prefix_is_remembered_by_its_arguments_types() -> None:
    """1, 1.0 and True are equal keys of a dict; they do not pack alike (or at all)."""
    assert pack(("XADD", "s", 1, b"x")) == b"*4\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n1\r\n$1\r\nx\r\n"
    assert pack(("XADD", "s", 1.0, b"x")) == b"".join(
        _python_packer().pack_command("XADD", "s", 1.0, b"x")
    )
    with pytest.raises(DataError):
        pack(("XADD", "s", True, b"x"))


@given(
    st.lists(
        st.one_of(
            st.integers(-3, 3),
            st.floats(-3, 3, allow_nan=False),
            st.sampled_from(["1", "~", "*", "s"]),
            st.binary(max_size=2),
        ),
        min_size=1,
        max_size=4,
    ),
    st.binary(max_size=8),
)
def test_equal_xadd_heads_of_other_types_pack_as_redis_py_packs_them(
    head: list[EncodableT], payload: bytes
) -> None:
    """Heads equal as dict keys (1, 1.0 and True; b"1" and "1" hash alike) in any order: each
    packed as redis-py packs it, or refused as redis-py refuses it, whatever was remembered."""
    for variant in (head, [float(a) if type(a) is int else a for a in head], head):
        args = ("XADD", *variant, payload)
        assert pack(args) == b"".join(bytes(p) for p in _python_packer().pack_command(*args))
    if any(type(a) is int and a in (0, 1) for a in head):
        booleans = ("XADD", *[bool(a) if type(a) is int else a for a in head], payload)
        with pytest.raises(DataError):
            pack(booleans)


# An EVALSHA is packed from its remembered head (packing.py, h/notify13): the same bytes.
sha = st.one_of(st.text(alphabet="0123456789abcdef", min_size=40, max_size=40), st.text(max_size=8))
key_count = st.one_of(st.integers(-2, 5), st.sampled_from([True, 1.0, 2**70]))


@given(sha, key_count, st.lists(argument, max_size=8), st.lists(argument, max_size=8))
def test_an_evalsha_is_packed_from_its_head_as_redis_py_packs_it(
    script: str, count: EncodableT, first: list[EncodableT], second: list[EncodableT]
) -> None:
    for rest in (first, second):  # the second from the head the first left
        args = ("EVALSHA", script, count, *rest)
        try:
            theirs = b"".join(bytes(p) for p in _python_packer().pack_command(*args))
        except DataError:
            with pytest.raises(DataError):
                pack(args)
            continue
        assert pack(args) == theirs


def test_an_evalsha_head_is_remembered_by_its_arguments_types() -> None:
    """A key count of 1, then 1.0 and True (equal keys of a dict): each packs as redis-py
    packs it, or is refused as it refuses it."""
    script = "f" * 40
    for count in (1, 1.0):
        args = ("EVALSHA", script, count, "k", b"a")
        assert pack(args) == b"".join(_python_packer().pack_command(*args))
    with pytest.raises(DataError):
        pack(("EVALSHA", script, True, "k", b"a"))
