"""The command line as a newcomer meets it: one-line errors, exit codes, help, no TTY."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from tests.support.cli import cli_env, closed_port, nudge
from tests.support.events import EXAMPLES, REPO

PASSWORD = "s3cret-Pa55word"


def _unreachable() -> dict[str, str]:
    return cli_env(REDIS_URL=f"redis://nudge:{PASSWORD}@127.0.0.1:{closed_port()}/0")


class TestUsageErrors:
    def test_a_missing_file_is_one_line_and_exit_2(self) -> None:
        """`nudge preview missing.json`: what is wrong and which file, no traceback."""
        ran = nudge("preview", "missing.json")
        assert ran.code == 2
        assert ran.err_lines == ["nudge: missing.json: no such file or directory: check the path"]

    def test_invalid_json_says_line_and_column(self, tmp_path: Path) -> None:
        """A JSON syntax error is located by line and column; the input is not echoed."""
        path = tmp_path / "broken.json"
        path.write_text('{\n  "type": "preferences.set.v1",\n  "data": [1,, "hidden-text"]\n}')
        ran = nudge("preview", str(path))
        assert ran.code == 2
        [line] = ran.err_lines
        assert "not valid JSON at line 3, column 14" in line
        assert "hidden-text" not in ran.err

    def test_an_invalid_event_names_the_problem(self, tmp_path: Path) -> None:
        """Valid JSON that is not a valid event: one line with the validation reason."""
        path = tmp_path / "bad.json"
        path.write_text('{"type": "preferences.set.v1"}')
        ran = nudge("publish", str(path))
        assert ran.code == 2
        [line] = ran.err_lines
        assert "not a valid preference event" in line

    @pytest.mark.parametrize("made", [False, True], ids=["missing", "empty"])
    def test_the_demo_without_couples_says_where_it_looked(
        self, tmp_path: Path, made: bool
    ) -> None:
        """`nudge demo` run outside the repository's root found no couples and exited 1 with
        no word (0 emails): now one line names the folder and the two ways out, and nothing
        (not even the outbox) is made."""
        couples, outbox = tmp_path / "couples", tmp_path / "outbox"
        if made:
            couples.mkdir()
        ran = nudge("demo", "--couples", str(couples), "--outbox", str(outbox))
        assert ran.code == 2
        [line] = ran.err_lines
        assert str(couples) in line
        assert "--couples" in line
        assert not outbox.exists()

    def test_an_invalid_setting_names_the_variable(self) -> None:
        """A setting that does not parse is a usage error naming its variable."""
        ran = nudge("status", env=cli_env(NUDGE_SHARDS="many"))
        assert ran.code == 2
        [line] = ran.err_lines
        assert "NUDGE_SHARDS" in line
        assert "many" not in line

    @pytest.mark.parametrize(
        "url",
        [
            f"valkey://nudge:{PASSWORD}@127.0.0.1:6379/0",  # a scheme redis-py does not know
            f"redis://nudge:{PASSWORD}@127.0.0.1:99999/0",  # port out of range
            f"redis://nudge:{PASSWORD}@[127.0.0.1:6379/0",  # does not parse
            f"redis://nudge:{PASSWORD}@127.0.0.1:6379/zero",  # redis-py would use db 0
            f"redis://nudge:{PASSWORD}@127.0.0.1:6379/0?sockettimeout=5",  # unknown option
        ],
    )
    @pytest.mark.parametrize("command", [["status"], ["scheduler"], ["dlq", "list"]])
    def test_a_redis_url_redis_py_cannot_use_is_an_invalid_setting(
        self, url: str, command: list[str]
    ) -> None:
        """Found at start as an invalid REDIS_URL (exit 2, the form it takes), not an
        "unexpected error" at the first connection; the URL's password is never shown."""
        ran = nudge(*command, env=cli_env(REDIS_URL=url))
        assert ran.code == 2, ran.err
        [line] = ran.err_lines
        assert line.startswith("nudge: invalid setting REDIS_URL must be redis://")
        assert PASSWORD not in ran.err + ran.out

    @pytest.mark.parametrize(
        ("given", "said"),
        [
            ("soon", "not a duration: give ISO 8601 (PT30S, PT4H, P30D) or seconds (30)"),
            ("PT0S", "Input should be greater than 0 seconds"),
        ],
    )
    def test_a_duration_says_what_it_takes(self, given: str, said: str) -> None:
        """In an operator's words, not the ISO parser's ("day" identifier ...) or Python's."""
        ran = nudge("status", env=cli_env(NUDGE_RECLAIM_IDLE=given))
        assert ran.code == 2
        assert ran.err_lines == [
            f"nudge: invalid setting NUDGE_RECLAIM_IDLE: {said} (see the configuration table "
            "in README.md)"
        ]

    def test_a_check_of_two_settings_names_both_variables(self) -> None:
        """A rule across settings names their variables, not field names or `NUDGE_?`."""
        ran = nudge("status", env=cli_env(NUDGE_OPERATOR_PORT="9090", NUDGE_HTTP_PORT="9090"))
        assert ran.code == 2
        assert ran.err_lines == [
            "nudge: invalid setting NUDGE_OPERATOR_PORT must differ from NUDGE_HTTP_PORT (or "
            "be unset) (see the configuration table in README.md)"
        ]

    def test_replay_all_without_a_terminal_says_to_add_yes(self) -> None:
        """No TTY to ask on: one line naming --yes, exit 2, nothing replayed."""
        ran = nudge("dlq", "replay", "--all", env=_unreachable())
        assert ran.code == 2
        [line] = ran.err_lines
        assert "--yes" in line


class TestRuntimeErrors:
    @pytest.mark.parametrize(
        "args",
        [
            ["publish", str(EXAMPLES / "maya-and-sam.json")],
            ["dlq", "list"],
            ["status"],
            ["scheduler"],
            ["notifier"],
        ],
        ids=lambda args: args[0] if args[0] != "dlq" else "dlq-list",
    )
    def test_redis_unreachable_is_one_line_with_host_and_port(self, args: list[str]) -> None:
        """Exit 1, one line on stderr naming host:port and what to do; never the password."""
        env = _unreachable()
        port = env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0]
        ran = nudge(*args, env=env)
        assert ran.code == 1, ran.err
        assert ran.err_lines == [
            f"nudge: cannot reach Redis at 127.0.0.1:{port} (connection refused): start it, "
            "or set REDIS_URL to a server that runs"
        ]
        assert PASSWORD not in ran.out + ran.err
        assert "nudge:" + PASSWORD not in ran.err

    def test_debug_shows_the_traceback(self) -> None:
        """`--debug` (or NUDGE_DEBUG=1) trades the one line for the full traceback."""
        for ran in (
            nudge("--debug", "dlq", "list", env=_unreachable()),
            nudge("dlq", "list", env={**_unreachable(), "NUDGE_DEBUG": "1"}),
        ):
            assert ran.code == 1
            assert "Traceback" in ran.err
            assert "ConnectionError" in ran.err
            assert len(ran.err_lines) > 5
            assert PASSWORD not in ran.err


class TestHelp:
    @pytest.mark.parametrize(
        "args", [[], ["dlq", "replay"], ["status"], ["demo"], ["preview"], ["render"]]
    )
    def test_flags_show_no_type_placeholder(self, args: list[str]) -> None:
        """`--help` shows flags bare: no `<bool>` (typer 0.29's rich panels printed one)."""
        ran = nudge(*args, "--help")
        assert ran.code == 0, ran.err
        assert "--help" in ran.out
        assert "<bool>" not in ran.out
        assert not re.search(r"--(json|all|yes|help)\s+<", ran.out)


class TestWatchWithoutTerminal:
    def test_each_refresh_is_printed_as_it_happens(self, redis_url: str, key_prefix: str) -> None:
        """`status --watch` into a pipe prints every snapshot at once, not at Ctrl-C (it only
        reads: no keys to clean up)."""
        env = cli_env(REDIS_URL=redis_url, NUDGE_KEY_PREFIX=key_prefix)
        proc = subprocess.Popen(
            [sys.executable, "-m", "couples_nudge", "status", "--watch", "0.5"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            seen: list[str] = []
            deadline = time.monotonic() + 60
            while sum("Streams" in line for line in seen) < 2 and time.monotonic() < deadline:
                seen.append(proc.stdout.readline())
            assert sum("Streams" in line for line in seen) >= 2, "".join(seen)
            assert proc.poll() is None  # still watching: the output came while it ran
        finally:
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "Traceback" not in err


class TestPublishIntoAPipe:
    def test_the_entry_id_stays_on_its_line(self, redis_url: str, key_prefix: str) -> None:
        """Into a pipe of 80 columns (rich's default there) the line was wrapped before the
        entry id, so `| awk '{print $NF}'` read "as"."""
        env = cli_env(REDIS_URL=redis_url, NUDGE_KEY_PREFIX=key_prefix, COLUMNS="80")
        try:
            ran = nudge("publish", str(EXAMPLES / "maya-and-sam.json"), env=env)
        finally:
            with redis.Redis.from_url(redis_url) as client:
                client.delete(f"{key_prefix}:preferences")
        assert ran.code == 0, ran.err
        [line] = ran.out.splitlines()
        assert re.fullmatch(r"published preferences\.set\.v1 [0-9a-f-]{36} as [0-9]+-[0-9]+", line)
