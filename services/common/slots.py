"""Where the shards live on a Redis Cluster, and slot ranges that spread them evenly.

All of a shard's keys share its hash tag, so a shard is exactly one of the 16384 hash slots,
and the service's load is spread by shards, not by slots. The tags' slots are not uniform:
with the usual equal thirds (`redis-cli --cluster create`), 8 shards land 4/2/2 on three
primaries and 24 land 12/6/6. `balanced_ranges` gives each primary a contiguous slot range
holding an equal share of the shards (8/8/8), for forming a cluster with CLUSTER ADDSLOTSRANGE
(see docs/scaling.md), and `python -m couples_nudge.common.slots SHARDS PRIMARIES` prints them.
"""

from __future__ import annotations

import argparse
import itertools

from redis.crc import key_slot

from couples_nudge.common.keys import Keys

__all__ = ["SLOTS", "balanced_ranges", "shard_slot"]

SLOTS = 16384


def shard_slot(shard: int) -> int:
    """The hash slot of every key of `shard` (whatever the key prefix)."""
    return int(key_slot(Keys(shards=shard + 1).timers(shard).encode()))


def balanced_ranges(shards: int, primaries: int) -> list[tuple[int, int]]:
    """`primaries` contiguous (first, last) slot ranges covering all 16384 slots, the i-th
    holding shards' slots number i * shards / primaries up to the next one (in slot order)."""
    if not 1 <= primaries <= shards:
        raise ValueError("need 1 <= primaries <= shards")
    slots = sorted(shard_slot(s) for s in range(shards))
    starts = [0] + [slots[(i * shards) // primaries] for i in range(1, primaries)]
    if any(a >= b for a, b in itertools.pairwise(starts)):
        raise ValueError(f"{shards} shards share too few slots to split over {primaries}")
    ends = [start - 1 for start in starts[1:]] + [SLOTS - 1]
    return list(zip(starts, ends, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m couples_nudge.common.slots", description=__doc__
    )
    parser.add_argument("shards", type=int, help="NUDGE_SHARDS of the deployment")
    parser.add_argument("primaries", type=int, help="primaries of the cluster")
    args = parser.parse_args()
    ranges = balanced_ranges(args.shards, args.primaries)
    for i, (first, last) in enumerate(ranges):
        held = [s for s in range(args.shards) if first <= shard_slot(s) <= last]
        print(f"primary {i}: CLUSTER ADDSLOTSRANGE {first} {last}   # shards {held}")


if __name__ == "__main__":
    main()
