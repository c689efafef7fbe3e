"""`streams.encode` writes the bytes `model_dump_json` writes (it calls the serializer)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from couples_nudge.common.streams import encode
from couples_nudge_schemas import NudgeSent, NudgeSentData, parse_outcome


def test_encode_is_model_dump_json() -> None:
    sent = NudgeSent(
        type="nudge.sent.v1",
        event_id=uuid.uuid4(),
        occurred_at=datetime(2026, 12, 6, 1, 2, 3, 450000, tzinfo=UTC),
        producer="nudge-notifier",
        data=NudgeSentData(
            occurrence_id="c1/d/both@1796407200",
            couple_id="c1",
            kind="date_night",
            scheduled_at=datetime(2026, 12, 4, 18, tzinfo=UTC),
            partner_id="p1",
            channel="email",
            content_id="dn-1 «café»",
            note="late",
        ),
    )
    data = encode(sent)
    assert isinstance(data, bytes)
    assert data == sent.model_dump_json().encode()
    assert parse_outcome(data) == sent


def test_the_serializer_read_through_an_instance_is_its_class_s() -> None:
    """`encode` reads it from the instance (no metaclass hook): it is the class's."""
    sent = parse_outcome(
        b'{"type":"nudge.sent.v1","event_id":"6f1c3a5e-2b8a-4b0e-9d1c-7e5a3b2c4d6f",'
        b'"occurred_at":"2026-12-06T01:02:03Z","producer":"nudge-notifier","data":{'
        b'"occurrence_id":"c1/d/both@1796407200","couple_id":"c1","kind":"date_night",'
        b'"scheduled_at":"2026-12-04T18:00:00Z","partner_id":"p1","channel":"email",'
        b'"content_id":"dn-1"}}'
    )
    assert sent.__pydantic_serializer__ is type(sent).__pydantic_serializer__
