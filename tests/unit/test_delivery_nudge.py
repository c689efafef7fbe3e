"""Delivery's `_Nudge`: a NudgeDue's data fields, read once from the model's `__dict__`."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from couples_nudge.common.clock import epoch_ms
from couples_nudge.notifier.delivery import Delivery, _Nudge, _Send
from couples_nudge.notifier.outcomes import _NS
from couples_nudge.notifier.state import idempotency_key
from couples_nudge_schemas import Channel as ChannelName
from couples_nudge_schemas import NudgeDueData
from tests.support.notifier import due

AT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


class TestNudgeRecord:
    @pytest.mark.parametrize("turn", [None, "p1"])
    def test_it_holds_what_the_model_answers(self, turn: str | None) -> None:
        """Every field equals the model's attribute; scheduled_ms is the instant's epoch ms."""
        event = due("c1", "c1/d/t", "date_night", ["p1", "p2"], AT, turn=turn)
        nudge = _Nudge.of(event)
        assert nudge.data is event.data
        for name in NudgeDueData.model_fields:
            if name != "revision":  # the delivery never reads it
                assert getattr(nudge, name) == getattr(event.data, name), name
        assert nudge.scheduled_ms == epoch_ms(AT)

    def test_it_names_every_field_the_delivery_reads(self) -> None:
        """A field added to NudgeDueData fails here: decide whether the delivery needs it."""
        kept = {f.name for f in dataclasses.fields(_Nudge)} - {"data", "scheduled_ms"}
        assert kept == set(NudgeDueData.model_fields) - {"revision"}


class TestSentOutcomeId:
    @pytest.mark.parametrize(("channel", "ref"), [("email", None), ("mobile", "0123456789abcdef")])
    def test_its_event_id_is_of_the_occurrence_partner_and_slot(
        self, channel: ChannelName, ref: str | None
    ) -> None:
        """`_sent` takes the send's key: the UUIDv5 of "<occurrence>|<partner>|<slot>", as
        when it made that key itself (a republished outcome is recognisably the same)."""
        nudge = _Nudge.of(due("c1", "c1/d/t", "date_night", ["p1", "p2"], AT))
        slot = channel if ref is None else f"{channel}:{ref}"
        key = idempotency_key(nudge.occurrence_id, "p1", slot)
        send = _Send(channel, key, None, ref, slot)
        sent = Delivery.__new__(Delivery)._sent(nudge, AT, send, "p1", "item-1")
        assert sent.event_id == uuid.uuid5(_NS, f"{nudge.occurrence_id}|p1|{slot}")
        assert (sent.data.channel, sent.data.device) == (channel, ref)
