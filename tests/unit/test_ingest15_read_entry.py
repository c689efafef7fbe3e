"""read_entry reads a __data__ payload with read_payload's steps written out (h/ingest15):
the same payload and the same event or reason, for valid, refused, wrapped and framed ones."""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

from faststream.redis.parser import BinaryMessageFormatV1

from benchmarks.burst import START
from benchmarks.harness import couple_event
from couples_nudge.scheduler.entries import read_entry, read_payload
from couples_nudge_schemas import EventRejected


def _mutated(rng: random.Random, raw: bytes) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(raw)
    data = event["data"]
    match rng.randrange(8):
        case 0:
            data["partners"][0]["channels"] = ["email", "email"]
        case 1:
            data["nudges"]["appreciation"]["cadence"]["between"]["end"] = "08:00"
        case 2:
            data["nudges"]["check_in"]["cadence"]["nth"] = rng.choice([True, 1.0, "1", 5])
        case 3:
            data["partners"][1]["partner_id"] = data["partners"][0]["partner_id"]
        case 4:
            data["partners"][0].pop("email")
        case 5:
            event["occurred_at"] = "2026-13-01T00:00:00Z"
        case _:
            pass  # valid
    return event


def _payloads(n: int) -> list[bytes]:
    rng = random.Random(20)
    out = []
    for i in range(n):
        body = json.dumps(_mutated(rng, couple_event(i, mix="realistic", occurred=START)))
        match i % 5:
            case 0 | 1:
                out.append(body.encode())
            case 2:
                out.append(json.dumps({"data": body}).encode())  # the legacy envelope
            case 3:
                framed = BinaryMessageFormatV1.encode(
                    message=body.encode(), reply_to=None, correlation_id="x", headers={}
                )
                out.append(asyncio.run(framed))
            case _:
                out.append(body.encode()[: rng.randrange(1, len(body))])  # cut short
    return out


def _outcome(read: tuple[bytes, Any]) -> tuple[bytes, str]:
    payload, event = read
    if isinstance(event, EventRejected):
        return payload, "refused: " + event.reason
    return payload, event.model_dump_json()


class TestReadEntry:
    def test_a_data_field_reads_as_read_payload_reads_it(self) -> None:
        """300 payloads (most refused, cut or mutated; some wrapped, framed): the same outcomes."""
        payloads = _payloads(300)
        outcomes = [_outcome(read_entry({b"__data__": p})) for p in payloads]
        assert outcomes == [_outcome(read_payload(p)) for p in payloads]
        assert 20 < sum(not text.startswith("refused") for _, text in outcomes) < 100
