"""`nudge preview`: the nudges a preferences file would produce, by the scheduler's own code."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from importlib.resources import as_file, files
from pathlib import Path
from zoneinfo import ZoneInfo

from typer.testing import CliRunner

from couples_nudge.cli import app
from tests.support.cli import cli_env, nudge
from tests.support.events import EXAMPLES, envelope, example

SPRING_FORWARD = "2027-03-14"  # America/New_York: 02:00 -> 03:00


def _preview(*args: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, ["preview", *args, "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]


class TestPreview:
    def test_json_lines_have_the_stable_keys(self) -> None:
        """Every line has exactly kind, partner_id, at_utc, at_local, timezone, note."""
        lines = _preview(str(EXAMPLES / "maya-and-sam.json"), "--start", "2026-12-01T00:00:00Z")
        assert lines
        assert {tuple(sorted(line)) for line in lines} == {
            ("at_local", "at_utc", "kind", "note", "partner_id", "timezone")
        }

    def test_date_night_is_friday_19_00_berlin_for_both(self) -> None:
        """maya-and-sam: Fridays 19:00 Berlin (18:00Z in winter), one line per partner."""
        lines = _preview(
            str(EXAMPLES / "maya-and-sam.json"), "--start", "2026-12-01T00:00:00Z", "--days", "7"
        )
        dates = [
            (x["partner_id"], x["at_utc"], x["at_local"])
            for x in lines
            if x["kind"] == "date_night"
        ]
        assert dates == [
            ("maya", "2026-12-04T18:00:00Z", "2026-12-04T19:00"),
            ("sam", "2026-12-04T18:00:00Z", "2026-12-04T19:00"),
        ]

    def test_a_time_in_the_spring_forward_gap_is_moved_and_noted(self, tmp_path: Path) -> None:
        """02:30 does not exist in New York on 14 March 2027: it fires at 03:00, with a note."""
        event = example()
        event["data"]["partners"][0]["timezone"] = "America/New_York"
        event["data"]["partners"][0].pop("quiet_hours")
        event["data"]["nudges"] = {
            "check_in": {
                "cadence": {"repeat": "weekly", "weekday": "sun", "at": "02:30"},
                "recipients": "one",
                "partner_id": "maya",
            }
        }
        path = tmp_path / "prefs.json"
        path.write_text(json.dumps(event))
        [line] = _preview(str(path), "--start", f"{SPRING_FORWARD}T00:00:00Z", "--days", "1")
        assert line["at_utc"] == "2027-03-14T07:00:00Z"
        assert line["at_local"] == "2027-03-14T03:00"
        assert line["note"] == "dst_gap: 02:30 did not exist that day"

    def test_a_file_that_is_not_a_valid_event_is_refused_clearly(self, tmp_path: Path) -> None:
        """A bad file exits 2 with the validation reason, not a traceback."""
        path = tmp_path / "bad.json"
        path.write_text('{"type": "preferences.set.v1"}')
        result = CliRunner().invoke(app, ["preview", str(path)])
        assert result.exit_code == 2
        assert "not a valid preference event" in " ".join(result.output.split())


class TestZoneDatabase:
    def test_the_command_reads_the_pinned_tzdata_not_the_hosts_zone_files(
        self, tmp_path: Path
    ) -> None:
        """A host whose zone files put Vancouver at UTC-5 (PYTHONTZPATH names them): 09:00 there
        is still the instant the pinned tzdata package gives (it was 14:00Z, the host's)."""
        host = tmp_path / "zoneinfo"
        (host / "America").mkdir(parents=True)
        with as_file(files("tzdata.zoneinfo").joinpath("Etc/GMT+5")) as utc_minus_5:
            shutil.copyfile(utc_minus_5, host / "America" / "Vancouver")
        data = example()["data"]
        data["nudges"] = {
            "check_in": {"cadence": {"repeat": "cron", "cron": "0 9 * * *"}, "timing": "together"}
        }
        for partner in data["partners"]:
            partner.update(timezone="America/Vancouver", quiet_hours=None)
        event = tmp_path / "vancouver.json"
        event.write_bytes(envelope("preferences.set.v1", data, datetime(2026, 12, 1, tzinfo=UTC)))
        ran = nudge(
            *("preview", str(event), "--start", "2026-12-07T00:00:00Z", "--days", "1", "--json"),
            env=cli_env(PYTHONTZPATH=str(host)),
        )
        assert ran.code == 0, ran.err
        with files("tzdata.zoneinfo").joinpath("America/Vancouver").open("rb") as pinned:
            nine = datetime(2026, 12, 7, 9, tzinfo=ZoneInfo.from_file(pinned))
        expected = nine.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert {json.loads(line)["at_utc"] for line in ran.out.splitlines()} == {expected}
