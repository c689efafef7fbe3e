"""Never spam, never go silent (issue #15, items 2 and 3), with real processes.

- Redis out of memory (`maxmemory` just above used memory, `noeviction`) during a burst:
  nothing is sent while it refuses writes, no email is doubled (no process crashed), no
  nudge is dead-lettered, and every (occurrence, partner, channel) ends with one outcome.
- Redis out of memory while the scheduler has a backlog of preference events, for longer
  than the reclaimer's delivery cap: no event is dead-lettered or lost, every malformed one
  is rejected, and the backlog is applied once memory is freed.
- A notifier killed (kill -9) again and again during traffic: every email that arrived has
  exactly one `nudge.sent.v1` (by event id), and doubled emails stay within the sends in
  flight at each kill.

Each test prints its figures and adds a line to "fault tests: lost / doubled".
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_entries
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.embedded.valkey import EmbeddedValkey
from couples_nudge.scheduler.settings import SchedulerSettings
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge.scheduler.timer_loop import TimerLoop
from couples_nudge_schemas import OutcomeEvent, parse_outcome
from tests.support.couples import couple_event, plant_couples
from tests.support.processes import ServiceProcess
from tests.support.settings import scheduler_settings
from tests.support.waiting import drained, eventually

pytestmark = [pytest.mark.fault, pytest.mark.timeout(420)]
IN_FLIGHT = 16  # NUDGE_MAX_IN_FLIGHT of the out-of-memory test

FRIDAY = datetime(2026, 12, 4, 17, 0, tzinfo=UTC)  # date night 19:00 Berlin = 18:00Z
TOGETHER = {
    "date_night": {
        "cadence": {"repeat": "weekly", "weekday": "fri", "at": "19:00"},
        "timing": "together",
    }
}


async def _fire(redis: aioredis.Redis, redis_url: str, prefix: str, couples: int) -> list[bytes]:
    """Plan `couples` couples with the same Friday date night and fire it: the NudgeDue
    payloads, on the due stream."""
    settings = scheduler_settings(redis_url, prefix)
    store = ScheduleStore(redis, settings.keys, due_maxlen=1_000_000)
    await plant_couples(store, settings, couples, FRIDAY, nudges=TOGETHER)
    loop = TimerLoop(store, ManualClock(FRIDAY + timedelta(hours=1, seconds=5)), settings)
    while await loop.tick(0):
        pass
    entries = await read_entries(redis, settings.keys.due(0))
    assert len(entries) == couples
    return [fields[DATA_FIELD.encode()] for _, fields in entries]


def _addresses(mail: MailCatcher) -> Counter[str]:
    return Counter(r for recipients in mail.recipients for r in recipients)


async def _outcomes(redis: aioredis.Redis, stream: str) -> list[OutcomeEvent]:
    return [parse_outcome(f[DATA_FIELD.encode()]) for _, f in await read_entries(redis, stream)]


class Tally:
    """What the outcomes stream says per (occurrence, partner, channel)."""

    def __init__(self, outcomes: list[OutcomeEvent]) -> None:
        self.ids: dict[tuple[str, str | None, str | None], set[str]] = defaultdict(set)
        self.types: dict[tuple[str, str | None, str | None], set[str]] = defaultdict(set)
        for o in outcomes:
            about = (o.data.occurrence_id, o.data.partner_id, getattr(o.data, "channel", None))
            self.ids[about].add(str(o.event_id))
            self.types[about].add(o.type)
        self.entries = len(outcomes)
        self.republished = len(outcomes) - sum(len(ids) for ids in self.ids.values())

    def sent_to(self, partner_of_couple: set[tuple[str, str]]) -> int:
        """How many of these (couple id, partner id) have a `nudge.sent.v1`."""
        return sum(
            1
            for (occurrence, partner, _), types in self.types.items()
            if "nudge.sent.v1" in types and (occurrence.split("/")[0], partner) in partner_of_couple
        )

    def conflicting(self) -> int:
        """Triples with more than one event id (different outcomes for one send)."""
        return sum(1 for ids in self.ids.values() if len(ids) > 1)


def _couple_partner(address: str) -> tuple[str, str]:
    """ "maya-00012@example.test" -> ("c00012", "maya") (tests/support/couples.py)."""
    local = address.split("@")[0]
    partner, n = local.rsplit("-", 1)
    return f"c{n}", partner


async def _oom_errors(redis: aioredis.Redis) -> int:
    stats = cast("dict[str, dict[str, int]]", await redis.info("errorstats"))
    return int(stats.get("errorstat_OOM", {}).get("count", 0))


class TestRedisOutOfMemory:
    async def test_no_send_while_writes_are_refused_and_every_nudge_ends_with_one_outcome(
        self, tmp_path: Path, fault_report: list[str]
    ) -> None:
        """A burst of 300 couples (600 emails); once some are out, maxmemory is set just
        above used memory (noeviction) and kept ~10 s after the first refusal, then raised:
        0 doubled, 0 lost, 0 dead letters, one outcome per (occurrence, partner, channel)."""
        couples = 300
        with EmbeddedValkey() as server, MailCatcher() as mail:
            redis = aioredis.Redis.from_url(server.url)
            try:
                await _fire(redis, server.url, "nudges", couples)
                env = {
                    "REDIS_URL": server.url,
                    "NUDGE_SMTP_PORT": str(mail.port),
                    "NUDGE_SMTP_CONCURRENCY": "8",
                    "NUDGE_MAX_IN_FLIGHT": str(IN_FLIGHT),
                    "NUDGE_RECLAIM_IDLE": "PT2S",
                }
                with ServiceProcess("notifier", env, tmp_path, "notifier") as notifier:
                    await eventually(lambda: _count(mail), until=lambda n: n >= 60, within=120)
                    used = int((await redis.info("memory"))["used_memory"])
                    await redis.config_set("maxmemory-policy", "noeviction")
                    await redis.config_set("maxmemory", used + 128 * 1024)
                    before = mail.count
                    await eventually(lambda: _oom_errors(redis), until=bool, within=120)
                    at_refusal = mail.count
                    refused_from = time.monotonic()
                    await asyncio.sleep(8.0)
                    during = mail.count - at_refusal
                    # Then no write at all is taken for 4 s: only sends already past their
                    # write-ahead may finish (at most the nudges in flight, two emails each).
                    await redis.config_set("maxmemory", 1)
                    at_hard = mail.count
                    await asyncio.sleep(1.0)
                    settled = mail.count
                    await asyncio.sleep(3.0)
                    hard = (settled - at_hard, mail.count - settled)
                    refusals = await _oom_errors(redis)
                    await redis.config_set("maxmemory", 0)
                    freed = time.monotonic()
                    await _settle(lambda: _unique(mail), 2 * couples, within=180)
                    recovered = time.monotonic() - freed
                    await _settle(lambda: _drained(redis, "nudges:due:{s00}"), 1, within=30)
                    await _settle(lambda: _triples(redis, "nudges:outcomes"), 2 * couples)
                    outcomes = await _outcomes(redis, "nudges:outcomes")
                    code = notifier.terminate()
                dead = int(await redis.xlen("nudges:dead"))
                outbox_left = len([k async for k in redis.scan_iter(match="nudges:outbox:*")])
            finally:
                await redis.aclose()
            received = _addresses(mail)
        tally = Tally(outcomes)
        lost = 2 * couples - len(received)
        doubled = sum(received.values()) - len(received)
        missing = len(received) - tally.sent_to({_couple_partner(a) for a in received})
        figures = (
            f"redis OOM for {freed - refused_from:.0f} s in a {2 * couples}-email burst: "
            f"{refusals} OOM refusals, emails before/at first refusal/during "
            f"{before}/{at_refusal}/{during}, with every write refused: {hard[0]} in the "
            f"first second (in flight), {hard[1]} in the next 3 s; lost {lost}, doubled {doubled}, "
            f"missing outcomes {missing}, conflicting outcomes {tally.conflicting()}, "
            f"republished outcomes {tally.republished}, dead letters {dead}, "
            f"all delivered {recovered:.1f} s after memory was freed"
        )
        print(figures)
        fault_report.append(figures)
        assert code == 0
        assert refusals > 0
        assert hard[0] <= 2 * IN_FLIGHT
        assert hard[1] == 0
        assert (lost, doubled, dead) == (0, 0, 0)
        assert len(tally.ids) == 2 * couples  # every (occurrence, partner, channel)...
        assert tally.conflicting() == 0  # ...with exactly one outcome (by event id)
        assert missing == 0
        assert outbox_left == 0


class TestSchedulerOutOfMemory:
    async def test_an_outage_past_the_delivery_cap_dead_letters_and_loses_no_preference(
        self, tmp_path: Path, fault_report: list[str]
    ) -> None:
        """A scheduler process (reclaim idle 1 s, 2 deliveries before a dead letter) is handed
        a backlog of 200 preference events, 20 of them malformed, and Redis refuses every
        write from the first one on, for ~8 s: then memory is freed. Every valid event is
        applied, every malformed one rejected, none dead-lettered, none left pending. (Before,
        the refused batches were left to the reclaimer: dead letters after 2 s.)"""
        events, bad_every = 200, 10
        with EmbeddedValkey() as server:
            redis = aioredis.Redis.from_url(server.url)
            settings = scheduler_settings(server.url, "nudges")
            keys = settings.keys
            env = {
                "REDIS_URL": server.url,
                "NUDGE_RECLAIM_IDLE": "PT1S",
                "NUDGE_MAX_DELIVERIES": "2",
            }
            raws = [
                b'{"type": "preferences.set.v1"}' if n % bad_every == 0 else couple_event(n)
                for n in range(1, events + 1)
            ]
            try:
                with ServiceProcess("scheduler", env, tmp_path, "scheduler") as scheduler:
                    await redis.xadd(keys.preferences, {DATA_FIELD: couple_event(0)})
                    await eventually(lambda: redis.exists(keys.couple("c00000")), until=bool)
                    # Redis hands the first entry to the scheduler's waiting XREADGROUP right
                    # after its XADD; the rest of the backlog and the refusal follow at once.
                    async with redis.pipeline(transaction=False) as pipe:
                        pipe.config_set("maxmemory-policy", "noeviction")
                        for raw in raws:
                            pipe.xadd(keys.preferences, {DATA_FIELD: raw})
                        pipe.config_set("maxmemory", 1)
                        await pipe.execute()
                    refused_from = time.monotonic()
                    await asyncio.sleep(8.0)
                    during = await _applied(redis, settings, events)
                    refusals = await _oom_errors(redis)
                    await redis.config_set("maxmemory", 0)
                    freed = time.monotonic()
                    valid = events - events // bad_every
                    await _settle(lambda: _applied(redis, settings, events), valid, within=60)
                    recovered = time.monotonic() - freed
                    await _settle(lambda: _drained(redis, keys.preferences), 1, within=30)
                    code = scheduler.terminate()
                applied = await _applied(redis, settings, events)
                dead = int(await redis.xlen(keys.dead))
                rejected = Counter(
                    fields[b"entry_id"] for _, fields in await read_entries(redis, keys.rejected)
                )
                left = int(await redis.xlen(keys.preferences))
            finally:
                await redis.aclose()
        figures = (
            f"scheduler, redis OOM for {freed - refused_from:.0f} s (reclaim idle 1 s, dead "
            f"letter after 2 deliveries) over a backlog of {events} preference events: "
            f"{refusals} OOM refusals, {during} applied meanwhile; dead letters {dead}, "
            f"rejected {len(rejected)} of {events // bad_every} malformed (twice: "
            f"{sum(1 for n in rejected.values() if n > 1)}), left on the stream {left}, "
            f"{applied} of {valid} valid applied, {recovered:.1f} s after memory was freed"
        )
        print(figures)
        fault_report.append(figures)
        assert code == 0
        assert refusals > 0
        assert during == 0
        assert (dead, left) == (0, 0)
        assert applied == valid
        assert len(rejected) == events // bad_every


async def _applied(redis: aioredis.Redis, settings: SchedulerSettings, events: int) -> int:
    """How many of couples c00001..c<events> the scheduler has stored."""
    async with redis.pipeline(transaction=False) as pipe:
        for n in range(1, events + 1):
            pipe.exists(settings.keys.couple(f"c{n:05d}"))
        return sum(await pipe.execute())


class TestNotifierKilledRepeatedly:
    async def test_every_email_has_exactly_one_sent_outcome(
        self,
        redis: aioredis.Redis,
        redis_url: str,
        key_prefix: str,
        mail: MailCatcher,
        tmp_path: Path,
        fault_report: list[str],
    ) -> None:
        """Each of 8 notifier processes in turn gets a burst of NudgeDue and is killed
        (kill -9) in the middle of it, a few seconds after it started; a ninth finishes: every
        email has exactly one `nudge.sent.v1`, none is lost, and doubles stay within the sends
        in flight at the kills."""
        couples, kills, in_flight = 2000, 8, 8
        payloads = await _fire(redis, redis_url, key_prefix, couples)
        due = f"{key_prefix}:due:{{s00}}"
        await redis.delete(due)  # fed again below, a burst for each notifier started
        env = {
            "REDIS_URL": redis_url,
            "NUDGE_KEY_PREFIX": key_prefix,
            "NUDGE_SMTP_PORT": str(mail.port),
            "NUDGE_SMTP_CONCURRENCY": "4",
            "NUDGE_MAX_IN_FLIGHT": str(in_flight),
            "NUDGE_RECLAIM_IDLE": "PT1S",
            "NUDGE_LOG_LEVEL": "info",  # `service_running` tells when it reads (see _running)
        }

        async def burst(n: int) -> None:
            chunk = couples // kills
            async with redis.pipeline(transaction=False) as pipe:
                for payload in payloads[n * chunk : (n + 1) * chunk]:
                    pipe.xadd(due, {DATA_FIELD: payload})
                await pipe.execute()

        at_kills: list[int] = []
        started_at = time.monotonic()
        for n in range(kills):
            with ServiceProcess("notifier", env, tmp_path, f"notifier-{n}") as notifier:
                await _running(notifier)
                base = mail.count
                await burst(n)  # a burst of NudgeDue, and the kill in the middle of it
                await _until_count(mail, base + random.randint(50, 2 * (couples // kills) - 50))
                notifier.kill()
                at_kills.append(mail.count)
        seconds = time.monotonic() - started_at
        with ServiceProcess("notifier", env, tmp_path, "notifier-last") as last:
            await _running(last)  # so it handles SIGTERM when stopped
            await _settle(lambda: _unique(mail), 2 * couples, within=240)
            await _settle(lambda: _drained(redis, due), 1, within=60)
            await _settle(lambda: _triples(redis, f"{key_prefix}:outcomes"), 2 * couples)
            outcomes = await _outcomes(redis, f"{key_prefix}:outcomes")
            code = last.terminate()
        received = _addresses(mail)
        tally = Tally(outcomes)
        lost = 2 * couples - len(received)
        doubled = sum(received.values()) - len(received)
        missing = len(received) - tally.sent_to({_couple_partner(a) for a in received})
        bound = kills * 2 * in_flight  # each nudge in flight: two emails at most
        figures = (
            f"notifier kill -9 x{kills} in {seconds:.0f} s during {2 * couples} emails "
            f"(emails at the kills {at_kills}): "
            f"lost {lost}, doubled {doubled} (bound {bound}), missing outcomes {missing}, "
            f"conflicting outcomes {tally.conflicting()}, republished outcomes "
            f"{tally.republished}"
        )
        print(figures)
        fault_report.append(figures)
        assert code == 0
        assert lost == 0
        assert missing == 0
        assert tally.conflicting() == 0
        assert len(tally.ids) == 2 * couples
        assert doubled <= bound


async def _running(service: ServiceProcess) -> None:
    """Until the process has started its service: groups made, subscribers reading, signal
    handlers installed (its `service_running` line). Not "its consumer exists": Redis 7.0
    registers a consumer only when a read returns entries (Valkey on any read)."""

    async def started() -> bool:
        await asyncio.sleep(0)
        return '"service_running"' in service.log()

    await eventually(started, until=bool, within=60)


async def _settle(probe: Callable[[], Awaitable[int]], target: int, within: float = 60) -> None:
    """Wait until `probe()` reaches `target`, at most `within` s; the test then prints its
    figures and asserts, whether or not it was reached."""
    with contextlib.suppress(AssertionError):
        await eventually(probe, until=lambda n: n >= target, within=within)


async def _triples(redis: aioredis.Redis, stream: str) -> int:
    """(occurrence, partner, channel) with an outcome on `stream`."""
    return len(Tally(await _outcomes(redis, stream)).ids)


async def _drained(redis: aioredis.Redis, stream: str) -> int:
    return int(await drained(redis, stream))


async def _until_count(mail: MailCatcher, count: int) -> None:
    await eventually(lambda: _count(mail), until=lambda n: n >= count, within=60)


async def _count(mail: MailCatcher) -> int:
    return mail.count


async def _unique(mail: MailCatcher) -> int:
    return len(_addresses(mail))
