"""A Lua script's arguments as one JSON array of strings, which the script decodes with cjson.

Why (issue 20, callgrind): hiredis packs each argument with a `sprintf` of its "$<len>" line,
~1.3k instructions an argument; the scheduler's APPLY_PLAN (store.py), the notifier's
RECORD_SENT (state.py) and RESERVE (caps.py) pass their many small strings as one argument.
The stdlib's C encoder costs about as much per string as hiredis (each string escaped to a new
str, then the pieces joined), so the callers write the array as it is, `'["a","b",...]'`,
whenever no string needs escaping, and come here only when one does.

The invariant the callers' fast paths rest on (`plain`): cjson (Redis 7's and Valkey's
lua_cjson) copies a string's bytes as they are up to the next '"', stops with an error at a NUL
byte and unescapes only after a backslash; control characters and non-ASCII UTF-8 need no
escape. So strings holding no '"', no backslash and no NUL decode to themselves when written
between quotes as they are (an int's digits hold none). A str that UTF-8 cannot encode (a lone
surrogate) raises UnicodeEncodeError when the command is packed, as it did for an argument of
its own. tests/integration/test_apply_plan_args.py and test_notify12_*.py hold both paths to
the scripts on the test server.
"""

from __future__ import annotations

import json

__all__ = ["escaped_array", "plain"]


def plain(text: str) -> bool:
    """Whether `text` (one string, or several concatenated) decodes to itself from between
    two quotes as it is: no '"', no backslash, no NUL."""
    return not ('"' in text or "\\" in text or "\x00" in text)


def escaped_array(strings: list[str]) -> str:
    """`strings` as a JSON array for cjson, escaped (the rare path: one string is not
    `plain`). ensure_ascii off: non-ASCII as UTF-8; quotes, backslashes and controls escaped,
    which cjson unescapes to the same bytes."""
    return json.dumps(strings, ensure_ascii=False, separators=(",", ":"))
