"""A couple hash's parse by the notifier (couple_state.parse_couple), under callgrind.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/cg.%p \
        .venv/bin/python -m benchmarks.callgrind_couple --n 200

N distinct couples of the notifier scenario's burst mix (benchmarks/notifier.py), each hash as
the scheduler writes it ("rev", the profile fields of `encode_profile`, two schedule records),
are parsed once each, as the notifier parses them (one nudge per couple per occurrence).
--hit parses them a second time and counts that (the profile cache's hits until h/notify9
dropped that cache: now the same work as the first parse). Only the parses
are instrumented (callgrind's client requests, as benchmarks/callgrind_notifier.py): run it with
--n 200 and --n 1200, the difference / 1,000 is one parse. Not part of `make bench`.
"""

from __future__ import annotations

import argparse

from benchmarks.burst import START
from benchmarks.callgrind_notifier import (
    START_INSTRUMENTATION,
    STOP_INSTRUMENTATION,
    ClientRequests,
)
from benchmarks.harness import couple_event
from couples_nudge.common.couple_state import encode_profile, parse_couple
from couples_nudge_schemas import PreferencesSetData, parse_preference


def hashes(n: int) -> list[dict[bytes, bytes]]:
    """N couple hashes as the scheduler writes them (schedule records: two, shaped like one)."""
    out = []
    for i in range(n):
        data = parse_preference(couple_event(i, mix="burst", occurred=START)).data
        assert isinstance(data, PreferencesSetData)
        fields = {"rev": str(data.revision), **encode_profile(data)}
        for p in data.partners:
            fields[f"d/{p.partner_id}"] = "0|1|00|e0 19 * * 5"
        out.append({k.encode(): v.encode() for k, v in fields.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--hit", action="store_true", help="parse each twice, count the second")
    args = parser.parse_args()
    raws = hashes(args.n)
    if args.hit:
        for raw in raws:
            parse_couple(raw)
    requests = ClientRequests()
    requests.request(START_INSTRUMENTATION)
    for raw in raws:
        parse_couple(raw)
    requests.request(STOP_INSTRUMENTATION)
    print(f"parsed {args.n}")


if __name__ == "__main__":
    main()
