"""`nudge demo` end to end, shortened: every sample partner gets every kind of nudge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.demo import run_demo
from tests.support.events import EXAMPLES


class TestDemo:
    async def test_simulated_month_leaves_every_kind_for_every_partner_in_the_outbox(
        self, tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Date night, check-in and appreciation emails for both partners of each couple."""
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
                assert result.sent[(couple, partner, kind, "email")] >= 1, (couple, partner, kind)
        assert len(list(outbox.glob("*.eml"))) == result.emails == sum(result.sent.values())

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
