"""The email's HTML as ASCII: every other character as its numeric character reference."""

from __future__ import annotations

from html import unescape

from hypothesis import given
from hypothesis import strategies as st

from couples_nudge.notifier.skeleton import ascii_refs

_C1 = "".join(map(chr, range(0x80, 0xA0)))


class TestAsciiHtml:
    @given(
        st.text(alphabet=st.sampled_from("ab<&;\xa0\u202fëŁ😀\n"), max_size=40)
        # Not C1 controls: HTML reads &#128;-&#159; as Windows-1252 (render.py's docstring).
        | st.text(st.characters(exclude_categories=["Cs"], exclude_characters=_C1))
    )
    def test_the_standard_encoder_s_references_and_the_same_text_read_back(self, html: str) -> None:
        """The same bytes as Python's own xmlcharrefreplace, ASCII, and the text once the
        references are read."""
        made = ascii_refs(html)
        assert made == html.encode("ascii", "xmlcharrefreplace").decode("ascii")
        assert made.isascii()
        if "&" not in html:  # (the input's own "&...;" would be read too)
            assert unescape(made) == html
