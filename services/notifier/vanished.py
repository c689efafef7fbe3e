"""Why a couple's record is gone when one of its nudges is delivered: erased, or state lost.

Erasure is a user's act, and it is always recorded: the scheduler's ERASE script deletes the
couple's keys and leaves a tombstone (a one-way digest of the couple id, kept for
NUDGE_TOMBSTONE_RETENTION, 30 days by default) in the same atomic step. A NudgeDue never
waits that long (retries end within hours; an erased couple's dead letters are scrubbed), so
a missing record with a tombstone was erased, and one without was lost: Redis restarted
empty, was flushed, evicted keys, or failed over without them.

We decide by the tombstone, not by the state marker (services/common/state_marker.py), on
purpose: the tombstone is the record of the act itself, it needs no comparison of the clock
that stamped the NudgeDue with the clock that stamped the marker, and it also tells losses
the marker cannot see (evicted keys, a cluster node that came back empty while the marker's
node did not). A NudgeDue for a couple that never existed (made by hand) reads as state_lost.
"""

from __future__ import annotations

from typing import Literal

from couples_nudge.common.autopipeline import AutoPipeline
from couples_nudge.common.keys import Keys, couple_digest

__all__ = ["VanishedReason", "why_vanished"]

VanishedReason = Literal["erased", "state_lost"]


async def why_vanished(pipe: AutoPipeline, keys: Keys, couple_id: str) -> VanishedReason:
    """The suppression reason for a nudge whose couple record is missing (one ZSCORE)."""
    tombstones = keys.tombstones(keys.shard_of(couple_id))
    erased_at = await pipe.call("ZSCORE", tombstones, couple_digest(couple_id))
    return "erased" if erased_at is not None else "state_lost"
