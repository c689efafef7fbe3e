"""`nudge demo` end to end, shortened: every sample partner gets every kind of nudge."""

from __future__ import annotations

import email
import email.message
import email.policy
import html
import json
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from couples_nudge.demo import run_demo
from couples_nudge.notifier.catalog import load_catalog
from couples_nudge_schemas import NudgeKind
from tests.integration.test_dashboard import png_facts
from tests.support.browser import WIDTHS, chromium, layout_overflow, shoot, viewport
from tests.support.cli import cli_env
from tests.support.events import EXAMPLES

KINDS: tuple[NudgeKind, ...] = ("date_night", "check_in", "appreciation")


class TestDemo:
    async def test_simulated_month_leaves_every_kind_for_every_partner_in_the_outbox(
        self, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Date night, check-in and appreciation emails for both partners of each couple (a
        kind a partner did not get was held back by the daily cap, and reported so), each in
        the partner's language."""
        monkeypatch.setenv("REDIS_URL", redis_url)
        outbox = tmp_path / "outbox"
        result = await run_demo(couples_dir=EXAMPLES, outbox=outbox, days=31, seconds=8)
        partners = {
            (c["data"]["couple_id"], p["partner_id"])
            for c in (json.loads(f.read_text()) for f in EXAMPLES.glob("*.json"))
            for p in c["data"]["partners"]
        }
        assert len(partners) >= 6
        for couple, partner in partners:
            for kind in ("date_night", "check_in", "appreciation"):
                got = result.sent[(couple, partner, kind, "email")]
                capped = result.suppressed_for[(couple, partner, kind, "cap_reached")]
                assert got >= 1 or capped >= 1, (couple, partner, kind)
        assert len(list(outbox.glob("*.eml"))) == result.emails == sum(result.sent.values())
        greetings = _greetings(outbox)
        print(f"greetings by recipient: {sorted(greetings.items())}")
        assert greetings["lucia@example.test"] == {"¡Hola, Lucía!"}  # es
        assert greetings["jonas@example.test"] == {"Hallo Jonas,"}  # de-AT reads German
        assert greetings["jo@example.test"] == {"Hi Jo,"}

    async def test_the_jar_couple_dates_from_its_own_ideas_and_gets_a_daily_question(
        self, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """priya-noor's date nights all come from the ideas its jar events put in; its
        check-in is the daily question, so both partners get one nearly every day."""
        monkeypatch.setenv("REDIS_URL", redis_url)
        result = await run_demo(couples_dir=EXAMPLES, outbox=tmp_path / "o", days=31, seconds=8)
        for partner in ("priya", "noor"):
            date_nights = result.sent[("priya-noor", partner, "date_night", "email")]
            jar = result.from_jar[("priya-noor", partner)]
            questions = result.sent[("priya-noor", partner, "check_in", "email")]
            print(
                f"{partner}: {date_nights} date nights, {jar} from the jar, {questions} questions"
            )
            assert date_nights >= 4
            assert jar == date_nights
            assert questions >= 25
        assert sum(n for (couple, _), n in result.from_jar.items() if couple != "priya-noor") == 0

    async def test_the_month_starts_when_the_couples_are_in_place(
        self, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The simulated clock waits at the start for the servers, the services and the
        couples: a real second of start-up is days of the month, and the clock running
        meanwhile skipped the first day's nudges and sent others hours late in one burst.
        priya-noor's daily question comes every local day of January, the 1st included."""
        monkeypatch.setenv("REDIS_URL", redis_url)
        start = datetime(2027, 1, 1, tzinfo=UTC)  # 08:30 in Amsterdam and Lisbon: 31 days
        result = await run_demo(
            couples_dir=EXAMPLES, outbox=tmp_path / "o", days=31, seconds=8, start=start
        )
        for partner in ("priya", "noor"):
            sent = result.sent[("priya-noor", partner, "check_in", "email")]
            held = sum(
                n
                for (couple, who, kind, _), n in result.suppressed_for.items()
                if (couple, who, kind) == ("priya-noor", partner, "check_in")
            )
            print(f"{partner}: {sent} questions sent, {held} suppressed")
            assert sent + held == 31, partner


class TestDemoInterrupted:
    def test_ctrl_c_stops_everything_promptly_and_leaves_no_keys(
        self, tmp_path: Path, redis_url: str
    ) -> None:
        """Ctrl-C mid-month: the services stop within their short budget, no task is
        destroyed pending, and a server the demo did not start (REDIS_URL) keeps none of its
        keys. Before, the services were never stopped: 5.4 s to exit, "Task was destroyed but
        it is pending!", and their keys left behind."""
        outbox = tmp_path / "outbox"
        demo = ("demo", "--seconds", "20", "--outbox", str(outbox), "--couples", str(EXAMPLES))
        proc = subprocess.Popen(
            [sys.executable, "-m", "couples_nudge", *demo],
            env=cli_env(REDIS_URL=redis_url),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not list(outbox.glob("*.eml")) and time.monotonic() < deadline:
                time.sleep(0.1)  # the month has begun: both services run
            assert list(outbox.glob("*.eml"))
        finally:
            proc.send_signal(signal.SIGINT)
            interrupted = time.monotonic()
            _, err = proc.communicate(timeout=30)
        took = time.monotonic() - interrupted
        with redis.Redis.from_url(redis_url) as client:
            left = list(client.scan_iter(match="demo*"))
        print(f"demo interrupted: exit {proc.returncode} after {took:.1f} s, {len(left)} keys left")
        assert "destroyed but it is pending" not in err, err[-2000:]
        assert left == []
        assert took < 4.0


class TestDemoCommand:
    def test_start_shows_a_month_with_clock_changes(self, tmp_path: Path, redis_url: str) -> None:
        """`--start 2027-03-01` simulates March, so the calendar marks the partners' spring
        clock changes (the default month, the next one, often has none)."""
        outbox = tmp_path / "outbox"
        demo = ("demo", "--seconds", "4", "--start", "2027-03-01", "--outbox", str(outbox))
        ran = subprocess.run(
            [sys.executable, "-m", "couples_nudge", *demo, "--couples", str(EXAMPLES)],
            env=cli_env(REDIS_URL=redis_url),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert ran.returncode == 0, ran.stderr[-2000:]
        page = html.unescape((outbox / "index.html").read_text("utf-8"))
        assert "clocks change (+01:00 -> +02:00)" in page  # Berlin, Madrid, Vienna: 28 March


class TestDemoCalendar:
    async def test_the_month_is_a_calendar_page_linking_every_email(
        self, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """outbox/index.html: every email file linked once with the title of what the partner
        got (in their language), suppressed nudges with their reason, the DST change of March
        and quiet-hour notes, names but no address; nothing clips at 390 px or on a desktop."""
        monkeypatch.setenv("REDIS_URL", redis_url)
        outbox = tmp_path / "outbox"
        march = datetime(2027, 3, 1, tzinfo=UTC)  # US clocks change on the 14th, EU on the 28th
        result = await run_demo(
            couples_dir=EXAMPLES, outbox=outbox, days=31, seconds=8, start=march
        )
        assert result.calendar == outbox / "index.html"
        page = result.calendar.read_text()
        links = re.findall(r'href="(\d{5}\.eml)"', page)
        files = sorted(p.name for p in outbox.glob("*.eml"))
        print(f"calendar: {len(links)} email links, {len(files)} emails")
        assert sorted(links) == files  # each email once
        items = [
            html.unescape(t) for t in re.findall(r'<div class="item">&ldquo;(.*?)&rdquo;', page)
        ]
        assert len(items) == len(links)  # every sent nudge says what the partner got
        spanish = {i.title for k in KINDS for i in load_catalog().items(k, "es")}
        german = {i.title for k in KINDS for i in load_catalog().items(k, "de")}
        assert spanish & set(items)
        assert german & set(items)  # each partner's item in their own language
        assert "America/New_York: clocks change (-05:00 -&gt; -04:00)" in page
        assert "Europe/London: clocks change (+00:00 -&gt; +01:00)" in page
        assert "quiet_hours" in page
        assert "suppressed: " in page
        names = {
            p["name"]
            for c in (json.loads(f.read_text()) for f in EXAMPLES.glob("*.json"))
            for p in c["data"]["partners"]
        }
        assert all(f"&rarr; {name}" in page for name in names)
        assert not re.search(r"[\w.+-]+@[\w-]+\.", page)  # no address
        assert "example.test" not in page
        assert "<script" not in page
        assert "http" not in page.replace("http-equiv", "")  # nothing from elsewhere
        async with chromium() as browser:
            for width in WIDTHS:
                tab = await browser.new_page(viewport=viewport(width))
                await tab.goto(result.calendar.as_uri())
                assert await layout_overflow(tab) == [], width
                shot = await shoot(tab, tmp_path / f"calendar-{width}.png")
                assert png_facts(shot)[0] == WIDTHS[width][0]
                assert png_facts(shot)[2] > 50
        print(f"calendar screenshots: {tmp_path}")


def _greetings(outbox: Path) -> dict[str, set[str]]:
    """Each recipient's greeting lines, from the plain-text part of every email received."""
    found: dict[str, set[str]] = {}
    for path in outbox.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        text = message.get_body(preferencelist=("plain",))
        assert text is not None
        lines = text.get_content().splitlines()
        greeting = next((ln for ln in lines if ln.startswith(("Hi ", "Hallo ", "¡Hola"))), "?")
        found.setdefault(str(message["To"].addresses[0].addr_spec), set()).add(greeting)
    return found
