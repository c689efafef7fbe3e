"""Every writer of a shard's records and timers bumps its change counter (lua.py's docstring).

FIRE takes the states a lookahead read as they were while the shard's change counter has not
moved, so a script that rewrites a couple hash, a timers zset or the legacy schedules hash
without bumping it would let a stale prepared fire publish. These tests find every Lua script
of the services (any module-level string that calls Redis), read its KEYS contract, and fail
for a script that writes one of those keys (or a key it builds itself) without bumping the
counter, unless it is one of the named exceptions below with its reason.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import couples_nudge
from couples_nudge.scheduler import lookahead, lua
from couples_nudge.scheduler.store import Fire

# Scripts that write a watched key without bumping, and why FIRE's shortcut still holds.
EXEMPT = {
    "couples_nudge.scheduler.lua.FIRE": "rewrites only the record of a timer whose score it "
    "moves in the same call; the score is compared for every step",
    "couples_nudge.scheduler.lua.FIRE_AHEAD": "FIRE for prepared steps: the same writes, and "
    "it does nothing at all once the counter has moved",
    "couples_nudge.scheduler.lua._TIMERS": "not a script: the timer writes of FIRE and "
    "FIRE_AHEAD, prepended to both",
    "couples_nudge.notifier.state.RECORD_SENT": "writes only a 'dead:<partner>:<channel>' "
    "field of the couple hash, which FIRE does not read (state_of)",
    "couples_nudge.notifier.state.MARK_DEAD": "writes only 'dead:' fields, as RECORD_SENT",
}
# The scripts known to write records or timers: the scan must find each of them.
KNOWN = {
    "couples_nudge.scheduler.lua.APPLY_PLAN",
    "couples_nudge.scheduler.lua.ERASE",
    "couples_nudge.scheduler.lua.SET_IF_NEWER",
    "couples_nudge.scheduler.feedback.KEEP_TURN",
    "couples_nudge.scheduler.feedback.CAS_FIELD",
    "couples_nudge.scheduler.feedback.DROP_NOTICE",
    "couples_nudge.scheduler.consent.RESUBSCRIBE",
    "couples_nudge.scheduler.consent.SOFT_BOUNCE",
}
WATCHED = ("couple hash", "timers", "legacy schedules hash")
WRITES = re.compile(
    r"redis\.call\('(HSET|HSETNX|HDEL|HINCRBY|HINCRBYFLOAT|HGETDEL|HGETEX|HSETEX|HEXPIRE|DEL|"
    r"UNLINK|SET|GETDEL|RENAME|RENAMENX|COPY|RESTORE|EXPIRE|PEXPIRE|EXPIREAT|PEXPIREAT|ZADD|"
    r"ZREM|ZINCRBY|ZPOPMIN|ZPOPMAX|ZREMRANGEBYSCORE|ZREMRANGEBYRANK|ZREMRANGEBYLEX|"
    r"ZRANGESTORE|ZUNIONSTORE|ZINTERSTORE|ZDIFFSTORE)',\s*([^,)]+)"
)


def _scripts() -> dict[str, str]:
    """Every module-level Lua script of the services, by module.NAME."""
    found: dict[str, str] = {}
    for info in pkgutil.walk_packages(couples_nudge.__path__, "couples_nudge."):
        if info.name.endswith(".__main__"):  # runs a command line when imported
            continue
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, str) and "redis.call(" in value and name.isupper():
                found[f"{info.name}.{name}"] = value
    return found


def _contract(script: str) -> dict[int, str]:
    """The KEYS contract of a script's header comment: index -> what the key is."""
    lines = script.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("-- KEYS:")), None)
    if start is None:
        return {}
    text = lines[start].removeprefix("-- KEYS:")
    for line in lines[start + 1 :]:
        if not line.startswith("--       "):
            break
        text += "," + line.removeprefix("--")
    text = text.split("ARGV:")[0]
    return {
        int(m.group(1)): m.group(2).strip()
        for m in re.finditer(r"(\d+)(?:\.\.)?\s+([^,\d][^,]*)", text)
    }


def _violations(script: str) -> list[str]:
    """The writes of watched keys (or of keys the script names itself) in a script that does
    not bump the change counter; [] when it bumps or writes nothing watched. The counter's
    own writes (lua.BUMP, prepended to the scripts that bump) are not writes of records."""
    script = script.replace(lua.BUMP, "")
    contract = _contract(script)
    watched = {n for n, what in contract.items() if any(w in what for w in WATCHED)}
    counter = next((n for n, what in contract.items() if "change counter" in what), None)
    bad = []
    for command, target in WRITES.findall(script):
        index = re.fullmatch(r"KEYS\[(\d+)\]", target.strip())
        if index is None or int(index.group(1)) in watched:
            bad.append(f"{command} {target.strip()}")
    if bad and counter is not None and f"bump(KEYS[{counter}])" in script:
        return []
    return bad


class TestEveryWriterBumps:
    def test_the_scan_finds_every_known_writer(self) -> None:
        """The scan sees the scripts known to write records or timers, and the exceptions."""
        assert KNOWN | set(EXEMPT) <= set(_scripts())

    def test_every_script_writing_records_or_timers_bumps_the_counter(self) -> None:
        """No script writes a couple hash, a timers zset or the legacy hash (or a key it names
        itself) without `bump(KEYS[n])` of its change counter, but the named exceptions."""
        missing = {
            name: bad
            for name, script in _scripts().items()
            if name not in EXEMPT and (bad := _violations(script))
        }
        assert missing == {}

    def test_the_exceptions_are_still_writers(self) -> None:
        """An exception that no longer writes a watched key is taken off the list."""
        scripts = _scripts()
        assert all(_violations(scripts[name]) for name in EXEMPT)

    def test_the_check_fails_for_a_script_without_its_bump(self) -> None:
        """The check itself: APPLY_PLAN without its bump line is a violation."""
        assert _violations(lua.APPLY_PLAN) == []
        assert _violations(lua.APPLY_PLAN.replace("bump(KEYS[5])", "")) != []

    @pytest.mark.parametrize("command", ["hset", "hdel", "zadd", "zrem", "delete", "unlink"])
    def test_no_python_code_writes_records_or_timers_directly(self, command: str) -> None:
        """Records and timers are written only by the scripts above, never by a command
        from Python (which could not bump in the same atomic step)."""
        services = Path(couples_nudge.__file__).resolve().parent
        pattern = re.compile(
            rf"\.{command}\([^)]*keys\.(couple|timers|schedules|couple_prefix)\(", re.DOTALL
        )
        raw = re.compile(rf"""["']{command}["'][^)]*keys\.(couple|timers|schedules)\(""", re.I)
        offenders = [
            str(path.relative_to(services))
            for path in services.rglob("*.py")
            if pattern.search(text := path.read_text()) or raw.search(text)
        ]
        assert offenders == []


class TestChunkReadAt:
    def _prepared(self, read_at: bytes | None) -> lookahead.Prepared:
        return lookahead.Prepared(Fire("c/d/both", 1, 2, b"s", b"r", b"{}"), "date_night", read_at)

    def test_one_value_for_a_chunk_read_at_one_value(self) -> None:
        chunk = [self._prepared(b"7"), self._prepared(b"7")]
        assert lookahead.chunk_read_at(chunk) == b"7"

    def test_none_when_pages_were_read_apart_or_before_any_counter(self) -> None:
        """FIRE then checks every state: the pages may straddle a writer."""
        assert lookahead.chunk_read_at([self._prepared(b"7"), self._prepared(b"8")]) is None
        assert lookahead.chunk_read_at([self._prepared(None), self._prepared(b"8")]) is None
        assert lookahead.chunk_read_at([]) is None
