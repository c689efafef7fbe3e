"""Outcomes built without validation (notifier/outcomes.py `built`) are the validated ones.

Delivery builds each outcome with `built` when `plain_fields` vouches for the values that do
not come from the (validated) NudgeDue; otherwise it validates. Both paths must give the same
model: the same fields in the same order, the same fields set, the same JSON bytes, the same
equality and hash. And a value that the schema refuses must still be refused.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter, ValidationError

from couples_nudge.common.clock import epoch_ms
from couples_nudge.common.streams import encode
from couples_nudge.notifier import outcomes
from couples_nudge.notifier.outcomes import (
    _NS,
    _PYDANTIC_UTC,
    SentOutcomes,
    built,
    plain_fields,
    utc_text,
)
from couples_nudge_schemas import (
    NudgeFailed,
    NudgeFailedData,
    NudgeSent,
    NudgeSentData,
    NudgeSuppressed,
    NudgeSuppressedData,
)
from couples_nudge_schemas.outcomes import SuppressionReason

_AT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)

ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", fullmatch=True)
occurrences = st.from_regex(r"[A-Za-z0-9_.:/@-]{1,200}", fullmatch=True)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-3))]
)
instants = st.builds(
    lambda dt, tz: dt.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    zones,
)
devices = st.none() | st.from_regex(r"[0-9a-f]{16}", fullmatch=True)
# Any text, often of the schema's own shape: the checks must refuse what the schema refuses.
loose_ids = ids | st.text(max_size=70)
loose_devices = devices | st.text(max_size=20)
content_ids = st.text(max_size=70)
notes = st.none() | st.from_regex(r"[A-Za-z0-9_ .:-]{0,40}", fullmatch=True)
reasons = st.sampled_from(list(get_args(SuppressionReason)))
channels = st.sampled_from(["email", "push", "webhook", "mobile"])


def _same(fast: BaseModel, slow: BaseModel) -> None:
    assert type(fast) is type(slow)
    assert list(fast.__dict__) == list(slow.__dict__)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert fast.model_fields_set == slow.model_fields_set
    assert encode(fast) == encode(slow) == slow.model_dump_json().encode()
    for name, value in fast.__dict__.items():
        if isinstance(value, BaseModel):
            _same(value, getattr(slow, name))


def _both(envelope: type[BaseModel], data: type[BaseModel], head: Any, body: Any) -> None:
    """`built` where `plain_fields` vouches; the validated model either way."""
    try:
        slow = envelope(**head, data=data(**body))
    except ValidationError:
        slow = None
    vouched = plain_fields(
        body.get("partner_id"), body.get("device"), body.get("content_id"), body.get("error")
    )
    if slow is None:
        assert not vouched, "plain_fields vouched for a value the schema refuses"
        return
    if vouched:
        _same(built(envelope, **head, data=built(data, **body)), slow)


def _head(kind: str, at: datetime, about: str) -> dict[str, Any]:
    return {
        "type": kind,
        "event_id": uuid.uuid5(uuid.NAMESPACE_URL, about),
        "occurred_at": at,
        "producer": "nudge-notifier",
    }


def _common(occurrence: str, couple: str, scheduled: datetime) -> dict[str, Any]:
    return {
        "occurrence_id": occurrence,
        "couple_id": couple,
        "kind": "date_night",
        "scheduled_at": scheduled,
    }


class TestBuilt:
    @given(occurrences, ids, instants, instants, loose_ids, channels, loose_devices,
           content_ids, notes)  # fmt: skip
    def test_sent(self, occurrence: str, couple: str, at: datetime, scheduled: datetime,
                  partner: str, channel: str, device: str | None, content: str,
                  note: str | None) -> None:  # fmt: skip
        body = _common(occurrence, couple, scheduled)
        body |= {"partner_id": partner, "channel": channel, "device": device}
        body |= {"content_id": content, "note": note}
        _both(NudgeSent, NudgeSentData, _head("nudge.sent.v1", at, occurrence), body)

    @given(occurrences, ids, instants, instants, st.none() | loose_ids,
           st.none() | channels, loose_devices, reasons)  # fmt: skip
    def test_suppressed(self, occurrence: str, couple: str, at: datetime, scheduled: datetime,
                        partner: str | None, channel: str | None, device: str | None,
                        reason: str) -> None:  # fmt: skip
        body = {**_common(occurrence, couple, scheduled), "partner_id": partner,
                "channel": channel, "device": device, "reason": reason}  # fmt: skip
        _both(NudgeSuppressed, NudgeSuppressedData, _head("nudge.suppressed.v1", at, "s"), body)

    @given(occurrences, ids, instants, loose_ids, channels, loose_devices,
           st.text(max_size=220), st.booleans(), st.integers(1, 999_999))  # fmt: skip
    def test_failed(self, occurrence: str, couple: str, at: datetime, partner: str,
                    channel: str, device: str | None, error: str, permanent: bool,
                    attempt: int) -> None:  # fmt: skip
        body = _common(occurrence, couple, at)
        body |= {"partner_id": partner, "channel": channel, "device": device}
        body |= {"error": error, "permanent": permanent, "attempt": attempt}
        _both(NudgeFailed, NudgeFailedData, _head("nudge.failed.v1", at, "f"), body)

    def test_defaults_are_filled_and_not_set(self) -> None:
        """A field left out takes its default, and is not in the fields set (as validated)."""
        at = datetime(2026, 12, 6, tzinfo=UTC)
        body = {**_common("o", "c", at), "partner_id": "p", "channel": "email",
                "content_id": "x"}  # fmt: skip
        made = built(NudgeSentData, **body)
        assert (made.attempt, made.note, made.device) == (1, None, None)
        assert made.model_fields_set == set(body)
        _same(made, NudgeSentData(**body))

    @pytest.mark.parametrize(
        ("partner", "device", "content", "error"),
        [("-p", None, None, None), ("p", "ABCDEF0123456789", None, None),
         ("p", None, "x" * 65, None), ("p", None, None, "e" * 201), ("p:q", None, None, None)],
    )  # fmt: skip
    def test_plain_fields_refuses(
        self, partner: str, device: str | None, content: str | None, error: str | None
    ) -> None:
        assert not plain_fields(partner, device, content, error)

    def test_a_default_factory_is_refused(self) -> None:
        """Defaults are taken once per class: a factory's list would be shared by all."""

        class Listed(BaseModel):
            items: list[int] = Field(default_factory=list)

        with pytest.raises(TypeError, match="default factory"):
            built(Listed)


# Instants as the delivery has them: aware UTC (the clock), pydantic's own tzinfo (a NudgeDue
# read from JSON, "Z" or an offset), fixed offsets; any microseconds.
_AS_READ = TypeAdapter(AwareDatetime)
any_instants = st.builds(
    lambda dt, tz, read: (
        _AS_READ.validate_json(_AS_READ.dump_json(dt.replace(tzinfo=tz)))
        if read
        else dt.replace(tzinfo=tz)
    ),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    zones,
    st.booleans(),
)
kinds = st.sampled_from(["date_night", "check_in", "appreciation"])


class TestSentOutcomes:
    """`SentOutcomes.make` (the sent outcome and its JSON without pydantic) gives the
    validated model and the serializer's bytes, or None when it cannot vouch for a value."""

    @given(occurrences, ids, kinds, any_instants, notes, any_instants, loose_ids, channels,
           loose_devices, content_ids | ids)  # fmt: skip
    def test_the_validated_outcome_and_its_bytes(
        self, occurrence: str, couple: str, kind: Any, scheduled: datetime, note: str | None,
        now: datetime, partner: str, channel: Any, device: str | None, content: str,
    ) -> None:  # fmt: skip
        key = f"{occurrence}|{partner}|{channel}"
        body = {**_common(occurrence, couple, scheduled), "kind": kind}
        body |= {"partner_id": partner, "channel": channel, "device": device}
        body |= {"content_id": content, "note": note}
        head: dict[str, Any] = {"type": "nudge.sent.v1", "event_id": uuid.uuid5(_NS, key)}
        head["occurred_at"] = now
        try:
            slow = NudgeSent(**head, producer="nudge-notifier", data=NudgeSentData(**body))
        except ValidationError:
            slow = None
        made = SentOutcomes(
            "nudge-notifier", occurrence, couple, kind, scheduled, epoch_ms(scheduled), note,
            now, epoch_ms(now),
        ).make(key, partner, channel, device, content)  # fmt: skip
        if slow is None:
            assert made is None, "SentOutcomes vouched for a value the schema refuses"
            return
        plain = content.isascii() and content.isprintable() and not {'"', "\\"} & set(content)
        assert (made is not None) == plain  # every value the schema takes, if JSON-plain
        if made is not None:
            _same(made.event, slow)
            assert made.data == encode(slow)

    def test_made_outcomes_share_their_fields_sets_left_whole(self) -> None:
        """Every outcome `make` builds holds the one shared fields set of its model (module
        docstring, 4), as the validating constructor sets it; a copy with an update changes
        its own."""
        made = SentOutcomes(
            "nudge-notifier", "c1/d/both@1", "c1", "date_night", _AT, epoch_ms(_AT), None,
            _AT, epoch_ms(_AT),
        )  # fmt: skip
        events = [made.make(f"k{n}", f"p{n}", "email", None, "dn-1") for n in range(3)]
        for encoded in events:
            assert encoded is not None
            assert encoded.event.model_fields_set is outcomes._SENT_FIELDS
            assert encoded.event.data.model_fields_set is outcomes._SENT_DATA_FIELDS
        first = events[0]
        assert first is not None
        copied = first.event.data.model_copy(update={"attempt": 2})
        assert "attempt" in copied.model_fields_set
        assert set(NudgeSentData.model_fields) - {"attempt"} == outcomes._SENT_DATA_FIELDS
        assert set(NudgeSent.model_fields) == outcomes._SENT_FIELDS

    @given(any_instants)
    def test_utc_text_is_pydantics(self, at: datetime) -> None:
        """An instant in UTC is written as pydantic writes it; any other zone is left to it."""
        text = utc_text(at, epoch_ms(at))
        if at.utcoffset() == timedelta(0) and at.tzinfo in (UTC, _PYDANTIC_UTC):
            assert text is not None
            assert f'"{text}"'.encode() == _AS_READ.dump_json(at)
        else:
            assert text is None

    def test_pydantic_reads_z_as_one_tzinfo(self) -> None:
        """`utc_text` knows pydantic's "Z" tzinfo by identity (else pydantic writes it)."""
        first = _AS_READ.validate_json(b'"2026-12-04T18:00:00Z"').tzinfo
        assert first is _AS_READ.validate_json(b'"2030-01-01T00:00:00.5Z"').tzinfo
        assert first is _PYDANTIC_UTC

    def test_values_not_json_plain_are_refused(self) -> None:
        """A content id with a quote, a backslash or a control character: pydantic writes it."""
        at = datetime(2026, 12, 4, 18, tzinfo=UTC)
        made = SentOutcomes("nudge-notifier", "o", "c", "date_night", at, epoch_ms(at), None,
                            at, epoch_ms(at))  # fmt: skip
        for content in ('a"b', "a\\b", "a\nb", "é"):
            assert made.make("o|p|email", "p", "email", None, content) is None
        assert made.make("o|p|email", "p", "email", None, "ok") is not None

    def test_each_outcome_has_its_own_dicts(self) -> None:
        """`make` copies its per-delivery `__dict__` templates: every outcome gets dicts of
        its own, in field order, and the templates keep their placeholders (issue 20)."""
        at = datetime(2026, 12, 4, 18, tzinfo=UTC)
        made = SentOutcomes("nudge-notifier", "o", "c", "date_night", at, epoch_ms(at), None,
                            at, epoch_ms(at))  # fmt: skip
        first = made.make("o|p|email", "p", "email", None, "one")
        second = made.make("o|q|email", "q", "email", None, "two")
        assert first is not None
        assert second is not None
        assert first.event.__dict__ is not second.event.__dict__
        assert first.event.data.__dict__ is not second.event.data.__dict__
        assert list(first.event.__dict__) == list(NudgeSent.model_fields)
        assert list(first.event.data.__dict__) == list(NudgeSentData.model_fields)
        assert (first.event.data.partner_id, second.event.data.partner_id) == ("p", "q")
        assert first.event.event_id == uuid.uuid5(_NS, "o|p|email")
        assert made._data["partner_id"] is None
        assert made._event["event_id"] is None

    @given(st.text(max_size=80))
    def test_uuid_text_is_the_uuid(self, about: str) -> None:
        """The event id's text (`to_bytes(16).hex()`, cut) is `str(uuid5(...))`."""
        value = outcomes._outcome_int(about)
        h = value.to_bytes(16).hex()
        text = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        assert text == str(uuid.uuid5(_NS, about)) == str(outcomes.outcome_id(about))
