"""The notifier draws date nights from the couple's own jar in a real Redis: without
replacement until the jar is empty, then refilled; the same idea for both partners and on
redelivery; "mixed" takes the jar and the catalog in turn."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio as aioredis
import structlog

from couples_nudge.common.clock import ManualClock
from couples_nudge.notifier.channels.base import Outgoing, RecordingChannel
from couples_nudge.notifier.errors import TransientSendError
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.scheduler.ingest import PreferenceIngest
from couples_nudge.scheduler.store import ScheduleStore
from couples_nudge_schemas import NudgeDue, NudgeSent, parse_preference
from tests.support.events import example
from tests.support.jar import idea_added
from tests.support.notifier import deliver_published, delivery, due, plant
from tests.support.settings import notifier_settings, scheduler_settings

FRIDAY = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)  # 19:00 in Berlin
IDEAS = {
    "roof": "Picnic on the roof <with> the good blanket",
    "salsa": "Salsa class & tapas after",
    "stars": "Drive out of town and {watch} the stars",
}


def couple(source: str, **plan: Any) -> dict[str, Any]:
    data: dict[str, Any] = copy.deepcopy(example()["data"])
    for partner in data["partners"]:
        partner["channels"] = ["webhook"]
        partner.pop("quiet_hours", None)
    data["nudges"]["date_night"] = {
        "cadence": {"repeat": "weekly", "weekday": "fri", "at": "19:00"},
        "recipients": "both",
        "timing": "together",
        "source": source,
        **plan,
    }
    return data


async def fill_jar(
    redis: aioredis.Redis, settings: NotifierSettings, ideas: dict[str, str]
) -> None:
    """Put ideas into maya-sam's jar with the scheduler's own code."""
    sched = scheduler_settings(str(settings.redis_url.get_secret_value()), settings.key_prefix)
    ingest = PreferenceIngest(
        ScheduleStore(redis, settings.keys, due_maxlen=1000), ManualClock(FRIDAY), sched
    )
    for idea_id, text in ideas.items():
        assert (
            await ingest.apply(parse_preference(idea_added("maya-sam", idea_id, text))) == "added"
        )


def nth(nudge: NudgeDue, sequence: int) -> NudgeDue:
    return nudge.model_copy(update={"data": nudge.data.model_copy(update={"sequence": sequence})})


def weekly(schedule_id: str, weeks: int, recipients: list[str]) -> list[NudgeDue]:
    return [
        nth(due("maya-sam", schedule_id, "date_night", recipients, FRIDAY + timedelta(weeks=w)), w)
        for w in range(weeks)
    ]


async def deliver_at(deliverer: Any, nudge: NudgeDue) -> Any:
    """Deliver at the nudge's own instant (the daily cap counts real days)."""
    clock = deliverer.clock
    assert isinstance(clock, ManualClock)
    clock.set(nudge.data.scheduled_at)
    return await deliver_published(deliverer, nudge)


def contents(sent: list[Outgoing]) -> dict[str, set[str]]:
    """Per occurrence, the push bodies its messages carried."""
    found: dict[str, set[str]] = {}
    for message in sent:
        assert message.push is not None
        found.setdefault(message.occurrence_id, set()).add(message.push["body"])
    return found


def drawn_ids(results: list[Any]) -> list[str]:
    """Per delivery, the content id both partners were sent (asserting it is one)."""
    ids = []
    for result in results:
        shown = {o.data.content_id for o in result.outcomes if isinstance(o, NudgeSent)}
        assert len(shown) == 1, shown
        ids.append(shown.pop())
    return ids


@dataclass
class FlakyChannel(RecordingChannel):
    """Fails the first send to `partner` transiently, records the rest."""

    partner: str = "sam"
    failed: list[str] = field(default_factory=list)

    async def send(self, message: Outgoing) -> None:
        if message.partner_id == self.partner and message.occurrence_id not in self.failed:
            self.failed.append(message.occurrence_id)
            raise TransientSendError("webhook", "503")
        await super().send(message)


class TestJarDraws:
    async def test_ideas_are_drawn_without_replacement_then_the_jar_refills(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Three ideas, six date nights: each idea once in the first three, and again once each
        in the next three; both partners get the same idea every time."""
        settings = notifier_settings(redis_url, key_prefix)
        [sid] = [s for s in await plant(redis, settings, couple("jar"), FRIDAY) if "/d/" in s]
        await fill_jar(redis, settings, IDEAS)
        channel = RecordingChannel(name="webhook")
        deliverer = delivery(redis, settings, {"webhook": channel}, ManualClock(FRIDAY))
        results = [await deliver_at(deliverer, n) for n in weekly(sid, 6, ["maya", "sam"])]
        ids = drawn_ids(results)
        print(f"draw order over six date nights: {ids}")
        assert sorted(ids[:3]) == sorted(ids[3:]) == [f"jar:{i}" for i in sorted(IDEAS)]
        bodies = contents(channel.sent)
        assert all(len(both) == 1 for both in bodies.values())  # same idea for both partners
        assert {next(iter(b)) for b in bodies.values()} == {
            f"From your date jar: {text}" for text in IDEAS.values()
        }

    async def test_a_redelivery_gets_the_idea_drawn_first(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Sam's first send fails and is retried after later date nights drew other ideas:
        the retry still carries the idea Maya got."""
        settings = notifier_settings(redis_url, key_prefix)
        [sid] = [s for s in await plant(redis, settings, couple("jar"), FRIDAY) if "/d/" in s]
        await fill_jar(redis, settings, IDEAS | {"zoo": "Zoo at night"})  # one left undrawn
        channel = FlakyChannel(name="webhook")
        clock = ManualClock(FRIDAY)
        deliverer = delivery(redis, settings, {"webhook": channel}, clock)
        first, *later = weekly(sid, 3, ["maya", "sam"])
        result = await deliver_at(deliverer, first)
        assert [r.partner_id for r in result.retry] == ["sam"]
        for hours, nudge in enumerate(later, start=1):  # drawn early, as by a catch-up
            clock.set(FRIDAY + timedelta(hours=hours))
            await deliver_published(deliverer, nudge)
        clock.set(FRIDAY + timedelta(hours=3))
        retried = await deliver_published(deliverer, first)
        [sent] = [o for o in retried.outcomes if isinstance(o, NudgeSent)]
        to = {m.partner_id: m.push["body"] for m in channel.sent if m.push is not None and
              m.occurrence_id == first.data.occurrence_id}  # fmt: skip
        assert to["sam"] == to["maya"]
        [maya_first] = [o for o in result.outcomes if isinstance(o, NudgeSent)]
        assert sent.data.content_id == maya_first.data.content_id

    async def test_own_local_partners_get_the_same_idea_on_their_day(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """With timing own_local each partner has an occurrence of their own at their local
        19:00 (Berlin and New York): both draw one idea, the same."""
        settings = notifier_settings(redis_url, key_prefix)
        data = couple("jar", recipients="both", timing="own_local")
        data["partners"][1]["timezone"] = "America/New_York"
        sids = [s for s in await plant(redis, settings, data, FRIDAY) if "/d/" in s]
        assert sorted(sids) == ["maya-sam/d/maya", "maya-sam/d/sam"]
        await fill_jar(redis, settings, IDEAS)
        channel = RecordingChannel(name="webhook")
        deliverer = delivery(redis, settings, {"webhook": channel}, ManualClock(FRIDAY))
        maya = due("maya-sam", "maya-sam/d/maya", "date_night", ["maya"], FRIDAY)
        sam = due("maya-sam", "maya-sam/d/sam", "date_night", ["sam"], FRIDAY + timedelta(hours=6))
        ids = drawn_ids([await deliver_at(deliverer, n) for n in (maya, sam)])
        assert ids[0] == ids[1]
        assert ids[0].startswith("jar:")
        assert await redis.hlen(settings.keys.jar_draws("maya-sam")) == 2  # one drawn, one record

    async def test_mixed_takes_the_jar_and_the_catalog_in_turn(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """ "mixed": the jar on even occurrences, the catalog on odd ones."""
        settings = notifier_settings(redis_url, key_prefix)
        [sid] = [s for s in await plant(redis, settings, couple("mixed"), FRIDAY) if "/d/" in s]
        await fill_jar(redis, settings, IDEAS)
        deliverer = delivery(
            redis, settings, {"webhook": RecordingChannel(name="webhook")}, ManualClock(FRIDAY)
        )
        results = [await deliver_at(deliverer, n) for n in weekly(sid, 4, ["maya", "sam"])]
        ids = drawn_ids(results)
        print(f"mixed over four date nights: {ids}")
        assert [i.startswith("jar:") for i in ids] == [True, False, True, False]
        assert all(i.startswith("dn-") for i in ids[1::2])

    async def test_an_empty_jar_gives_the_catalogs_idea(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """A couple with source "jar" and no idea in it still gets a date night."""
        settings = notifier_settings(redis_url, key_prefix)
        [sid] = [s for s in await plant(redis, settings, couple("jar"), FRIDAY) if "/d/" in s]
        deliverer = delivery(
            redis, settings, {"webhook": RecordingChannel(name="webhook")}, ManualClock(FRIDAY)
        )
        [content] = drawn_ids([await deliver_at(deliverer, weekly(sid, 1, ["maya"])[0])])
        assert content.startswith("dn-")
        assert await redis.exists(settings.keys.jar_draws("maya-sam")) == 0

    async def test_the_idea_is_in_no_outcome_and_no_log_line(
        self, redis: aioredis.Redis, redis_url: str, key_prefix: str
    ) -> None:
        """Outcomes name the draw as jar:<idea id>; the idea's text is never logged."""
        settings = notifier_settings(redis_url, key_prefix)
        [sid] = [s for s in await plant(redis, settings, couple("jar"), FRIDAY) if "/d/" in s]
        await fill_jar(redis, settings, IDEAS)
        deliverer = delivery(
            redis, settings, {"webhook": FlakyChannel(name="webhook")}, ManualClock(FRIDAY)
        )
        with structlog.testing.capture_logs() as logs:
            result = await deliver_at(deliverer, weekly(sid, 1, ["maya", "sam"])[0])
        outcomes = json.dumps([o.model_dump(mode="json") for o in result.outcomes])
        for text in IDEAS.values():
            assert text not in outcomes
            assert text not in repr(logs)
        assert '"content_id": "jar:' in outcomes
