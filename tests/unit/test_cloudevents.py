"""A preference event may arrive as a CloudEvents 1.0 structured-mode JSON object: mapped to
the envelope attribute for attribute, validated rule for rule, refused with short reasons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from couples_nudge.scheduler.entries import read_entry
from couples_nudge_schemas import EventRejected, parse_preference
from couples_nudge_schemas.cloudevents import parse_preference_cloudevent, to_cloudevent
from tests.support.contracts import EXAMPLES, Verdict, event_types, verdict

PREFERENCE_TYPES = sorted(event_types("preference-event"))


def envelope_example(event_type: str) -> bytes:
    return (EXAMPLES / "events" / f"{event_type}.json").read_bytes()


def cloud(event_type: str = "preferences.paused.v1", **changes: Any) -> dict[str, Any]:
    event = to_cloudevent(parse_preference(envelope_example(event_type)))
    for key, value in changes.items():
        if value is None:
            event.pop(key, None)
        else:
            event[key] = value
    return event


def refusal(event: dict[str, Any]) -> str:
    with pytest.raises(EventRejected) as refused:
        parse_preference_cloudevent(json.dumps(event))
    return refused.value.reason


class TestMapping:
    @pytest.mark.parametrize("event_type", PREFERENCE_TYPES)
    def test_every_preference_event_reads_back_as_itself(self, event_type: str) -> None:
        """id -> event_id, source -> producer, type, time -> occurred_at, data: the envelope
        event read from its CloudEvent equals the one read from the envelope."""
        envelope = parse_preference(envelope_example(event_type))
        event = to_cloudevent(envelope)
        assert event["specversion"] == "1.0"
        assert event["id"] == str(envelope.event_id)
        assert event["source"] == envelope.producer
        assert parse_preference_cloudevent(json.dumps(event)) == envelope

    def test_the_entry_reader_takes_either_form(self) -> None:
        """The scheduler's entry reader gives the same event for both wire forms."""
        raw = envelope_example("preferences.set.v1")
        as_cloud = json.dumps(to_cloudevent(parse_preference(raw))).encode()
        _, from_envelope = read_entry({b"__data__": raw})
        payload, from_cloud = read_entry({b"__data__": as_cloud})
        assert payload == as_cloud
        assert from_cloud == from_envelope

    def test_datacontenttype_may_be_left_out(self) -> None:
        """datacontenttype is optional in CloudEvents; JSON data is what it would say."""
        assert parse_preference_cloudevent(json.dumps(cloud(datacontenttype=None)))

    def test_a_null_attribute_is_unset(self) -> None:
        """CloudEvents JSON format 2.2: a decoder MUST treat a null attribute as unset, so
        the spec's own examples (`"subject": null`, `"unsetextension": null`) and a serialiser
        that writes every optional attribute (`"datacontenttype": null`) give the same event
        as one that leaves them out; the JSON Schema agrees."""
        plain = cloud()
        nulls = {**plain, "datacontenttype": None, "subject": None, "dataschema": None}
        nulls["unsetextension"] = None
        assert parse_preference_cloudevent(json.dumps(nulls)) == parse_preference_cloudevent(
            json.dumps(plain)
        )
        assert verdict("preference-event", nulls) == Verdict(None, ())
        # Unset is still unset where the attribute is required here.
        assert "time: Field required" in refusal({**plain, "time": None})
        assert not verdict("preference-event", {**plain, "time": None}).schema_accepts


class TestRefusals:
    @pytest.mark.parametrize(
        ("changes", "reason"),
        [
            ({"specversion": "0.3"}, "specversion: Input should be '1.0'"),
            ({"time": None}, "time: Field required"),
            ({"time": "2026-11-20 18:00:00"}, "time: Value error, must be an ISO 8601"),
            ({"id": "order-1234"}, "id: Value error, must be a UUID"),
            ({"datacontenttype": "text/plain"}, "datacontenttype: Input should be"),
            ({"subject": "maya-sam"}, "subject: Extra inputs are not permitted"),
            ({"type": "com.example.unknown"}, "does not match any of the expected tags"),
            ({"data": "pause please"}, "data: Input should be an object"),
        ],
    )
    def test_a_malformed_cloudevent_is_refused_under_its_own_names(
        self, changes: dict[str, Any], reason: str
    ) -> None:
        """The reason names the CloudEvents attribute, not the envelope field it maps to."""
        said = refusal(cloud(**changes))
        assert said.startswith("cloudevent: ")
        assert reason in said
        assert "occurred_at" not in said
        assert "event_id" not in said

    def test_reasons_are_bounded_and_never_quote_the_input(self) -> None:
        """A hostile CloudEvent gets a short reason that repeats none of its values."""
        hostile = "\u202eevil" + "x" * 5000
        said = refusal(cloud(time=hostile, id=hostile, source=hostile, subject=hostile))
        assert len(said) <= 300
        assert "evil" not in said
        assert "xxxx" not in said

    def test_a_null_beside_data_nested_thousands_deep_is_refused_not_raised(self) -> None:
        """Unsetting null attributes reads the text once more (Python's json, which raises
        RecursionError, not ValueError, on arrays 30,000 deep): refused like any bad JSON."""
        raw = b'{"specversion": "1.0", "x": null, "data": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
        _payload, outcome = read_entry({b"__data__": raw})
        assert isinstance(outcome, EventRejected)
        assert outcome.reason.startswith("cloudevent: ")

    def test_binary_mode_fields_are_refused_with_a_reason_that_says_so(self) -> None:
        """CloudEvents binary mode (attributes as ce_* fields beside the data) is not read:
        the reason says so, where it was "Unable to extract tag using discriminator"."""
        fields = {
            b"ce_specversion": b"1.0",
            b"ce_type": b"preferences.paused.v1",
            b"ce_id": b"7f1c9a52-3c2e-4f55-9d7e-0d2f0f4a1b11",
            b"ce_source": b"/couples-app",
            b"ce_time": b"2026-11-20T18:00:00Z",
            b"data": b'{"couple_id": "maya-sam"}',
        }
        _payload, outcome = read_entry(fields)
        assert isinstance(outcome, EventRejected)
        assert "CloudEvents binary mode" in outcome.reason
        assert "discriminator" not in outcome.reason

    def test_an_oversized_cloudevent_is_refused_before_parsing(self) -> None:
        """The 64 KiB limit holds for the CloudEvents form too."""
        said = refusal(cloud(data={"couple_id": "maya-sam", "pad": "x" * 70_000}))
        assert "the limit is 65536" in said


def test_the_schema_of_the_cloudevents_form_is_exported() -> None:
    """schemas/json/preference-cloudevent.schema.json requires the CloudEvents attributes."""
    schema = json.loads(
        (
            Path(__file__).resolve().parents[2] / "schemas/json/preference-cloudevent.schema.json"
        ).read_text()
    )
    assert set(schema["discriminator"]["mapping"]) == set(PREFERENCE_TYPES)
    one = schema["$defs"]["PreferencesSetCloudEvent"]
    assert set(one["required"]) == {"specversion", "id", "source", "type", "time", "data"}
    # Unknown attributes are refused; a null one is unset (TestMapping).
    assert one["additionalProperties"] == {"type": "null"}
