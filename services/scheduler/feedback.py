"""Applying partners' answers: snoozes, the date-night turn, the listening cadence. Redis edge.

The couple hash fields involved (services/common/couple_state.py):

    snz:<partner>:<kind>   "<occurred_ms>|<until_ms>": written like an unsubscribe (last writer
                           wins, SET_IF_NEWER), kept across preferences.set
    lvl:<partner>:<kind>   "<level>|<last signal>|<its occurred ms>": the listening cadence's
                           level, changed only by compare-and-set from what was read
                           (CAS_FIELD); the decision is services/common/listening.adjust
                           (pure). An answer not newer than the last one that moved the level
                           is not applied (again): every event is applied at least once.
    adj:<partner>:<kind>   "<previous level>|<kept>|<out of>": the cadence.adjusted.v1 of the
                           last change, written with the level and deleted once published; a
                           redelivered answer finding it publishes it (a kill -9 or a refused
                           publish between the two lost the notice before)
    d/<target>             date-night schedule records "<seq>|...": "not this week" keeps the
                           turn by counting the occurrence once more (KEEP_TURN)

Turns: the turn of a date night is `partners[seq % 2]` (firing.py) and seq counts what the
schedule published. "Not this week" on the occurrence published with `sequence` s adds one to
each date-night record still at s + 1 (it fired that occurrence, nothing since), so the next
one has the same turn; a replay finds s + 2 and changes nothing; "we did it" leaves the count
alone, so the turn passes as before. A record that has not fired that occurrence yet (a
partner's own-local schedule in a later zone) or has fired a later one is left alone.
"""

from __future__ import annotations

import uuid
from typing import Final

import redis.asyncio as aioredis
import structlog

from couples_nudge.common.clock import epoch_ms
from couples_nudge.common.keys import Keys, couple_digest
from couples_nudge.common.listening import Adjustment, Step, adjust, per_week
from couples_nudge.common.metrics import Metrics
from couples_nudge.common.streams import publish
from couples_nudge.scheduler import lua
from couples_nudge.scheduler.planning import KIND_CODES
from couples_nudge_schemas import CadenceAdjusted, CadenceAdjustedData, NudgeFeedback

__all__ = ["CAS_FIELD", "DROP_NOTICE", "KEEP_TURN", "FeedbackStore"]

log = structlog.get_logger()
_NS: Final = uuid.UUID("0b9d55c2-5b8f-4d0e-a3a4-3f6f1c9b7e21")
PRODUCER: Final = "nudge-scheduler"

KEEP_TURN: Final = (
    lua.BUMP
    + """
-- "Not this week": the next date night keeps the turn of the one published with seq ARGV[1].
-- KEYS: 1 couple hash, 2 the shard's change counter (lua.BUMP)
-- ARGV: 1 sequence of that occurrence, 2 date-night kind code
-- Each date-night record "<seq>|..." whose seq is sequence + 1 becomes sequence + 2.
-- Returns how many records changed, or -1 if the couple is unknown.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local after, kept = tostring(tonumber(ARGV[1]) + 1), tostring(tonumber(ARGV[1]) + 2)
local prefix = ARGV[2] .. '/'
local changed = 0
local fields = redis.call('HGETALL', KEYS[1])
for i = 1, #fields, 2 do
  local field, value = fields[i], fields[i + 1]
  if string.sub(field, 1, #prefix) == prefix then
    local seq, rest = string.match(value, '^(%d+)(|.*)$')
    if seq == after then
      if changed == 0 then bump(KEYS[2]) end
      redis.call('HSET', KEYS[1], field, kept .. rest)
      changed = changed + 1
    end
  end
end
return changed
"""
)

CAS_FIELD: Final = (
    lua.BUMP
    + """
-- Write a field of an existing couple only if it still holds what the caller read, and with
-- it, when given, a second field (the notice of the change, until it is published).
-- KEYS: 1 couple hash, 2 the shard's change counter (lua.BUMP)
-- ARGV: 1 field, 2 expected value ('' for none), 3 new value[, 4 second field, 5 its value]
-- Returns 1 if written, 0 if the field changed meanwhile, -1 if the couple is unknown.
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local cur = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if cur ~= ARGV[2] then return 0 end
bump(KEYS[2])
if ARGV[4] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3], ARGV[4], ARGV[5])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
end
return 1
"""
)

DROP_NOTICE: Final = (
    lua.BUMP
    + """
-- Delete a published notice ("adj:<partner>:<kind>") from the couple hash. FIRE never reads
-- it, but every writer of a couple hash bumps (lua.py's docstring): only when one was there.
-- KEYS: 1 couple hash, 2 the shard's change counter (lua.BUMP)
-- ARGV: 1 field
if redis.call('HDEL', KEYS[1], ARGV[1]) == 1 then bump(KEYS[2]) end
return 1
"""
)


class FeedbackStore:
    """nudge.feedback.v1 applied to one couple: the turn, then the listening cadence."""

    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        *,
        outcomes_maxlen: int,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.redis = redis
        self.keys = keys
        self.maxlen = outcomes_maxlen
        self._keep_turn = redis.register_script(KEEP_TURN)
        self._cas = redis.register_script(CAS_FIELD)
        self._drop_notice = redis.register_script(DROP_NOTICE)

    async def apply(self, event: NudgeFeedback) -> str:
        d = event.data
        couple = self.keys.couple(d.couple_id)
        shard = self.keys.shard_of(d.couple_id)
        changes = self.keys.changes(shard)
        # An answer from before an erasure moves nothing of a couple created again since
        # (lua.ERASED_SINCE). Asked before the scripts, not inside them: an erasure landing in
        # between leaves no couple, and the scripts then answer "unknown couple".
        erased = await self.redis.zscore(self.keys.tombstones(shard), couple_digest(d.couple_id))
        if erased is not None and erased >= epoch_ms(event.occurred_at):
            return "erased"
        if d.signal == "skip" and d.kind == "date_night" and d.sequence is not None:
            kept = int(
                await self._keep_turn(
                    keys=[couple, changes], args=[d.sequence, KIND_CODES["date_night"]]
                )
            )
            if kept < 0:
                return "unknown_couple"
        for _ in range(3):  # compare-and-set: read again if another replica wrote between
            result = await self._listen(event, couple, changes)
            if result != "raced":
                return result
        return "raced"

    async def _listen(self, event: NudgeFeedback, couple: str, changes: str) -> str:
        d = event.data
        found = await self.redis.hgetall(couple)
        raw = {_bytes(k): _bytes(v) for k, v in found.items()}
        if not raw:
            return "unknown_couple"
        if raw.get(b"ln") != b"1":
            return "applied"  # the couple did not opt in: the answer is noted, nothing moves
        field = f"lvl:{d.partner_id}:{d.kind}"
        current = raw.get(field.encode(), b"").decode()
        level_text, _, rest = current.partition("|")
        # "<occurrence>|<signal>", then "|<occurred ms>" since 2026-12-07 (no id holds "|").
        last, newest = rest.rsplit("|", 1) if rest.count("|") == 2 else (rest, "")
        signal_key = f"{d.occurrence_id}|{d.signal}"
        occurred_ms = epoch_ms(event.occurred_at)
        notice = f"adj:{d.partner_id}:{d.kind}"
        if last == signal_key:  # this very answer was applied already (a redelivery)
            kept = raw.get(notice.encode())
            if kept is not None and level_text.isdigit():  # its notice was not published
                await self._announce(event, _held_change(kept, int(level_text)), notice)
            return "stale"
        if newest.isdigit() and occurred_ms <= int(newest):
            # Older than the answer that moved the level last: applied before it (a batch
            # tried again, an entry reclaimed), or out of order. Answers apply in the order
            # they happened, each once.
            return "stale"
        times = _times_a_week(raw, KIND_CODES[d.kind])
        if times is None:
            return "applied"  # the couple has no schedule of that kind (any more)
        change = adjust(int(level_text) if level_text.isdigit() else 0, d.signal, times)
        if change is None:
            return "applied"
        # The notice is kept with the level (`adj:`) until it is published: a process killed
        # in between, or a refused publish, leaves it for the redelivery above.
        held = f"{change.previous}|{change.step.kept}|{change.step.out_of}"
        written = int(
            await self._cas(
                keys=[couple, changes],
                args=[field, current, f"{change.level}|{signal_key}|{occurred_ms}", notice, held],
            )
        )
        if written < 0:
            return "unknown_couple"
        if written == 0:
            return "raced"
        await self._announce(event, change, notice)
        if self.metrics is not None:
            self.metrics.observe_cadence(d.kind, "lowered" if change.lowered else "raised")
        log.info(
            "cadence_adjusted",
            event_id=str(event.event_id),
            couple_id=d.couple_id,
            partner_id=d.partner_id,
            kind=d.kind,
            direction="lowered" if change.lowered else "raised",
            level=change.level,
        )
        return "applied"

    async def _announce(self, event: NudgeFeedback, change: Adjustment, notice: str) -> None:
        """Publish the change's cadence.adjusted.v1, then drop its kept notice (a deterministic
        event id: published again after a failed HDEL, it is the same event)."""
        await publish(
            self.redis, self.keys.outcomes, [self._adjusted(event, change)], maxlen=self.maxlen
        )
        couple_id = event.data.couple_id
        changes = self.keys.changes(self.keys.shard_of(couple_id))
        await self._drop_notice(keys=[self.keys.couple(couple_id), changes], args=[notice])

    def _adjusted(self, event: NudgeFeedback, change: Adjustment) -> CadenceAdjusted:
        d = event.data
        return CadenceAdjusted(
            type="cadence.adjusted.v1",
            event_id=uuid.uuid5(_NS, f"{event.event_id}|{change.previous}|{change.level}"),
            occurred_at=event.occurred_at,
            producer=PRODUCER,
            data=CadenceAdjustedData(
                couple_id=d.couple_id,
                partner_id=d.partner_id,
                kind=d.kind,
                direction="lowered" if change.lowered else "raised",
                level=change.level,
                previous_level=change.previous,
                kept=change.step.kept,
                out_of=change.step.out_of,
                cause=d.signal,
                occurrence_id=d.occurrence_id,
            ),
        )


def _held_change(held: bytes, level: int) -> Adjustment:
    """The change a kept notice ("<previous>|<kept>|<out of>") describes, at `level`."""
    previous, kept, out_of = (int(part) for part in held.split(b"|"))
    return Adjustment(previous, level, Step(kept, out_of))


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _times_a_week(raw: dict[bytes, bytes], code: str) -> int | None:
    """The rhythm of the couple's schedules of one kind (one plan per kind: any record)."""
    prefix = f"{code}/".encode()
    for field, value in raw.items():
        if field.startswith(prefix):
            parts = value.decode().split("|", 3)
            if len(parts) == 4:
                return per_week(parts[3])
    return None
