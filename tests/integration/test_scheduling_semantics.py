"""Time semantics end to end against a real server, on an injected clock."""

from __future__ import annotations

import json
import shutil
import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock, epoch_ms
from couples_nudge.common.streams import read_events
from couples_nudge.notifier.channels.base import RecordingChannel
from couples_nudge.notifier.service import NotifierService
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import NudgeDue, parse_due, parse_outcome, parse_preference
from tests.support.events import envelope, example
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import drained, eventually

MONDAY = datetime(2026, 12, 7, tzinfo=UTC)
DAILY_CHECK_IN = {
    "check_in": {"cadence": {"repeat": "cron", "cron": "0 8 * * *"}, "timing": "together"}
}


def _prefs(nudges: dict[str, Any], **partner0: Any) -> bytes:
    data = example()["data"]
    data["couple_id"] = "c1"
    data["nudges"] = nudges
    data["partners"][0].update(partner0)
    return envelope("preferences.set.v1", data, MONDAY - timedelta(days=1))


class _World:
    def __init__(self, redis: aioredis.Redis, settings: SchedulerSettings) -> None:
        self.redis = redis
        self.settings = settings
        self.clock = ManualClock(MONDAY)
        self.store = ScheduleStore(redis, settings.keys, due_maxlen=100_000)
        self.ingest = PreferenceIngest(self.store, self.clock, settings)
        self.loop = TimerLoop(self.store, self.clock, settings)

    async def run_until(
        self, until: datetime, step: timedelta = timedelta(minutes=10), *, settle: bool = False
    ) -> None:
        """Advance the clock step by step, firing what is due; with `settle`, wait after each
        step until the notifier has handled it (consent is checked at the time of sending)."""
        while self.clock.now() < until:
            self.clock.advance(step)
            while await self.loop.tick(0):
                pass
            if settle:
                await eventually(lambda: drained(self.redis, self.settings.keys.due(0)), until=bool)

    async def dues(self) -> list[NudgeDue]:
        return await read_events(self.redis, self.settings.keys.due(0), parse_due)


class TestMisfires:
    async def test_after_downtime_only_the_latest_in_grace_fires_and_the_rest_are_reported(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Down from Monday to Thursday 09:00: Thursday 08:00 fires once (late); Mon-Wed missed."""
        world = _World(redis, scheduler_settings(redis_url, key_prefix))
        await world.ingest.apply(parse_preference(_prefs(DAILY_CHECK_IN)))
        world.clock.set(datetime(2026, 12, 10, 9, 0, tzinfo=UTC))  # 08:00 Berlin = 07:00Z
        while await world.loop.tick(0):
            pass
        [due] = await world.dues()
        assert due.data.scheduled_at == datetime(2026, 12, 10, 7, 0, tzinfo=UTC)
        assert due.data.note == "late"
        missed = await read_events(redis, world.settings.keys.outcomes, parse_outcome)
        assert sorted(o.data.scheduled_at.day for o in missed) == [7, 8, 9]
        assert {o.type for o in missed} == {"nudge.suppressed.v1"}
        assert {getattr(o.data, "reason", None) for o in missed} == {"missed"}
        next_fire = await redis.zscore(world.settings.keys.timers(0), "c1/c/both")
        assert next_fire == datetime(2026, 12, 11, 7, 0, tzinfo=UTC).timestamp() * 1000

    async def test_beyond_grace_nothing_fires(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Back at 15:00, seven hours after 08:00 (grace 6 h): nothing is sent, all reported."""
        world = _World(redis, scheduler_settings(redis_url, key_prefix))
        await world.ingest.apply(parse_preference(_prefs(DAILY_CHECK_IN)))
        world.clock.set(datetime(2026, 12, 8, 14, 0, tzinfo=UTC))
        while await world.loop.tick(0):
            pass
        assert await world.dues() == []
        missed = await read_events(redis, world.settings.keys.outcomes, parse_outcome)
        assert sorted(o.data.scheduled_at.day for o in missed) == [7, 8]


@pytest.fixture
def zone_files(tmp_path: Path) -> Iterator[Path]:
    """A tz database of the test's own, read before any other (restored afterwards)."""
    found = zoneinfo.TZPATH
    zoneinfo.reset_tzpath(to=[str(tmp_path)])
    zoneinfo.ZoneInfo.clear_cache()
    yield tmp_path
    zoneinfo.reset_tzpath(to=found)
    zoneinfo.ZoneInfo.clear_cache()


def _install_zone(zone_files: Path, name: str, rules_of: str) -> None:
    """Redeploy with new tzdata: the zone `name` now has the rules of `rules_of`."""
    (zone_files / name).parent.mkdir(parents=True, exist_ok=True)
    with as_file(files("tzdata.zoneinfo").joinpath(rules_of)) as source:
        shutil.copyfile(source, zone_files / name)
    zoneinfo.ZoneInfo.clear_cache()


class TestZoneRulesChange:
    @pytest.mark.parametrize("new_rules", ["Etc/GMT-1", "Etc/GMT-3"])
    async def test_a_timer_planned_under_old_rules_fires_once_at_the_wall_time_of_the_new(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        zone_files: Path,
        new_rules: str,
    ) -> None:
        """Helsinki's 09:00 planned at +02:00, then tzdata moves it to +01:00 or +03:00: each
        day still gets one nudge, at 09:00 under the new rules (at +01:00 the first day got two,
        at 08:00 and 09:00, before)."""
        _install_zone(zone_files, "Europe/Helsinki", "Europe/Helsinki")
        world = _World(redis, scheduler_settings(redis_url, key_prefix))
        daily = {
            "check_in": {"cadence": {"repeat": "cron", "cron": "0 9 * * *"}, "timing": "together"}
        }
        await world.ingest.apply(parse_preference(_prefs(daily, timezone="Europe/Helsinki")))
        _install_zone(zone_files, "Europe/Helsinki", new_rules)
        await world.run_until(MONDAY + timedelta(days=3))
        zone = zoneinfo.ZoneInfo("Europe/Helsinki")
        fired = [d.data.scheduled_at.astimezone(zone).timetuple()[2:4] for d in await world.dues()]
        assert fired == [(7, 9), (8, 9), (9, 9)]  # (day, hour) in Helsinki under the new rules


class TestLongOutage:
    async def test_every_missed_occurrence_is_reported_even_beyond_one_batch(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Two daily check-ins, down 700 days and 20 h: 2 x 701 missed, all reported, none sent."""
        world = _World(redis, scheduler_settings(redis_url, key_prefix))
        for couple in ("c1", "c2"):
            event = json.loads(_prefs(DAILY_CHECK_IN))
            event["data"]["couple_id"] = couple
            await world.ingest.apply(parse_preference(json.dumps(event)))
        world.clock.set(MONDAY + timedelta(days=700, hours=20))  # past 08:00 Berlin + 6 h grace
        while await world.loop.tick(0):
            pass
        assert await world.dues() == []
        missed = await read_events(redis, world.settings.keys.outcomes, parse_outcome)
        assert len(missed) == 2 * 701
        assert {getattr(o.data, "reason", None) for o in missed} == {"missed"}


class TestQuietHours:
    async def test_a_nudge_inside_quiet_hours_is_deferred_to_their_end(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """23:00 Berlin inside Maya's 22:00-08:00 (defer): due at 08:00 next morning, noted."""
        world = _World(redis, scheduler_settings(redis_url, key_prefix))
        nudges = {"check_in": {"cadence": {"repeat": "cron", "cron": "0 23 * * 1"}}}
        await world.ingest.apply(parse_preference(_prefs(nudges)))
        await world.run_until(datetime(2026, 12, 8, 12, 0, tzinfo=UTC))
        by_partner = {d.data.recipients[0]: d.data for d in await world.dues()}
        maya, sam = by_partner["maya"], by_partner["sam"]
        assert maya.scheduled_at == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)
        assert maya.note == "quiet_hours_deferred"
        assert maya.occurrence_id.endswith(
            f"@{int(datetime(2026, 12, 7, 22, 0, tzinfo=UTC).timestamp())}"
        )
        assert sam.scheduled_at == datetime(2026, 12, 7, 22, 0, tzinfo=UTC)
        assert sam.note is None

    async def test_a_new_revision_keeps_a_nudge_waiting_out_quiet_hours(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Monday 23:00 deferred to Tuesday 08:00; a revision at 01:00 (a name changed) still
        sends it at 08:00 (it was re-armed at the next Monday, unsent and unreported)."""
        world = _World(redis, scheduler_settings(redis_url, key_prefix))
        nudges = {"check_in": {"cadence": {"repeat": "cron", "cron": "0 23 * * 1"}}}
        await world.ingest.apply(parse_preference(_prefs(nudges)))
        await world.run_until(datetime(2026, 12, 8, 0, 0, tzinfo=UTC))  # 01:00 Berlin
        event = json.loads(_prefs(nudges, name="Maya R."))
        event["data"]["revision"] += 1
        event["occurred_at"] = world.clock.now().isoformat()
        assert await world.ingest.apply(parse_preference(json.dumps(event))) == "applied"
        await world.run_until(datetime(2026, 12, 8, 12, 0, tzinfo=UTC))
        by_partner = {d.data.recipients[0]: d.data for d in await world.dues()}
        assert by_partner["maya"].scheduled_at == datetime(2026, 12, 8, 7, 0, tzinfo=UTC)
        assert by_partner["maya"].note == "quiet_hours_deferred"
        assert by_partner["sam"].scheduled_at == datetime(2026, 12, 7, 22, 0, tzinfo=UTC)
        assert await read_events(redis, world.settings.keys.outcomes, parse_outcome) == []

    async def test_drop_policy_reports_the_dropped_nudge(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """With policy "drop" the occurrence is not published; the outcome says quiet_hours."""
        world = _World(redis, scheduler_settings(redis_url, key_prefix))
        quiet = {"start": "22:00", "end": "08:00", "policy": "drop"}
        nudges = {"check_in": {"cadence": {"repeat": "cron", "cron": "0 23 * * 1"}}}
        await world.ingest.apply(parse_preference(_prefs(nudges, quiet_hours=quiet)))
        await world.run_until(datetime(2026, 12, 8, 12, 0, tzinfo=UTC))
        assert [d.data.recipients for d in await world.dues()] == [["sam"]]
        outcomes = await read_events(redis, world.settings.keys.outcomes, parse_outcome)
        assert [(o.data.kind, getattr(o.data, "reason", None)) for o in outcomes] == [
            ("check_in", "quiet_hours")
        ]


class TestOneBatch:
    async def test_schedules_sharing_an_instant_keep_their_own_quiet_hours_and_zones(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Due in one batch, same rule and instant: each still gets its own outcome.

        A week before summer time: Berlin moves to UTC+2 for the next occurrence, Lagos
        (UTC+1 all year, the same instant today) does not.
        """
        world = _World(redis, scheduler_settings(redis_url, key_prefix))
        world.clock.set(datetime(2027, 3, 20, tzinfo=UTC))
        nudges = {"check_in": {"cadence": {"repeat": "cron", "cron": "0 23 * * 1"}}}
        night = {"start": "22:00", "end": "08:00"}
        variants: dict[str, dict[str, Any]] = {
            "plain": {"quiet_hours": None},
            "drop": {"quiet_hours": {**night, "policy": "drop"}},
            "defer": {"quiet_hours": {**night, "policy": "defer"}},
            "london": {"quiet_hours": None, "timezone": "Europe/London"},
            "lagos": {"quiet_hours": None, "timezone": "Africa/Lagos"},
        }
        for couple, partner0 in variants.items():
            data = json.loads(_prefs(nudges, **partner0))
            data["data"]["couple_id"] = couple
            await world.ingest.apply(parse_preference(json.dumps(data)))
        berlin = datetime(2027, 3, 22, 22, 0, tzinfo=UTC)  # Monday 23:00 in Berlin and Lagos
        world.clock.set(berlin + timedelta(seconds=30))
        # Due now, in one batch: both partners of plain, drop and lagos, sam of the others.
        assert await world.loop.tick(0) == 8
        dues = await world.dues()
        assert sorted((d.data.couple_id, d.data.recipients[0]) for d in dues) == [
            ("defer", "sam"),
            ("drop", "sam"),
            ("lagos", "maya"),
            ("lagos", "sam"),
            ("london", "sam"),
            ("plain", "maya"),
            ("plain", "sam"),
        ]
        assert {(d.data.scheduled_at, d.data.note) for d in dues} == {(berlin, None)}
        outcomes = await read_events(redis, world.settings.keys.outcomes, parse_outcome)
        assert [(o.data.couple_id, getattr(o.data, "reason", None)) for o in outcomes] == [
            ("drop", "quiet_hours")
        ]
        timers = cast(
            "list[tuple[bytes, float]]",
            await redis.zrange(world.settings.keys.timers(0), 0, -1, withscores=True),
        )
        next_ms = {sid.decode(): int(score) for sid, score in timers}
        summer = berlin + timedelta(days=7, hours=-1)
        assert next_ms["defer/c/maya"] == epoch_ms(datetime(2027, 3, 23, 7, 0, tzinfo=UTC))
        assert next_ms["london/c/maya"] == epoch_ms(berlin + timedelta(hours=1))
        assert next_ms["plain/c/maya"] == epoch_ms(summer)
        assert next_ms["drop/c/maya"] == epoch_ms(summer)
        assert next_ms["lagos/c/maya"] == epoch_ms(berlin + timedelta(days=7))


class TestPause:
    async def test_paused_couple_gets_nothing_and_resumes_without_a_burst(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Paused Mon-Wed: those check-ins are suppressed "paused"; Thu on: one per day again."""
        world = _World(redis, scheduler_settings(redis_url, key_prefix))
        await world.ingest.apply(parse_preference(_prefs(DAILY_CHECK_IN)))
        pause = envelope(
            "preferences.paused.v1",
            {"couple_id": "c1", "until": "2026-12-10T00:00:00Z"},
            MONDAY,
        )
        await world.ingest.apply(parse_preference(pause))
        sink = RecordingChannel()
        notifier = NotifierService(
            notifier_settings(redis_url, key_prefix), world.clock, channels={"email": sink}
        )
        await notifier.start()
        try:
            await world.run_until(
                datetime(2026, 12, 11, 12, 0, tzinfo=UTC), timedelta(hours=1), settle=True
            )
            await eventually(
                lambda: read_events(redis, world.settings.keys.outcomes, parse_outcome),
                until=lambda found: len(found) == 10,  # 5 days x 2 partners
            )
        finally:
            await notifier.stop()
        outcomes = await read_events(redis, world.settings.keys.outcomes, parse_outcome)
        per_day = {
            (o.data.scheduled_at.day, o.type, getattr(o.data, "reason", None)) for o in outcomes
        }
        assert per_day == {
            (7, "nudge.suppressed.v1", "paused"),
            (8, "nudge.suppressed.v1", "paused"),
            (9, "nudge.suppressed.v1", "paused"),
            (10, "nudge.sent.v1", None),
            (11, "nudge.sent.v1", None),
        }
        assert len(sink.sent) == 4  # two days after the pause, two partners, nothing extra
