"""A partner's To header is exactly what email.utils.formataddr writes."""

from __future__ import annotations

from email.utils import formataddr

from hypothesis import given
from hypothesis import strategies as st

from couples_nudge.notifier.mime import _to


class TestToHeader:
    @given(
        st.text(alphabet=st.sampled_from('ab Z.,"\\<>@:;()[]ë\u00a0'), max_size=12) | st.text(),
        st.sampled_from(["maya@example.org", "a.b+c@example.test"]),
    )
    def test_equals_formataddr(self, name: str, address: str) -> None:
        """Plain names on the direct path, quoted, escaped or encoded ones through it."""
        assert _to(name, address) == formataddr((name, address), charset="utf-8")
