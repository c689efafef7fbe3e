"""Delivering one NudgeDue: consent checks, idempotency, content, rendering, sending.

For each recipient and each of their channels, in order:
  already sent (idempotency record)  -> nothing to do, no second outcome
  couple gone / schedule replaced    -> suppressed (erased or state_lost: vanished.py;
                                        stale_revision)
  paused, unsubscribed, channel dead -> suppressed with that reason
  daily cap reached (caps.py)        -> suppressed "cap_reached", once per partner
  otherwise: choose content, render, send, record, outcome "sent"
Content: a date night of a couple whose ideas come from their own date jar draws one idea per
nudge (jar.py, jar_store.py: before the cap slots are reserved, so a redelivery finds the
same draw); a daily check-in is the couple's question of the day (daily_question.py); else
the catalog's choice (content.py).

The "mobile" channel is one send per device of the partner (channels/mobile.py): each device
has its own idempotency key ("<occurrence>|<partner>|mobile:<device ref>"), "sending" mark and
outcome (with `device`), all under the partner's one cap slot for the occurrence; a device that
answered "gone" is marked dead alone (`dead:<partner>:mobile:<ref>`) and later nudges report
it suppressed `channel_dead` while the partner's other devices go on.
Emails carry a signed one-click unsubscribe link for the nudge's kind (unsubscribe.py) when
unsubscribe links are configured; push and webhook payloads carry the deep link.
Transient failures are returned, not raised, next to the outcomes of what did succeed: the
service publishes those outcomes and schedules a retry that sends only what is missing (the
idempotency records make the retry skip everything already done).

Nothing is sent unless Redis has just taken a write for it (RESERVE, caps.py: it fails while
Redis refuses writes, and then this raises before any send). After a send, its record and its
outcome go into Redis together (RECORD_SENT, state.py: the outcome waits in the couple's
outbox until the service has published it); if Redis cannot take that record, the send is not
forgotten: the record is retried here, with backoff, until Redis takes it or the service stops.
Outcomes found in the outbox (a crash came between record and publish) are published again as
they were written (`DeliveryResult.boxed`). Every outcome's event_id is a UUIDv5 of what it is
about, so a republished outcome is recognisably the same event.

Hot-path habits (issue 20; CPython 3.11, measured with benchmarks/callgrind_notifier.py):
- The NudgeDue's data fields are read once per delivery into `_Nudge`, a slots record passed
  down in place of the model: every attribute of a pydantic instance goes through the model
  class's `__getattr__` hook (~400 instructions against ~30 for a slot), and a delivery read
  ~27 of them a message. Invariant: the model is frozen and its `__dict__` holds exactly its
  fields (extras are forbidden), so the record holds what the attributes answer
  (tests/unit/test_delivery_nudge.py).
- What runs per nudge builds its lists with loops, not comprehensions: on 3.11 each
  comprehension is a function frame of its own (~1-2k instructions).
- The records made per message (`_Send`, `_Wanted`, `Boxed`) are slots dataclasses that are
  not frozen: a frozen one's `__init__` sets each field through `object.__setattr__`
  (~0.4k instructions a field). None is changed once made, nor hashed. `_Send.slot` is a
  field (made with the send), not a property: read twice a send.
- A send's NudgeSent and its JSON come from the delivery's `SentOutcomes` (outcomes.py, 3),
  made once per delivery with its sends; `_sent` and `streams.encode` only for values it
  does not vouch for.
- A couple whose hash holds no consent mark (`CoupleState.consent_marks` False, set by
  `parse_couple`) is not asked `paused`, `snoozed`, `unsubscribed`, `channel_dead` nor
  `device_dead`: each would answer False (CoupleState's docstring; the property test
  tests/property/test_couple_parse.py::TestConsentMarks). ~19.7k instructions a nudge.
- A date night's or check-in's catalog choice is made once per delivery and shared by both
  partners (`_SharedPick`: `choose_for` reads no partner for those kinds), each reading it
  in their locale; ~23k instructions a nudge less.
- No function run per message holds a comprehension or generator that reads its arguments
  or locals: on 3.11 those become cells, allocated on every call even when the comprehension
  does not run (`_signed_answers` is apart from `_answers`; content.Pool._allowed_of,
  mime.SevenBitPlan._overlong and `handle`'s give-up loop likewise; h/notify14).
- `_render` asks a link helper (push deep link, unsubscribe, manage, one-tap answers) and
  reads the instant's `timestamp()` only when its feature is configured. Invariant: each
  helper answers None (or ()) when its own setting is off, reading nothing else; so a view is
  the same (tests: the emails' bytes, benchmarks/callgrind_render.py --digest, with and
  without --links). The view is built by position (`render.view_of`, pinned by a test).
  `_wanted` asks `_blocked` only for a couple with consent marks (else only its last check,
  "no_channel", can answer; see the consent-marks bullet).
- `zip` without `strict=True` where both sides are made in step (a nudge's sends and
  `all_of`'s results; the partners asked and RESERVE's answers, whose count
  `CapLedger.reserve` checks): its keyword costs ~1.6k instructions a call on 3.11.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from typing import Any, Final, TypeVar, get_args

import structlog
from pydantic import BaseModel
from redis.exceptions import RedisError

from couples_nudge.common.clock import Clock, epoch_ms, from_ms
from couples_nudge.common.couple_state import CoupleState, device_ref
from couples_nudge.common.listening import keeps, per_week, step_at
from couples_nudge.common.refusals import pause
from couples_nudge.common.streams import encode
from couples_nudge.notifier.actions import ONE_TAP, ActionClaim, ActionKind, ActionTokens
from couples_nudge.notifier.answers import ignored_feedback
from couples_nudge.notifier.caps import CapLedger, capped_member
from couples_nudge.notifier.catalog import Catalog, Item
from couples_nudge.notifier.channels.base import Channel, Outgoing
from couples_nudge.notifier.channels.mobile import MobileChannel
from couples_nudge.notifier.content import Pool, choose_for
from couples_nudge.notifier.daily_question import question_for
from couples_nudge.notifier.engagement import EngagementStore
from couples_nudge.notifier.errors import PermanentSendError, TransientSendError, unexpected
from couples_nudge.notifier.jar import JarIdea, draw_key, draws_from_jar, jar_item
from couples_nudge.notifier.jar_store import JarStore
from couples_nudge.notifier.message_ids import MessageIds, MessageRef, provider_headers
from couples_nudge.notifier.occurrence_day import content_day
from couples_nudge.notifier.outcomes import SentOutcomes, built, outcome_id, plain_fields
from couples_nudge.notifier.render import (
    deep_link,
    message_domain,
    render_email_bytes,
    render_push,
    view_of,
)
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.state import NotifierState, dead_field, idempotency_key
from couples_nudge.notifier.unsubscribe import UnsubscribeClaim, UnsubscribeTokens, parse_keys
from couples_nudge.notifier.vanished import why_vanished
from couples_nudge_schemas import (
    Channel as ChannelName,
)
from couples_nudge_schemas import (
    Device,
    EventRejected,
    NudgeDue,
    NudgeDueData,
    NudgeFailed,
    NudgeFailedData,
    NudgeFeedback,
    NudgeKind,
    NudgeSent,
    NudgeSentData,
    NudgeSuppressed,
    NudgeSuppressedData,
    OutcomeEvent,
    Partner,
    SuppressionReason,
    parse_outcome,
)

__all__ = ["PRODUCER", "Boxed", "Delivery", "DeliveryResult", "RetryNeeded", "outcome_id"]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

log = structlog.get_logger()
PRODUCER: Final = "nudge-notifier"
_DAY_MS: Final = 24 * 3600 * 1000
_CAPPED: Final = "|capped"
# A record refused while the service stops is tried again this often (`Delivery._record`):
# the stop's budget is seconds, so no backoff.
_STOPPING_RETRY_S: Final = 0.2


@dataclass(frozen=True, slots=True)
class RetryNeeded:
    partner_id: str
    channel: ChannelName
    error: TransientSendError
    device: str | None = None  # channel "mobile": the device's reference


@dataclass(slots=True)
class _Nudge:
    """A NudgeDue's data, its fields read once per delivery (see the module docstring).
    Never changed once made."""

    data: NudgeDueData  # for the helpers that take the model (jar.py, occurrence_day.py)
    occurrence_id: str
    couple_id: str
    schedule_id: str
    kind: NudgeKind
    recipients: list[str]
    turn: str | None
    sequence: int
    scheduled_at: datetime
    note: str | None
    scheduled_ms: int

    @classmethod
    def of(cls, due: NudgeDue) -> _Nudge:
        data = due.data
        v = data.__dict__  # exactly the model's fields (extras are forbidden)
        at = v["scheduled_at"]
        return cls(
            data, v["occurrence_id"], v["couple_id"], v["schedule_id"], v["kind"],
            v["recipients"], v["turn"], v["sequence"], at, v["note"], epoch_ms(at),
        )  # fmt: skip


@dataclass(slots=True)
class _Send:
    """One message to send: on a channel, or on one device of the "mobile" channel. Never
    changed once made (not frozen: see the module docstring)."""

    channel: ChannelName
    key: str  # idempotency key
    device: Device | None
    ref: str | None  # device_ref(device.token)
    slot: str  # what stands for the channel in keys and marks (`slot_of`): a field, not a
    # property, as it is read twice a send

    @classmethod
    def on(cls, channel: ChannelName, key: str) -> _Send:
        """A send on a channel (not a device): its slot is the channel."""
        return cls(channel, key, None, None, channel)


def slot_of(channel: str, ref: str | None) -> str:
    """What stands for a channel (or a device of "mobile") in keys and marks."""
    return channel if ref is None else f"{channel}:{ref}"


@dataclass(slots=True)
class _Wanted:
    """A recipient who still needs this nudge, and the sends they need. Never changed once
    made (not frozen: see the module docstring)."""

    partner: Partner
    partner_id: str  # partner.partner_id
    other: Partner
    channels: list[_Send]


@dataclass(slots=True)
class Boxed:
    """An outcome waiting in the couple's outbox: publish `data`, then delete `field`. Never
    changed once made (not frozen: see the module docstring)."""

    field: str
    data: bytes


@dataclass(slots=True)
class _SharedPick:
    """The catalog's pick (in the default locale) for a nudge whose partners get the same
    item: every kind but appreciation, which `content.choose_for` draws per giver. For the
    others its answer depends on the occurrence (the seed), the couple (focus areas, context,
    check-in format), the sequence and the sightings, never on the partner, so within one
    delivery it is made for the first partner and reused for the other (a choice cost ~23k
    instructions: callgrind, a loop of 400; issue 20, h/notify11). One per delivery; set
    once; the jar's draws and the daily question do not use it."""

    item: Item | None = None


@dataclass(init=False, slots=True)
class DeliveryResult:
    """`boxed`: the outbox entry of each outcome that has one, by the outcome's `id()` (its
    `event_id` costs a pydantic attribute read and a UUID hash in Python, twice a message).
    The outcomes are held in `outcomes` while the result lives, so no id is reused meanwhile;
    `box` is the only way an outcome gets an entry.

    Made empty, once per delivery, by its own `__init__`: empty literals, where the
    dataclass's four default factories were four calls and the instance a `__dict__`
    (4.2k -> 2.4k instructions: callgrind, a loop of 1,000; h/notify11)."""

    outcomes: list[OutcomeEvent]
    retry: list[RetryNeeded]
    boxed: dict[int, Boxed]  # id(outcome) -> its outbox entry
    # For the preferences stream: "ignored" streaks of the listening cadence (engagement.py).
    feedback: list[NudgeFeedback]

    def __init__(self) -> None:
        self.outcomes = []
        self.retry = []
        self.boxed = {}
        self.feedback = []

    def box(self, outcome: OutcomeEvent, entry: Boxed) -> None:
        self.outcomes.append(outcome)
        self.boxed[id(outcome)] = entry


class Delivery:
    def __init__(
        self,
        state: NotifierState,
        channels: Mapping[ChannelName, Channel],
        catalog: Catalog,
        clock: Clock,
        settings: NotifierSettings,
        *,
        stopping: asyncio.Event | None = None,
    ) -> None:
        self.state = state
        self.stopping = stopping or asyncio.Event()  # set: stop retrying records (shutdown)
        self.channels = channels
        self.catalog = catalog
        self._pools = {kind: Pool(kind, catalog.items(kind)) for kind in get_args(NudgeKind)}
        self.clock = clock
        self.settings = settings
        self._sender_address = parseaddr(settings.sender)[1]
        self._window_ms = int(settings.repeat_window.total_seconds() * 1000)
        self._gap_ms = int(settings.repeat_min_gap.total_seconds() * 1000)
        self._retention_ms = int(settings.idempotency_retention.total_seconds() * 1000)
        self._daily_cap = settings.daily_cap_per_partner  # a settings field: read once
        self._stop_budget_s = settings.shutdown_timeout.total_seconds()  # see `_record`
        # The settings each message reads, read once (issue 20, h/notify13): a field of the
        # frozen settings model is read through its __getattr__ hook, ~0.7k instructions.
        self._push_link = settings.push_link
        self._manage_url = settings.manage_url
        self._support_url = settings.support_url
        self._sender = settings.sender
        self.caps = CapLedger(state.redis, state.keys, state.pipe, couple_keys=state.couple_keys)
        self.jar = JarStore(state.redis, state.keys, state.pipe)
        self.unsubscribe = (
            UnsubscribeTokens.from_secrets(settings.unsubscribe_secrets, settings.public_url)
            if settings.public_url is not None and settings.unsubscribe_secrets
            else None
        )
        # Message-IDs that name their nudge, for bounce and complaint reports (message_ids.py).
        self.message_ids = (
            MessageIds(parse_keys(settings.unsubscribe_secrets), message_domain(settings.sender))
            if settings.unsubscribe_secrets
            else None
        )
        # Signed one-tap answers and the manage link (actions.py), with the same keys.
        self.actions = (
            ActionTokens(
                parse_keys(settings.unsubscribe_secrets),
                settings.public_url,
                max_age_s=int(settings.action_link_ttl.total_seconds()),
            )
            if settings.actions_enabled and settings.public_url is not None
            else None
        )
        self.engagement = EngagementStore(
            state.redis, state.keys, keep_ms=int(settings.action_link_ttl.total_seconds() * 1000)
        )

    async def deliver(self, due: NudgeDue) -> DeliveryResult:
        """Decide, reserve cap slots, send and record each message: one load, one reserve and
        one record per message, each shared with concurrent nudges through the AutoPipeline.

        Raises a RedisError when Redis refuses the reservation (nothing was sent then)."""
        nudge = _Nudge.of(due)
        scheduled_ms = nudge.scheduled_ms
        couple, sent, seen, outbox = await self.state.load(
            nudge.couple_id,
            nudge.occurrence_id,
            seen_since_ms=scheduled_ms - self._window_ms,
            seen_before_ms=scheduled_ms,
        )
        now = self.clock.now()
        result = DeliveryResult()
        if outbox:  # almost always empty
            self._unbox(result, nudge, outbox)
        if couple.profile is None:
            reason = await why_vanished(self.state.pipe, self.state.keys, nudge.couple_id)
            result.outcomes.append(self._suppressed(nudge, now, reason))
            return result
        if nudge.schedule_id not in couple.fields.get("sids", "").split(","):
            result.outcomes.append(self._suppressed(nudge, now, "stale_revision"))
            return result
        now_ms = epoch_ms(now)
        wanted = self._wanted(result, nudge, couple, sent, now, now_ms)
        if not wanted:
            return result
        idea = await self._draw(nudge, couple, wanted[0].partner, now_ms)
        # Every channel of one occurrence shares one slot of the partner's cap; the sends
        # about to start are marked in the same call (the write-ahead: see caps.py).
        asked: list[tuple[str, list[str]]] = []
        for w in wanted:  # loops, not comprehensions, on this path: module docstring
            marks: list[str] = []
            for send in w.channels:
                marks.append(send.slot)
            asked.append((w.partner_id, marks))
        slots = await self.caps.reserve(
            nudge.couple_id,
            nudge.occurrence_id,
            asked,
            now_ms=now_ms,
            window_ms=_DAY_MS,
            cap=self._daily_cap,
            keep_ms=self._retention_ms + _DAY_MS,
        )
        sends: list[tuple[_Wanted, _Send, Item]] = []
        shared = _SharedPick()  # the catalog's pick when both partners get the same one
        gone: SuppressionReason = "erased"
        if "erased" in slots:  # the couple went since it was loaded: by erasure or by a loss
            gone = await why_vanished(self.state.pipe, self.state.keys, nudge.couple_id)
        for want, slot in zip(wanted, slots, strict=False):  # one answer each: CapLedger.reserve
            partner_id = want.partner_id
            if slot != "reserved":
                why: SuppressionReason = "cap_reached" if slot == "over_cap" else gone
                if why == "cap_reached":  # RESERVE left it in the outbox: see _unbox
                    capped = self._suppressed(nudge, from_ms(now_ms), why, partner_id)
                    entry = Boxed(capped_member(nudge.occurrence_id, partner_id), encode(capped))
                    result.box(capped, entry)
                else:
                    result.outcomes.append(self._suppressed(nudge, now, why, partner_id))
                log.info(
                    "nudge_not_sent",
                    occurrence_id=nudge.occurrence_id,
                    partner_id=partner_id,
                    reason=why,
                )
                continue
            item = self._choose(nudge, couple, want.partner, want.other, seen, idea, shared)
            for send in want.channels:
                sends.append((want, send, item))
        jar_text = None if idea is None else idea.text
        made = SentOutcomes(
            PRODUCER, nudge.occurrence_id, nudge.couple_id, nudge.kind, nudge.scheduled_at,
            nudge.scheduled_ms, nudge.note, now, now_ms,
        )  # fmt: skip
        started = []
        for w, send, item in sends:
            started.append(
                self._send_and_record(nudge, couple, w.partner, item, send, now, made, jar_text)
            )
        done = await all_of(started)
        reached: set[str] = set()
        for (w, _, _), outcome in zip(sends, done, strict=False):  # all_of: one result each
            if isinstance(outcome, RetryNeeded):
                result.retry.append(outcome)
            elif isinstance(outcome, tuple):
                result.box(*outcome)
                if isinstance(outcome[0], NudgeSent):  # the partner of its send
                    reached.add(w.partner_id)
            else:
                result.outcomes.append(outcome)
        if couple.listening:
            await self._count_unanswered(nudge, sorted(reached), result)
        return result

    async def _count_unanswered(
        self, nudge: _Nudge, partners: list[str], result: DeliveryResult
    ) -> None:
        """The listening cadence: each partner this nudge reached completes an "ignored"
        streak when their last `listen_after` nudges of the kind went unanswered."""
        for partner_id in partners:
            if await self.engagement.sent(
                nudge.couple_id,
                partner_id,
                nudge.kind,
                nudge.occurrence_id,
                limit=self.settings.listen_after,
                now_ms=epoch_ms(self.clock.now()),
            ):
                result.feedback.append(
                    ignored_feedback(
                        nudge.couple_id,
                        partner_id,
                        nudge.kind,
                        nudge.occurrence_id,
                        nudge.scheduled_at,
                    )
                )

    def _unbox(self, result: DeliveryResult, nudge: _Nudge, outbox: dict[str, bytes]) -> None:
        """Outcomes of this occurrence recorded by an earlier attempt but not published (it
        crashed, or Redis refused the XADD): published now, as they were written."""
        skip = len(nudge.occurrence_id) + 1
        for name, value in sorted(outbox.items()):
            event: OutcomeEvent
            try:
                if name.endswith(_CAPPED):  # RESERVE's refusal: the decision time, ms
                    partner_id = name[skip : -len(_CAPPED)]
                    event = self._suppressed(nudge, from_ms(int(value)), "cap_reached", partner_id)
                    data = encode(event)
                else:
                    event, data = parse_outcome(value), value
            except (EventRejected, ValueError):
                log.warning("outbox_entry_unreadable", occurrence_id=nudge.occurrence_id)
                continue
            result.box(event, Boxed(name, data))
            log.info(
                "outcome_republished",
                occurrence_id=nudge.occurrence_id,
                event_id=str(event.event_id),
                outcome=event.type,
            )

    def _wanted(
        self,
        result: DeliveryResult,
        nudge: _Nudge,
        couple: CoupleState,
        sent: set[str],
        now: datetime,
        now_ms: int,
    ) -> list[_Wanted]:
        """Who still needs this nudge, on which channels; suppressions go to `result`."""
        assert couple.profile is not None
        # Fields read from the models' `__dict__`s (exactly their fields, as in `_render`):
        # a pydantic field read is a `__getattr__` hook, ~0.5k instructions.
        partners: dict[str, Partner] = {}
        for p in couple.profile.__dict__["partners"]:
            partners[p.__dict__["partner_id"]] = p
        channels_served = self.channels
        listening = couple.listening  # read from the profile (a pydantic attribute) once
        # No consent mark in the hash: paused, snoozed, unsubscribed and dead are all False
        # (CoupleState's docstring), so they are not asked.
        marked = couple.consent_marks
        wanted: list[_Wanted] = []
        for partner_id in nudge.recipients:
            partner = partners.get(partner_id)
            if partner is None:
                result.outcomes.append(self._suppressed(nudge, now, "stale_revision", partner_id))
                continue
            if sent and capped_member(nudge.occurrence_id, partner_id) in sent:
                continue  # refused a slot earlier; that outcome was published then
            if marked and couple.paused(partner_id, now_ms):
                result.outcomes.append(self._suppressed(nudge, now, "paused", partner_id))
                continue
            if marked and couple.snoozed(partner_id, nudge.kind, now_ms):
                result.outcomes.append(self._suppressed(nudge, now, "snoozed", partner_id))
                continue
            if listening and self._thinned(nudge, couple, partner_id):
                result.outcomes.append(self._suppressed(nudge, now, "cadence_lowered", partner_id))
                continue
            channels: list[_Send] = []
            for channel_name in partner.__dict__["channels"]:
                if channel_name == "mobile":
                    channels += self._devices(result, nudge, couple, partner, sent, now)
                    continue
                key = idempotency_key(nudge.occurrence_id, partner_id, channel_name)
                if sent and key in sent:
                    continue
                # `_blocked`, whose consent checks a couple without marks skips: no call
                if marked:
                    reason = self._blocked(couple, partner_id, nudge.kind, channel_name)
                else:
                    reason = None if channel_name in channels_served else "no_channel"
                if reason is not None:
                    result.outcomes.append(
                        self._suppressed(nudge, now, reason, partner_id, channel_name)
                    )
                    continue
                # `_Send.on`'s send, made here: one classmethod call less a send
                channels.append(_Send(channel_name, key, None, None, channel_name))
            if channels:
                other = _other(partners, partner_id)
                wanted.append(_Wanted(partner, partner_id, other, channels))
        return wanted

    def _devices(
        self,
        result: DeliveryResult,
        nudge: _Nudge,
        couple: CoupleState,
        partner: Partner,
        sent: set[str],
        now: datetime,
    ) -> list[_Send]:
        """The sends of the "mobile" channel: one per live device not yet sent to; every
        other device gets its suppression in `result`."""
        partner_id = partner.partner_id
        blocked = self._blocked(couple, partner_id, nudge.kind, "mobile")
        router = self.channels.get("mobile")
        sends: list[_Send] = []
        for device in partner.devices:
            ref = device_ref(device.token)
            slot = slot_of("mobile", ref)
            key = idempotency_key(nudge.occurrence_id, partner_id, slot)
            if key in sent:
                continue
            reason = blocked
            if reason is None and couple.consent_marks and couple.device_dead(partner_id, ref):
                reason = "channel_dead"
            if reason is None and isinstance(router, MobileChannel):
                reason = None if router.serves(device.platform) else "no_channel"
            if reason is not None:
                result.outcomes.append(
                    self._suppressed(nudge, now, reason, partner_id, "mobile", ref)
                )
                continue
            sends.append(_Send("mobile", key, device, ref, slot))
        return sends

    async def _send_and_record(
        self,
        nudge: _Nudge,
        couple: CoupleState,
        partner: Partner,
        item: Item,
        send: _Send,
        now: datetime,
        made: SentOutcomes,
        jar_idea: str | None = None,
    ) -> RetryNeeded | OutcomeEvent | tuple[OutcomeEvent, Boxed]:
        """Send one message and record it at once with its outcome (not after the nudge's
        other sends: a crash in between may repeat only sends still in flight).

        Returns what to retry, or the outcome with its outbox entry (the outcome alone when
        the couple was erased meanwhile: nothing was recorded)."""
        channel, key = send.channel, send.key
        message = self._render(nudge, couple, partner, item, send, now, jar_idea)
        partner_id = partner.partner_id
        try:
            await self.channels[channel].send(message)
        except TransientSendError as exc:
            return RetryNeeded(partner_id, channel, exc, send.ref)
        except PermanentSendError as exc:
            error: PermanentSendError | None = exc
        except Exception as exc:  # a channel that let something unclassified through
            error = unexpected(channel, exc)
            log.warning(
                "channel_error_unclassified",
                occurrence_id=nudge.occurrence_id,
                channel=channel,
                error=type(exc).__name__,
            )
        else:
            error = None
        outcome: OutcomeEvent
        encoded = None if error else made.make(key, partner_id, channel, send.ref, item.id)
        if encoded is not None:  # the usual case: outcomes.py, SentOutcomes
            outcome, data = encoded.event, encoded.data
        elif error is None:  # a value `made` did not vouch for: validated, pydantic's JSON
            outcome = self._sent(nudge, now, send, partner_id, item.id)
            data = encode(outcome)
        else:  # final too: a redelivery must not retry it
            outcome = self._failed(nudge, now, partner_id, channel, error.detail, device=send.ref)
            data = encode(outcome)
        dead = dead_field(partner_id, send.slot) if error is not None and error.gone else ""
        records = [(key, "" if error else item.id, data)]
        try:  # `_record`'s first try, made here: one coroutine frame less per send
            recorded = await self._record_sent(message, records, dead, nudge.scheduled_ms)
        except RedisError as exc:
            recorded = await self._record(message, records, dead, nudge.scheduled_ms, exc)
        if not recorded:
            log.info("couple_erased_during_delivery", occurrence_id=message.occurrence_id)
            return outcome
        return outcome, Boxed(key, data)

    def _record_sent(
        self, message: Outgoing, records: list[tuple[str, str, bytes]], dead: str, scheduled: int
    ) -> Coroutine[Any, Any, bool]:
        """One try of RECORD_SENT (NotifierState.record_sent) for a send that has happened."""
        return self.state.record_sent(
            message.couple_id,
            records,
            scheduled_ms=scheduled,
            now_ms=epoch_ms(self.clock.now()),
            retention_ms=self._retention_ms,
            repeat_window_ms=self._window_ms,
            dead=dead,
        )

    async def _record(
        self,
        message: Outgoing,
        records: list[tuple[str, str, bytes]],
        dead: str,
        scheduled_ms: int,
        first: RedisError,
    ) -> bool:
        """RECORD_SENT for a send that has happened, after a first try failed with `first`.
        While Redis cannot take it, keep trying with backoff (this coroutine holds the fact
        meanwhile) until it does; raising instead would let a redelivery send again.

        Once the service stops, every `_STOPPING_RETRY_S` for at most the shutdown budget
        (the stop cancels the delivery at its deadline anyway): a record refused during a
        deploy's failover is still taken when Redis is back within the budget. Then it
        raises, and the redelivery may send it again (one duplicate)."""
        failures = 0
        error: RedisError | None = first
        gives_up: float | None = None  # monotonic: when a stop's budget runs out
        while True:
            if error is None:
                try:
                    return await self._record_sent(message, records, dead, scheduled_ms)
                except RedisError as exc:
                    error = exc
            failures += 1
            log.warning(
                "send_not_recorded_yet",
                occurrence_id=message.occurrence_id,
                channel=message.channel,
                error=type(error).__name__,
                failures=failures,
            )
            if self.stopping.is_set():
                if gives_up is None:
                    gives_up = time.monotonic() + self._stop_budget_s
                if time.monotonic() >= gives_up:
                    raise error  # the redelivery may send it again (one duplicate)
                error = None
                await asyncio.sleep(_STOPPING_RETRY_S)
                continue
            error = None
            await pause(self.stopping, failures)

    @staticmethod
    def _thinned(nudge: _Nudge, couple: CoupleState, partner_id: str) -> bool:
        """Whether the listening cadence leaves this nudge out for the partner: their level
        for the kind keeps `kept` of every `out_of` of their own nudges of it (listening.py),
        counted by the schedule's sequence (every other one for alternating recipients).
        Asked only for a couple that opted in to the listening cadence (`_wanted`)."""
        level = couple.level(partner_id, nudge.kind)
        if level == 0:
            return False
        record = couple.records.get(nudge.schedule_id[len(nudge.couple_id) + 1 :], "")
        parts = record.split("|", 3)
        if len(parts) != 4:
            return False
        spec, rule = parts[2], parts[3]
        index = nudge.sequence // 2 if spec.endswith("a") else nudge.sequence
        return not keeps(step_at(per_week(rule), level), index)

    def _blocked(
        self, couple: CoupleState, partner_id: str, kind: str, channel: ChannelName
    ) -> SuppressionReason | None:
        if couple.consent_marks:  # else neither can be True (CoupleState's docstring)
            if couple.unsubscribed(partner_id, kind, channel):
                return "unsubscribed"
            if couple.channel_dead(partner_id, channel):
                return "channel_dead"
        if channel not in self.channels:
            return "no_channel"
        return None

    async def _draw(
        self, nudge: _Nudge, couple: CoupleState, partner: Partner, now_ms: int
    ) -> JarIdea | None:
        """The idea this date night draws from the couple's jar, if it draws from it (one
        draw per nudge: see jar.py); None for the catalog's content."""
        if nudge.kind != "date_night" or not draws_from_jar(
            couple.date_night_source, nudge.sequence
        ):
            return None
        assert couple.profile is not None
        key = draw_key(
            nudge.data,
            recipient_zone=partner.timezone,
            couple_zone=couple.profile.partners[0].timezone,
        )
        return await self.jar.draw(nudge.couple_id, key, now_ms=now_ms, keep_ms=self._retention_ms)

    def _choose(
        self,
        nudge: _Nudge,
        couple: CoupleState,
        partner: Partner,
        other: Partner,
        seen: dict[str, int],
        idea: JarIdea | None,
        shared: _SharedPick,
    ) -> Item:
        """Chosen on the default locale's items (both partners of a shared nudge get the same
        one, chosen once: `_SharedPick`), then read in the partner's locale."""
        assert couple.profile is not None
        if idea is not None:
            return jar_item(idea, partner.locale)
        if nudge.kind == "check_in" and couple.daily_question:
            day = content_day(
                nudge.data,
                recipient_zone=partner.timezone,
                couple_zone=couple.profile.partners[0].timezone,
            )
            items = self.catalog.items(nudge.kind, partner.locale)
            question = question_for(items, couple_id=nudge.couple_id, day=day)
            if question is not None:
                return question
        if nudge.kind == "appreciation":  # drawn per giver
            picked = self._pick(nudge, couple, partner, other, seen)
        else:
            if shared.item is None:
                shared.item = self._pick(nudge, couple, partner, other, seen)
            picked = shared.item
        return self.catalog.localized(picked, partner.__dict__["locale"])  # no getattr hook

    def _pick(
        self,
        nudge: _Nudge,
        couple: CoupleState,
        partner: Partner,
        other: Partner,
        seen: dict[str, int],
    ) -> Item:
        """The catalog's choice for the partner, in the default locale (content.py)."""
        assert couple.profile is not None
        profile = couple.profile.__dict__  # its fields without the getattr hook (`_render`)
        return choose_for(
            self._pools[nudge.kind],
            kind=nudge.kind,
            occurrence_id=nudge.occurrence_id,
            recipient=partner,
            other=other,
            focus_areas=profile["focus_areas"],
            recently_seen=seen,
            check_in_format=couple.check_in_format,
            sequence=nudge.sequence,
            context=profile["context"],
            rested_before=nudge.scheduled_ms - self._gap_ms,
        )

    def _render(
        self,
        nudge: _Nudge,
        couple: CoupleState,
        partner: Partner,
        item: Item,
        send: _Send,
        now: datetime,
        jar_idea: str | None = None,
    ) -> Outgoing:
        channel, key = send.channel, send.key
        assert couple.profile is not None
        # The partner's fields from its __dict__ (exactly its fields: extras are forbidden),
        # one __getattr__ hook, not one a field read.
        p = partner.__dict__
        partner_id = p["partner_id"]
        # Links and their signatures only when configured, each helper asked only then (a
        # call with keywords is ~0.5-1k instructions a message, its answer None or ()); the
        # signed links' issued_at likewise (an aware datetime's timestamp() is ~2k).
        unsubscribe, actions, push_link = self.unsubscribe, self.actions, self._push_link
        now_s = int(now.timestamp()) if unsubscribe is not None or actions is not None else 0
        view = view_of(  # view_for, by position (render.view_of)
            couple.profile,
            partner_id,
            nudge.kind,
            item,
            nudge.turn,
            None
            if push_link is None
            else deep_link(
                push_link,
                kind=nudge.kind,
                couple_id=nudge.couple_id,
                occurrence_id=nudge.occurrence_id,
            ),
            self._unsubscribe_url(nudge, partner, now_s)
            if channel == "email" and unsubscribe is not None
            else None,
            jar_idea,
            (None if actions is None else self._link(nudge, partner, "manage", now_s))
            or self._manage_url,
            self._support_url,
            nudge.scheduled_at,
            () if actions is None else self._signed_answers(nudge, partner, now_s),
        )
        if channel == "email":
            email = p["email"]
            assert email is not None
            message_id, headers = None, []
            if self.message_ids is not None:
                ref = MessageRef(nudge.couple_id, partner_id, nudge.occurrence_id)
                token = self.message_ids.token(ref)
                message_id = self.message_ids.message_id(ref)
                headers = provider_headers(token)
            mime = render_email_bytes(
                view,
                sender=self._sender,
                to_name=p["name"],
                to_address=email,
                when=now,
                list_unsubscribe_post=True,  # our endpoint takes RFC 8058 one-click POSTs
                message_id=message_id,
                extra_headers=headers,
            )
            return Outgoing(
                channel,
                key,
                mime=mime,
                sender=self._sender_address,
                address=email,
                couple_id=nudge.couple_id,
                partner_id=partner_id,
                occurrence_id=nudge.occurrence_id,
            )
        return Outgoing(
            channel,
            key,
            push=render_push(view),
            # The webhook needs no address; a device's token never leaves the channel.
            address=p["push"] if channel == "push" else send.device,
            couple_id=nudge.couple_id,
            partner_id=partner_id,
            occurrence_id=nudge.occurrence_id,
        )

    def _link(self, nudge: _Nudge, partner: Partner, action: ActionKind, now_s: int) -> str | None:
        """A signed action link for the partner (actions.py), or None when not configured."""
        if self.actions is None:
            return None
        # Validated: pydantic-core takes these seven fields faster than `built` after the
        # checks it would need (3.1 against 3.6 us, timeit).
        claim = ActionClaim.model_validate(
            {
                "couple_id": nudge.couple_id,
                "partner_id": partner.partner_id,
                "kind": nudge.kind,
                "occurrence_id": nudge.occurrence_id,
                "action": action,
                "sequence": nudge.sequence,
                "issued_at": now_s,
            }
        )
        return self.actions.link(claim)

    def _answers(self, nudge: _Nudge, partner: Partner, now_s: int) -> tuple[tuple[str, str], ...]:
        if self.actions is None:
            return ()
        return self._signed_answers(nudge, partner, now_s)

    def _signed_answers(
        self, nudge: _Nudge, partner: Partner, now_s: int
    ) -> tuple[tuple[str, str], ...]:
        """`_answers` when links are signed: apart, since its comprehensions make its
        arguments cells, allocated on every call of the function that holds them."""
        links = [(a, self._link(nudge, partner, a, now_s)) for a in ONE_TAP]
        return tuple((a, url) for a, url in links if url is not None)

    def _unsubscribe_url(self, nudge: _Nudge, partner: Partner, now_s: int) -> str | None:
        if self.unsubscribe is None:
            return None
        claim = UnsubscribeClaim(
            couple_id=nudge.couple_id,
            partner_id=partner.partner_id,
            scope=nudge.kind,
            issued_at=now_s,
        )
        return self.unsubscribe.link(claim)

    def _suppressed(
        self,
        nudge: _Nudge,
        now: datetime,
        reason: SuppressionReason,
        partner_id: str | None = None,
        channel: ChannelName | None = None,
        device: str | None = None,
    ) -> NudgeSuppressed:
        about = f"{nudge.occurrence_id}|{partner_id}|{channel}|{reason}"
        make = built if plain_fields(partner_id, device) else _validated
        return make(
            NudgeSuppressed,
            type="nudge.suppressed.v1",
            event_id=outcome_id(about if device is None else f"{about}|{device}"),
            occurred_at=now,
            producer=PRODUCER,
            data=make(
                NudgeSuppressedData,
                occurrence_id=nudge.occurrence_id,
                couple_id=nudge.couple_id,
                kind=nudge.kind,
                scheduled_at=nudge.scheduled_at,
                partner_id=partner_id,
                channel=channel,
                device=device,
                reason=reason,
            ),
        )

    def _sent(
        self, nudge: _Nudge, now: datetime, send: _Send, partner_id: str, content_id: str
    ) -> NudgeSent:
        """The outcome of `send`, done; its event id is of the send's idempotency key
        (`_wanted` and `_devices` made it of the occurrence, partner and slot)."""
        channel, device = send.channel, send.ref
        make = built if plain_fields(partner_id, device, content_id) else _validated
        return make(
            NudgeSent,
            type="nudge.sent.v1",
            event_id=outcome_id(send.key),
            occurred_at=now,
            producer=PRODUCER,
            data=make(
                NudgeSentData,
                occurrence_id=nudge.occurrence_id,
                couple_id=nudge.couple_id,
                kind=nudge.kind,
                scheduled_at=nudge.scheduled_at,
                partner_id=partner_id,
                channel=channel,
                device=device,
                content_id=content_id,
                note=nudge.note,
            ),
        )

    def gave_up(self, due: NudgeDue, retry: RetryNeeded, attempts: int) -> NudgeFailed:
        """The outcome of a transient failure that ran out of attempts."""
        detail = f"gave up after {attempts} attempts: {retry.error.detail}"
        return self._failed(
            _Nudge.of(due), self.clock.now(), retry.partner_id, retry.channel, detail,
            permanent=False, attempt=attempts, key="gave-up", device=retry.device,
        )  # fmt: skip

    def _failed(
        self,
        nudge: _Nudge,
        now: datetime,
        partner_id: str,
        channel: ChannelName,
        error: str,
        *,
        permanent: bool = True,
        attempt: int = 1,
        key: str = "failed",
        device: str | None = None,
    ) -> NudgeFailed:
        slot = channel if device is None else f"{channel}:{device}"
        make = built if plain_fields(partner_id, device) and attempt >= 1 else _validated
        return make(
            NudgeFailed,
            type="nudge.failed.v1",
            event_id=outcome_id(f"{nudge.occurrence_id}|{partner_id}|{slot}|{key}"),
            occurred_at=now,
            producer=PRODUCER,
            data=make(
                NudgeFailedData,
                occurrence_id=nudge.occurrence_id,
                couple_id=nudge.couple_id,
                kind=nudge.kind,
                scheduled_at=nudge.scheduled_at,
                partner_id=partner_id,
                channel=channel,
                device=device,
                error=error[:200],
                permanent=permanent,
                attempt=attempt,
            ),
        )


def _other(partners: dict[str, Partner], partner_id: str) -> Partner:
    """The first partner who is not `partner_id`, of the couple's partners by id (in their
    order): `next(p for p in partners if ...)` without a generator (made, then closed with a
    GeneratorExit, twice a nudge) nor a read of each partner's id (a pydantic attribute)."""
    for other_id, partner in partners.items():
        if other_id != partner_id:
            return partner
    raise StopIteration  # as next() of the empty generator; a couple has two distinct ids


async def all_of(coros: list[Coroutine[Any, Any, T]]) -> list[T]:
    """`asyncio.gather(*coros)` for a nudge's sends, without gather's outer future and its
    Python callback per task (~8-9 us a nudge of two sends, timeit; see docs/performance.md).

    The same as gather where the delivery can tell: every coroutine after the first starts
    as a task of its own, and the first runs in the caller's task (one task less a nudge:
    its creation, its registration in asyncio's weak set of tasks, its steps), so the sends
    run concurrently: the tasks start as soon as the first suspends, and a send suspends at
    the latest on its RECORD_SENT's reply. The results come back in order; cancelled, every
    coroutine not done is cancelled and CancelledError raised. One difference, on errors
    only (a send's own errors are returned, not raised: what raises is a record refused
    while the service stops, or a bug): the error raised is the first in the list's order,
    once the coroutines before it have finished, where gather raises the first to happen at
    once. The errors not raised are retrieved as gather retrieves them (no "never retrieved"
    log). Tested against gather: tests/unit/test_all_of.py."""
    if len(coros) < 2:  # nothing to run beside it: no task
        return [await coros[0]] if coros else []
    create_task = asyncio.get_running_loop().create_task
    tasks: list[asyncio.Task[T]] = []
    for coro in coros[1:]:  # not a comprehension: its own frame (module docstring)
        tasks.append(create_task(coro))  # started before the first is run, below
    results: list[T] = []
    try:
        results.append(await coros[0])
        for task in tasks:
            results.append(await task)
    except asyncio.CancelledError:
        me = asyncio.current_task()
        if me is not None and me.cancelling():  # this nudge is cancelled: so are its sends
            for task in tasks:
                task.cancel()
            raise
        _retrieve_all(tasks)  # one send's task was cancelled: an error, as gather takes it
        raise
    except BaseException:
        _retrieve_all(tasks)
        raise
    return results


def _retrieve_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Mark the tasks' errors as seen, now or when they finish (gather does so for every
    child): none logs "exception was never retrieved"."""
    for task in tasks:
        if not task.done():
            task.add_done_callback(_retrieved)
        elif not task.cancelled():
            task.exception()


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Mark a task's error as seen (gather does so for every child)."""
    if not task.cancelled():
        task.exception()


def _validated(cls: type[M], /, **values: Any) -> M:
    """`cls(**values)`, validated: for values `plain_fields` did not vouch for."""
    return cls(**values)
