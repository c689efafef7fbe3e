"""Specification of `nudge trace COUPLE_ID`: one couple as the running services left it.

"Why did Lena get nothing last Saturday?": the real scheduler and notifier run lena-jo's
preferences with Lena paused, and the trace must say so: the pause, the suppressed outcome,
the next fires and whom they would reach, read from Redis, without any personal data.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from couples_nudge.common.clock import ManualClock
from couples_nudge.common.streams import DATA_FIELD, read_events
from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.service import NotifierService
from couples_nudge.operator.trace import CoupleTrace, build_trace
from couples_nudge.operator.trace_reader import InvalidCoupleId, read_trace
from couples_nudge.scheduler.service import SchedulerService
from couples_nudge_schemas import parse_outcome
from tests.support.cli import cli_env, nudge
from tests.support.events import EXAMPLES, envelope, example
from tests.support.settings import notifier_settings, scheduler_settings
from tests.support.waiting import eventually

# Tuesday 1 December 2026. lena-jo's date night is Saturdays 14:00 America/New_York (19:00Z),
# taking turns: Lena first, then Jo.
START = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
FIRST_DATE_NIGHT = datetime(2026, 12, 5, 19, 0, tzinfo=UTC)
PAUSED_UNTIL = datetime(2026, 12, 20, 0, 0, tzinfo=UTC)
IDEA = "Rent a rowing boat and read each other the worst poems we know"
PERSONAL = ("Lena", "Jo ", "lena@example.test", "jo@example.test", IDEA, "rowing")


@dataclass
class Traced:
    trace: CoupleTrace
    url: str
    prefix: str


async def _outcomes_of(redis: aioredis.Redis, stream: str, couple: str) -> list[Any]:
    events = await read_events(redis, stream, parse_outcome)
    return [e for e in events if e.data.couple_id == couple]


@pytest.fixture
async def traced(
    redis: aioredis.Redis, redis_url: str, key_prefix: str, mail: MailCatcher
) -> AsyncIterator[Traced]:
    """lena-jo (Lena paused, Jo unsubscribed from appreciation emails, two jar ideas) and
    maya-sam, through the first Saturday's date night."""
    clock = ManualClock(START)
    scheduler = SchedulerService(
        scheduler_settings(redis_url, key_prefix, max_poll_seconds=0.02), clock
    )
    notifier = NotifierService(notifier_settings(redis_url, key_prefix, smtp_port=mail.port), clock)
    await scheduler.start()
    await notifier.start()
    try:
        at = START - timedelta(hours=1)
        events = [
            (EXAMPLES / "lena-and-jo.json").read_bytes(),
            (EXAMPLES / "maya-and-sam.json").read_bytes(),
            envelope(
                "preferences.paused.v1",
                {"couple_id": "lena-jo", "partner_id": "lena", "until": PAUSED_UNTIL.isoformat()},
                at,
            ),
            envelope(
                "preferences.unsubscribed.v1",
                {
                    "couple_id": "lena-jo",
                    "partner_id": "jo",
                    "kind": "appreciation",
                    "channel": "email",
                },
                at,
            ),
        ]
        events += [
            envelope(
                "datejar.idea_added.v1",
                {"couple_id": "lena-jo", "idea_id": f"idea-{n}", "text": IDEA, "added_by": "jo"},
                at,
            )
            for n in (1, 2)
        ]
        for event in events:
            await redis.xadd(scheduler.keys.preferences, {DATA_FIELD: event})
        jar = scheduler.keys.jar("lena-jo")
        await eventually(lambda: redis.hlen(jar), until=lambda n: n == 2)
        clock.set(FIRST_DATE_NIGHT + timedelta(seconds=1))

        async def date_night() -> list[Any]:
            found = await _outcomes_of(redis, scheduler.keys.outcomes, "lena-jo")
            return [e for e in found if e.data.kind == "date_night"]

        await eventually(date_night, until=bool)
        read = await read_trace(redis, scheduler.keys, "lena-jo")
        yield Traced(build_trace(read, clock.now(), fires=20), redis_url, key_prefix)
    finally:
        await notifier.stop()
        await scheduler.stop()


class TestTrace:
    async def test_the_pause_explains_why_lena_got_nothing(self, traced: Traced) -> None:
        """Lena's pause is listed, and Saturday's date night is her suppressed outcome."""
        trace = traced.trace
        assert trace.found
        assert trace.revision == example("lena-and-jo")["data"]["revision"]
        [pause] = trace.pauses
        assert (pause.scope, pause.until, pause.active) == ("lena", PAUSED_UNTIL, True)
        date_nights = [o for o in trace.outcomes if o.kind == "date_night"]
        assert [(o.outcome, o.partner_id, o.reason) for o in date_nights] == [
            ("suppressed", "lena", "paused")
        ]
        assert (
            date_nights[0].occurrence_id == f"lena-jo/d/turns@{int(FIRST_DATE_NIGHT.timestamp())}"
        )
        print(f"trace: {len(trace.outcomes)} outcomes of {trace.outcomes_scanned} scanned")

    async def test_schedules_are_decoded_with_their_armed_timers(self, traced: Traced) -> None:
        """Every schedule of the couple, its rule, zone, audience and the timer it waits on."""
        by_id = {s.schedule_id: s for s in traced.trace.schedules}
        assert set(by_id) == {
            "lena-jo/d/turns",
            "lena-jo/c/lena",
            "lena-jo/c/jo",
            "lena-jo/a/lena",
            "lena-jo/a/jo",
        }
        turns = by_id["lena-jo/d/turns"]
        assert (turns.rule, turns.timezone, turns.takes_turns) == (
            "cron 0 14 * * 6",
            "America/New_York",
            True,
        )
        assert turns.sequence == 1  # one date night published: Lena's
        assert turns.armed_at == FIRST_DATE_NIGHT + timedelta(days=7)
        assert by_id["lena-jo/c/jo"].rule == "cron 30 19 15 * *"
        assert by_id["lena-jo/c/jo"].timezone == "Europe/London"

    async def test_next_fires_say_whose_turn_and_who_would_be_reached(self, traced: Traced) -> None:
        """Date nights alternate Jo, Lena, Jo; Lena's falls in her pause; Jo's appreciation
        emails are unsubscribed; each at the partner's own local time."""
        trace = traced.trace
        date_nights = [f for f in trace.next_fires if f.kind == "date_night"]
        assert [f.at for f in date_nights] == [
            FIRST_DATE_NIGHT + timedelta(days=7 * n) for n in range(1, len(date_nights) + 1)
        ]
        who = [(f.recipients[0].partner_id, f.recipients[0].blocked) for f in date_nights[:3]]
        assert who == [("jo", None), ("lena", "paused"), ("jo", None)]
        jo = date_nights[0].recipients[0]
        assert (jo.at_local, jo.timezone, jo.channels) == (
            "2026-12-12T19:00+00:00",
            "Europe/London",
            ("email",),
        )
        appreciation = [
            (f.at, r.partner_id, r.blocked)
            for f in trace.next_fires
            if f.kind == "appreciation"
            for r in f.recipients
        ]
        assert {partner for _, partner, _ in appreciation} == {"lena", "jo"}
        for at, partner, blocked in appreciation:
            lena_paused = "paused" if at < PAUSED_UNTIL else None
            assert blocked == ("unsubscribed" if partner == "jo" else lena_paused)
        assert [u.kind for u in trace.unsubscribes] == ["appreciation"]
        assert len(trace.next_fires) == 20
        assert [f.at for f in trace.next_fires] == sorted(f.at for f in trace.next_fires)

    async def test_jar_size_and_ids_only_never_personal_data(self, traced: Traced) -> None:
        """The jar's size, partner ids and zones; no name, address or idea text anywhere."""
        trace = traced.trace
        assert trace.jar_size == 2
        assert [(p.partner_id, p.timezone) for p in trace.partners] == [
            ("lena", "America/New_York"),
            ("jo", "Europe/London"),
        ]
        text = json.dumps(trace.as_json())
        assert not [word for word in PERSONAL if word in text]
        assert "maya" not in text  # another couple's outcomes are filtered out

    async def test_nudge_trace_prints_tables_and_json(self, traced: Traced) -> None:
        """The command reads the same and prints it as tables, or one JSON object."""
        env = cli_env(REDIS_URL=traced.url, NUDGE_KEY_PREFIX=traced.prefix, COLUMNS="200")
        tables, as_json = await asyncio.gather(
            asyncio.to_thread(nudge, "trace", "lena-jo", env=env),
            asyncio.to_thread(nudge, "trace", "lena-jo", "--json", env=env),
        )
        assert tables.code == 0, tables.err
        assert "lena-jo/d/turns" in tables.out
        assert "paused" in tables.out
        assert not [word for word in PERSONAL if word in tables.out]
        assert as_json.code == 0, as_json.err
        data = json.loads(as_json.out)
        assert data["couple_id"] == "lena-jo"
        assert data["jar_size"] == 2
        assert data["pauses"][0]["until"] == "2026-12-20T00:00:00Z"
        assert {s["schedule_id"] for s in data["schedules"]} == {
            s.schedule_id for s in traced.trace.schedules
        }


class TestTraceEdges:
    async def test_an_unknown_couple_is_reported_not_found(
        self, redis: aioredis.Redis, key_prefix: str
    ) -> None:
        """No hash: found is false, nothing is made up, and the read writes nothing."""
        from couples_nudge.common.keys import Keys

        keys = Keys(prefix=key_prefix)
        trace = build_trace(await read_trace(redis, keys, "nobody"), START)
        assert (trace.found, trace.schedules, trace.next_fires, trace.outcomes) == (
            False,
            (),
            (),
            (),
        )
        assert [k async for k in redis.scan_iter(match=f"{key_prefix}:*")] == []

    @pytest.mark.parametrize("couple", ["", "../x", "a b", "x" * 65, "lena:jo", "{s00}", "é"])
    async def test_an_id_outside_the_id_pattern_is_refused_before_any_key_is_built(
        self, redis: aioredis.Redis, key_prefix: str, couple: str
    ) -> None:
        """SafeId is checked first; the error does not repeat the input."""
        from couples_nudge.common.keys import Keys

        with pytest.raises(InvalidCoupleId) as refused:
            await read_trace(redis, Keys(prefix=key_prefix), couple)
        assert couple not in str(refused.value) or couple == ""

    def test_the_command_refuses_a_bad_id_in_one_line_with_exit_2(self) -> None:
        """A usage error: one line on stderr, exit code 2, the input not echoed."""
        ran = nudge("trace", "no/such:couple" + "x" * 200)
        assert ran.code == 2
        assert len(ran.err_lines) == 1
        assert "not a couple id" in ran.err
        assert "no/such" not in ran.err
