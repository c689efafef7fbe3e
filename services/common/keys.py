"""Every Redis key and stream name the services use. Nothing else builds key names.

Layout (prefix "nudges", shard tag {sNN}):

    nudges:preferences                 stream  in: preference events        group "scheduler"
    nudges:outcomes                    stream  out: sent/suppressed/failed
    nudges:rejected                    stream  bad input + reason (plain fields)
    nudges:dead                        stream  nudges that exhausted retries
    nudges:due:{s00}                   stream  NudgeDue for shard 00          group "notifier"
    nudges:timers:{s00}                zset    schedule id -> next fire (epoch ms)
    nudges:schedules:{s00}             hash    legacy (before issue 7): schedule id -> record;
                                               read and migrated, no longer written
    nudges:couple:{s00}:<couple>       hash    revision, profile, schedule records, pause and
                                               unsubscribe state (services/common/couple_state.py)
    nudges:parked:{s00}:<couple>       hash    pause, unsubscribe and snooze fields ("<ms>|
                                               <value>", last writer wins) applied before the
                                               couple's first preferences.set: APPLY_PLAN
                                               moves them into the new couple hash; expires a
                                               day after the last (lua.PARKED_TTL_MS)
    nudges:sent:{s00}:<couple>         zset    idempotency: "occurrence|partner|channel" -> sent ms,
                                               daily-cap slots "occurrence|partner|cap(ped)",
                                               and "occurrence|partner|channel|sending" -> ms,
                                               written before a send (services/notifier/caps.py);
                                               expires NUDGE_IDEMPOTENCY_RETENTION and a day
                                               after the last send
    nudges:outbox:{s00}:<couple>       hash    outcomes recorded but not yet on the outcomes
                                               stream: "occurrence|partner|channel" -> event
                                               JSON, "occurrence|partner|capped" -> ms
                                               (services/notifier/state.py); usually empty
    nudges:seen:{s00}:<couple>         zset    content ids the couple saw -> ms (repeat window);
                                               expires the window and a day after the last one
    nudges:jar:{s00}:<couple>          hash    the couple's own date jar: idea id -> JSON
                                               {text, added_by, added_at} (at most 200)
    nudges:jardraws:{s00}:<couple>     hash    the jar's draws: "d:<idea id>" -> ms for ideas
                                               drawn since the last refill, "o:<draw key>" ->
                                               "<idea id>|ms" (services/notifier/jar_store.py)
    nudges:engaged:{s00}:<couple>      hash    answers given through action links:
                                               "a|<occurrence>|<partner>|<action>" -> "<first
                                               ms>|<state>|<lease ms>" (published once);
                                               "s|<partner>|<kind>" -> "<count>|<last
                                               occurrence>|<trigger>": nudges sent since the
                                               last answer (the listening cadence;
                                               services/notifier/engagement.py); expires
    nudges:tombstones:{s00}            zset    blake2b(couple id) -> erased at ms, kept
                                               NUDGE_TOMBSTONE_RETENTION (ERASE and the timer
                                               loop trim it)
    nudges:changes:{s00}               string  the shard's change counter (server clock in
                                               us): bumped by every script that rewrites a
                                               couple hash (lua.BUMP); FIRE trusts what a
                                               lookahead read while it has not moved
    nudges:retries:{s00}               zset    "<attempt>|<NudgeDue JSON>" -> retry at ms
    nudges:ahead:{s00}:<instant ms>    string  chunks of an instant's prepared fires claimed
                                               so far by the replicas (expires in a minute)
    nudges:lease:{s00}                 string  the scheduler replica that fires shard 00 now
                                               (services/scheduler/leases.py; expires)
    nudges:schedulers                  zset    live scheduler replicas -> last seen ms (their
                                               fair share of the shards' leases)
    nudges:replay:<source>:<digest>    string  a relay's webhook request or event already acted
                                               on (services/notifier/webhooks/replay.py);
                                               expires after the replay window
    nudges:limit:<page>:<digest>       string  a partner's changes this minute through the
                                               manage or unsubscribe page (digest of couple
                                               and partner; services/notifier/change_limit.py)
    nudges:swept:records               string  "1" once no sent or seen set is left without an
                                               expiry (services/notifier/record_expiry.py)
    nudges:state:{nudges:outcomes}     hash    the state marker: which state epoch Redis holds,
                                               and the last loss (services/common/state_marker.py)
    nudges:state:{s00}                 string  on a cluster: the state epoch shard 00's primary
                                               holds (its marker's copy; gone: that primary
                                               lost its state)

Every key of one shard shares its hash tag, so one Lua script may touch a couple's state, the
shard's timers and its due stream on Redis Cluster. A couple's shard is a stable hash of its id.
The state marker's tag is the outcomes stream's whole name (which has no tag of its own), so the
two share a cluster slot and one script may check the marker and publish the loss notice.
"""

from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass
from typing import Final

from couples_nudge_schemas import preferences_stream

__all__ = ["NOTIFIER_GROUP", "SCHEDULER_GROUP", "Keys", "couple_digest"]

SCHEDULER_GROUP = "scheduler"
NOTIFIER_GROUP = "notifier"


_COUPLE_DIGEST = hashlib.blake2b(digest_size=12)  # copied per call: no keyword parsing


def couple_digest(couple_id: str) -> str:
    """A one-way name for an erased couple: lets us ignore replays without keeping the id.

    `hashlib.blake2b(couple_id.encode(), digest_size=12).hexdigest()`; an empty prebuilt hash
    copied and fed costs ~1.2k instructions less than a new one with keyword arguments (once
    per couple on the batch path, issue 20): tests/property/test_couple_digest.py."""
    digest = _COUPLE_DIGEST.copy()
    digest.update(couple_id.encode())
    return digest.hexdigest()


# The hash tags of the first shards, prebuilt for `Keys._tag` (a format with a spec costs
# ~1.5k instructions; a test pins them equal to it).
_TAGGED: Final = 100
_TAGS: Final[tuple[str, ...]] = tuple(f"{{s{shard:02d}}}" for shard in range(_TAGGED))


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "nudges"
    shards: int = 1

    @property
    def preferences(self) -> str:
        return preferences_stream(self.prefix)  # the publishers' helper names it the same

    @property
    def outcomes(self) -> str:
        return f"{self.prefix}:outcomes"

    @property
    def rejected(self) -> str:
        return f"{self.prefix}:rejected"

    @property
    def dead(self) -> str:
        return f"{self.prefix}:dead"

    @property
    def state(self) -> str:
        """The state marker, in the outcomes stream's cluster slot (see the module docstring)."""
        return f"{self.prefix}:state:{{{self.outcomes}}}"

    def shard_state(self, shard: int) -> str:
        """The state epoch the primary of `shard` holds, on a cluster (state_marker.py)."""
        return f"{self.prefix}:state:{self._tag(shard)}"

    def replay(self, source: str, digest: str) -> str:
        """A webhook request or event already acted on: `digest` of the relay's own id."""
        return f"{self.prefix}:replay:{source}:{digest}"

    def change_limit(self, page: str, digest: str) -> str:
        """A partner's changes this minute through `page`: `digest` of couple and partner."""
        return f"{self.prefix}:limit:{page}:{digest}"

    def shard_of(self, couple_id: str) -> int:
        return zlib.crc32(couple_id.encode()) % self.shards

    def _tag(self, shard: int) -> str:
        return _TAGS[shard] if shard < _TAGGED else f"{{s{shard:02d}}}"

    def due(self, shard: int) -> str:
        return f"{self.prefix}:due:{self._tag(shard)}"

    def all_due(self) -> list[str]:
        return [self.due(s) for s in range(self.shards)]

    def timers(self, shard: int) -> str:
        return f"{self.prefix}:timers:{self._tag(shard)}"

    def schedules(self, shard: int) -> str:
        return f"{self.prefix}:schedules:{self._tag(shard)}"

    def retries(self, shard: int) -> str:
        return f"{self.prefix}:retries:{self._tag(shard)}"

    def ahead_claims(self, shard: int, instant_ms: int) -> str:
        return f"{self.prefix}:ahead:{self._tag(shard)}:{instant_ms}"

    def fire_lease(self, shard: int) -> str:
        return f"{self.prefix}:lease:{self._tag(shard)}"

    @property
    def records_swept(self) -> str:
        """Set once no sent or seen set is left without an expiry (record_expiry.py)."""
        return f"{self.prefix}:swept:records"

    @property
    def schedulers(self) -> str:
        return f"{self.prefix}:schedulers"

    def changes(self, shard: int) -> str:
        """The shard's change counter (services/scheduler/lua.py, BUMP and FIRE)."""
        return f"{self.prefix}:changes:{self._tag(shard)}"

    def tombstones(self, shard: int) -> str:
        return f"{self.prefix}:tombstones:{self._tag(shard)}"

    def couple_prefix(self, shard: int) -> str:
        """What a couple's hash key is named after: the scheduler's Lua appends the couple id."""
        return f"{self.prefix}:couple:{self._tag(shard)}:"

    def couple(self, couple_id: str) -> str:
        return f"{self.couple_prefix(self.shard_of(couple_id))}{couple_id}"

    def delivery_keys(self, couple_id: str) -> tuple[str, str, str, str]:
        """`couple`, `sent`, `seen` and `outbox` of one couple (the notifier's LOAD and
        RECORD_SENT take these four), the shard and its tag computed once instead of four
        times (tests/unit/test_delivery_keys.py). `shard_of` inline and the part after the
        key's name made once (with `_tag`'s prebuilt tags: 9.3k -> 5.8k instructions a call;
        issue 20, h/notify11; callgrind, a loop of 400 couples)."""
        shard = zlib.crc32(couple_id.encode()) % self.shards
        tail = f":{self._tag(shard)}:{couple_id}"
        p = self.prefix
        return (f"{p}:couple{tail}", f"{p}:sent{tail}", f"{p}:seen{tail}",
                f"{p}:outbox{tail}")  # fmt: skip

    def parked_prefix(self, shard: int) -> str:
        """What a couple's parked key is named after (`parked` without the couple id)."""
        return f"{self.prefix}:parked:{self._tag(shard)}:"

    def parked(self, couple_id: str) -> str:
        """Consent applied before the couple exists (lua.SET_IF_NEWER, lua.APPLY_PLAN)."""
        return f"{self.parked_prefix(self.shard_of(couple_id))}{couple_id}"

    def sent(self, couple_id: str) -> str:
        return f"{self.prefix}:sent:{self._tag(self.shard_of(couple_id))}:{couple_id}"

    def seen(self, couple_id: str) -> str:
        return f"{self.prefix}:seen:{self._tag(self.shard_of(couple_id))}:{couple_id}"

    def outbox(self, couple_id: str) -> str:
        return f"{self.prefix}:outbox:{self._tag(self.shard_of(couple_id))}:{couple_id}"

    def jar(self, couple_id: str) -> str:
        return f"{self.prefix}:jar:{self._tag(self.shard_of(couple_id))}:{couple_id}"

    def jar_draws(self, couple_id: str) -> str:
        return f"{self.prefix}:jardraws:{self._tag(self.shard_of(couple_id))}:{couple_id}"

    def engaged(self, couple_id: str) -> str:
        return f"{self.prefix}:engaged:{self._tag(self.shard_of(couple_id))}:{couple_id}"

    def couple_keys(self, couple_id: str) -> list[str]:
        """Every key that holds data of one couple: what erasure deletes."""
        return [
            self.couple(couple_id),
            self.parked(couple_id),
            self.sent(couple_id),
            self.seen(couple_id),
            self.outbox(couple_id),
            self.jar(couple_id),
            self.jar_draws(couple_id),
            self.engaged(couple_id),
        ]
