"""A partner's To header: what email.utils.formataddr writes while it fits RFC 2047's lines,
else encoded-words of at most 75 characters on lines of at most 76 that decode to the name."""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.utils import formataddr

from hypothesis import example, given
from hypothesis import strategies as st

from couples_nudge.notifier.mime import _to
from couples_nudge_schemas._base import NAME_PATTERN

# Display names as the schema lets them in (`Name`: 1-40 characters, no control, invisible or
# line-separator characters, no whitespace at either end).
NAMES = (
    st.text(alphabet=st.sampled_from('ab Z.,"\\<>@:;()[]ë\u00a0'), min_size=1, max_size=12)
    | st.text(min_size=1, max_size=40)
).filter(lambda name: re.fullmatch(NAME_PATTERN, name) is not None)


class TestToHeader:
    @given(NAMES, st.sampled_from(["maya@example.org", "a.b+c@example.test"]))
    @example("Αλεξάνδρα Παπαδοπούλου-Κωνσταντινίδου", "maya@example.org")  # folded
    @example("Zoë", "maya@example.org")  # one word
    @example(
        "0000\xa0\xa0\xa0\xa0\u0800\U00010000\U00010000\U00010000\U00010000", "maya@example.org"
    )
    def test_equals_formataddr_or_folds_within_rfc_2047(self, name: str, address: str) -> None:
        """Plain names on the direct path, quoted, escaped or encoded ones through it; a name
        whose one encoded-word would pass 76 characters a line is several, folded."""
        header = _to(name, address)
        expected = formataddr((name, address), charset="utf-8")
        if name.isascii() or len(f"To: {expected}") <= 76:
            assert header == expected
            return
        lines = f"To: {header}".split("\r\n ")
        assert all(len(line) <= 76 and "\r" not in line and "\n" not in line for line in lines)
        words = re.findall(r"=\?utf-8\?[bq]\?[^?]*\?=", header, re.IGNORECASE)
        assert words
        assert all(len(word) <= 75 for word in words)
        display, _, rest = header.rpartition("<")
        assert rest == f"{address}>"
        decoded = str(make_header(decode_header(display.replace("\r\n ", " ").strip())))
        assert decoded == name
