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
