"""A simulated work week of the whole system on the cluster, shared by the end-to-end tests.

Schedulers and notifiers run as real processes (`python -m couples_nudge ...`) with
NUDGE_REDIS_CLUSTER=true and NUDGE_SHARDS=8, on one simulated clock (NUDGE_CLOCK_START /
SPEED / ANCHOR). Preferences go in as other apps send them (XADD on the preferences stream)
while the simulated clock still reads the weekend before; the week's nudges fire Monday to
Friday only, so nothing is due before the clock's start and the expected emails are exactly
those of `occurrences(...)` in the week.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from couples_nudge.common.keys import NOTIFIER_GROUP, SCHEDULER_GROUP, Keys
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge_schemas import NudgeSent, parse_outcome
from tests.support.couples import couple_event, occurrences
from tests.support.processes import ServiceProcess

SHARDS = 8
MONDAY = datetime(2026, 12, 7, tzinfo=UTC)
DAYS = 5
# Europe/Berlin, Monday to Friday only: a check-in for both and an appreciation for each
# partner every day, a date night on Wednesday (22 emails a couple). Weekends are quiet, so
# the clock may start on Saturday. (Weekday lists, not ranges: croniter walks "1-5" slowly.)
WORKWEEK: dict[str, Any] = {
    "date_night": {
        "cadence": {"repeat": "weekly", "weekday": "wed", "at": "19:00"},
        "timing": "together",
    },
    "check_in": {"cadence": {"repeat": "cron", "cron": "0 9 * * 1,2,3,4,5"}, "timing": "together"},
    "appreciation": {"cadence": {"repeat": "cron", "cron": "30 13 * * 1,2,3,4,5"}},
}


@dataclass
class WorkWeek:
    """`couples` couples over a simulated Monday-Friday lasting `seconds` real seconds."""

    url: str
    prefix: str
    mail: MailCatcher
    log_dir: Path
    couples: int = 40
    seconds: float = 30.0
    lead: float = 10.0  # real seconds from now until Monday 00:00 (processes start meanwhile)
    # Short, so that entries whose handler failed (a failover) are retried within the test;
    # entries a live notifier is still handling are never taken over (Reclaimer.refresh).
    reclaim_idle: str = "PT5S"
    anchor: float = field(init=False, default=0.0)
    processes: list[ServiceProcess] = field(init=False, default_factory=list)

    @property
    def keys(self) -> Keys:
        return Keys(prefix=self.prefix, shards=SHARDS)

    @property
    def speed(self) -> float:
        return DAYS * 86400 / self.seconds

    @property
    def end(self) -> datetime:
        return MONDAY + timedelta(days=DAYS)

    def env(self) -> dict[str, str]:
        return {
            "REDIS_URL": self.url,
            "NUDGE_REDIS_CLUSTER": "true",
            "NUDGE_SHARDS": str(SHARDS),
            "NUDGE_KEY_PREFIX": self.prefix,
            "NUDGE_SMTP_PORT": str(self.mail.port),
            "NUDGE_CLOCK_START": MONDAY.isoformat(),
            "NUDGE_CLOCK_SPEED": str(self.speed),
            "NUDGE_CLOCK_ANCHOR": str(self.anchor),
            "NUDGE_MAX_POLL_SECONDS": "0.02",
            "NUDGE_RECLAIM_IDLE": self.reclaim_idle,
            "NUDGE_DAILY_CAP_PER_PARTNER": "50",
            # A real second is four simulated hours: stalls and failovers stay inside grace.
            "NUDGE_GRACE_DATE_NIGHT": "P10D",
            "NUDGE_GRACE_CHECK_IN": "P10D",
            "NUDGE_GRACE_APPRECIATION": "P10D",
        }

    def start(self, schedulers: int, notifiers: int) -> None:
        """Fix the shared clock (Monday 00:00 is `lead` seconds away) and start the processes."""
        assert self.lead * self.speed < 2 * 86400, "the processes must never see a Friday"
        self.anchor = time.time() + self.lead
        env = self.env()
        for role, count in (("scheduler", schedulers), ("notifier", notifiers)):
            for i in range(count):
                name = f"{role}-{i}"
                self.processes.append(ServiceProcess(role, env, self.log_dir, name).start())

    async def publish_preferences(self, redis: aioredis.Redis) -> None:
        """Every couple's preferences.set.v1 on the preferences stream, as an app sends them."""
        for n in range(self.couples):
            await redis.xadd(self.keys.preferences, {DATA_FIELD: couple_event(n, nudges=WORKWEEK)})

    def wall(self, simulated: datetime) -> float:
        """The Unix time at which the shared clock reads `simulated`."""
        return self.anchor + (simulated - MONDAY).total_seconds() / self.speed

    def expected_emails(self) -> Counter[str]:
        return Counter(
            f"{partner}-{schedule.couple_id[1:]}@example.test"
            for schedule, _, _ in occurrences(self.couples, MONDAY, self.end, nudges=WORKWEEK)
            for partner in schedule.recipients
        )

    def expected_sends(self) -> set[tuple[str, str]]:
        return {
            (oid, partner)
            for schedule, _, oid in occurrences(self.couples, MONDAY, self.end, nudges=WORKWEEK)
            for partner in schedule.recipients
        }

    def stop(self) -> list[int]:
        """SIGTERM every live process; their exit codes (0: a graceful stop)."""
        return [p.terminate() for p in self.processes if p.alive()]

    def kill_all(self) -> None:
        for process in self.processes:
            if process.alive():
                process.kill()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.log()[-1500:]}" for p in self.processes)


async def applied(redis: aioredis.Redis, keys: Keys, couples: int) -> int:
    """How many of the couples the schedulers have stored so far."""
    found = 0
    for n in range(couples):
        found += int(await redis.exists(keys.couple(f"c{n:05d}")))
    return found


async def undrained(redis: aioredis.Redis, keys: Keys) -> list[str]:
    """What is still pending or unread: in any due stream's notifier group, or in preferences."""
    found = []
    for stream, name in [(s, NOTIFIER_GROUP) for s in keys.all_due()] + [
        (keys.preferences, SCHEDULER_GROUP)
    ]:
        groups = await redis.xinfo_groups(stream)
        group = next((g for g in groups if g["name"] == name.encode()), None)
        if group is None:
            found.append(f"{stream}: no group {name}")
        elif group["pending"] or group.get("lag"):
            found.append(f"{stream}: pending {group['pending']}, lag {group.get('lag')}")
    return found


async def sends(redis: aioredis.Redis, keys: Keys) -> Counter[tuple[str, str]]:
    """(occurrence, partner) of every nudge.sent.v1 outcome, counted."""
    events = await read_events(redis, keys.outcomes, parse_outcome)
    return Counter(
        (e.data.occurrence_id, e.data.partner_id) for e in events if isinstance(e, NudgeSent)
    )


def addresses(mail: MailCatcher) -> Counter[str]:
    return Counter(str(m["To"]).split("<")[-1].rstrip(">") for m in mail.messages)
