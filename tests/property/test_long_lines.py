"""The 7bit check's long-line test measures only some lines, and answers as measuring all."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from couples_nudge.notifier.mime import _has_long_line

# Lines around the limit (998), short ones, and empty ones: where an off-by-one would show.
LINE = st.one_of(
    st.integers(0, 120),
    st.integers(990, 1010),
    st.integers(1990, 2010),
    st.integers(0, 3000),
).map(lambda n: b"x" * n)


@given(lines=st.lists(LINE, max_size=12), head=st.booleans(), tail=st.booleans())
def test_as_measuring_every_line(lines: list[bytes], head: bool, tail: bool) -> None:
    data = (b"\n" if head else b"") + b"\n".join(lines) + (b"\n" if tail else b"")
    assert _has_long_line(data) == (max(map(len, data.split(b"\n"))) > 998)


def test_the_edges() -> None:
    assert not _has_long_line(b"")
    assert not _has_long_line(b"x" * 998)
    assert _has_long_line(b"x" * 999)
    assert not _has_long_line(b"x" * 998 + b"\n" + b"y" * 998)
    assert _has_long_line(b"x" * 998 + b"\n" + b"y" * 999)
    assert _has_long_line(b"a\n" * 600 + b"z" * 999 + b"\nb")
