"""`Checked` patterns read the same in pydantic-core's Rust regex and in Python's `re`.

The service checks them in pydantic-core (schemas/_base.py); JSON Schema validators, the
checks of values given in Python and these patterns' authors read them with ECMA-262 or
Python semantics. For any text (controls, invisible and line-separator characters, spaces
of every kind, the strings each pattern generates and those strings cut or extended), both
engines give the same answer.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import SchemaValidator, ValidationError, core_schema

from couples_nudge_schemas._base import (
    DATE_PATTERN,
    EMAIL_PATTERN,
    INSTANT_PATTERN,
    LOCAL_TIME_PATTERN,
    NAME_PATTERN,
    UUID_PATTERN,
    ZONE_PATTERN,
)

PATTERNS = {
    "name": NAME_PATTERN,
    "email": EMAIL_PATTERN,
    "zone": ZONE_PATTERN,
    "instant": INSTANT_PATTERN,
    "local time": LOCAL_TIME_PATTERN,
    "date": DATE_PATTERN,
    "uuid": UUID_PATTERN,
}
_TRICKY = '\x00\t\n\r \x7f\x85\xa0\xad\u200b\u200d\u2028\u202e\u3000\ufeff@.<>:;,"/-_Zz+T'
_TEXT = st.text(st.one_of(st.sampled_from(_TRICKY), st.characters(exclude_categories=["Cs"])))


def _rust(pattern: str) -> SchemaValidator:
    return SchemaValidator(core_schema.str_schema(pattern=pattern, strict=True))


def _both(pattern: str, text: str) -> tuple[bool, bool]:
    try:
        _rust(pattern).validate_python(text)
        rust = True
    except ValidationError:
        rust = False
    return rust, re.fullmatch(pattern, text) is not None


class TestCheckedEngines:
    @pytest.mark.parametrize("name", sorted(PATTERNS))
    @settings(max_examples=150, deadline=None)
    @given(data=st.data())
    def test_same_answer_for_any_text(self, name: str, data: st.DataObject) -> None:
        """Generated matches, cut or extended with tricky characters, and arbitrary text."""
        pattern = PATTERNS[name]
        match = data.draw(st.from_regex(re.compile(pattern), fullmatch=True))
        cut = data.draw(st.integers(0, len(match)))
        extra = data.draw(_TEXT)
        for text in (match, match[:cut] + extra + match[cut:], match + extra, extra):
            rust, python = _both(pattern, text)
            assert rust == python, (name, text)
