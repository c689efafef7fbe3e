"""Specification of schemas/: the event contracts, strict validation and the public surface.

Every event is parsed from JSON text with ``parse_preference``, ``parse_due`` or
``parse_outcome``. A message that is not a valid event raises ``EventRejected`` whose
``reason`` reads ``location: message`` per problem (``event`` when the whole message is
wrong), never echoing a personal value back.
"""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest

import couples_nudge_schemas as schemas
from couples_nudge_schemas import (
    MAX_EVENT_BYTES,
    REASON_LIMIT,
    CoupleErased,
    CronCadence,
    EventRejected,
    MonthlyCadence,
    NudgeDue,
    NudgeFailed,
    NudgeSent,
    NudgeSuppressed,
    PreferencesPaused,
    PreferencesResumed,
    PreferencesSet,
    PreferencesSetData,
    PreferencesUnsubscribed,
    ServiceStateLost,
    TimesPerWeekCadence,
    WeeklyCadence,
    json_schemas,
    parse_due,
    parse_outcome,
    parse_outcomes_entry,
    parse_preference,
)

Json = dict[str, Any]
Path_ = tuple[str | int, ...]

EVENT_ID = "0b6e2b1c-3c1e-4d4a-9f5e-1a2b3c4d5e6f"
OCCURRED = "2026-03-01T10:00:00Z"
SET = "preferences.set.v1"


def envelope(type_: str, data: Json) -> Json:
    return {
        "type": type_,
        "event_id": EVENT_ID,
        "occurred_at": OCCURRED,
        "producer": "couples-app",
        "data": data,
    }


def partner(pid: str, zone: str) -> Json:
    return {
        "partner_id": pid,
        "name": pid.capitalize(),
        "timezone": zone,
        "channels": ["email"],
        "email": f"{pid}@example.org",
    }


def set_event() -> Json:
    """A full, valid preferences.set.v1 event using every cadence form."""
    return envelope(
        SET,
        {
            "couple_id": "c-42",
            "revision": 3,
            "partners": [
                partner("maya", "Europe/Berlin") | {"love_languages": ["acts_of_service"]},
                partner("sam", "America/New_York")
                | {
                    "channels": ["email", "push"],
                    "push": {
                        "endpoint": "https://push.example.org/abc",
                        "p256dh": "BPkey_-=",
                        "auth": "authkey",
                    },
                    "quiet_hours": {"start": "22:00", "end": "08:00", "policy": "drop"},
                },
            ],
            "nudges": {
                "date_night": {
                    "cadence": {
                        "repeat": "weekly",
                        "weekday": "fri",
                        "at": "19:00",
                        "every_weeks": 2,
                        "anchor": "2026-01-09",
                    },
                    "recipients": "alternate",
                    "timezone_of": "sam",
                },
                "check_in": {
                    "cadence": {"repeat": "monthly", "weekday": "sun", "nth": 1, "at": "20:00"},
                    "timing": "together",
                },
                "appreciation": {
                    "cadence": {
                        "repeat": "times_per_week",
                        "times": 3,
                        "between": {"start": "12:00", "end": "20:00"},
                    },
                },
            },
            "focus_areas": ["emotional", "experiential"],
            "discreet": True,
        },
    )


def with_value(event: Json, path: Path_, value: Any) -> Json:
    """A deep copy of ``event`` with the value at ``path`` replaced."""
    out = copy.deepcopy(event)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


def without(event: Json, path: Path_) -> Json:
    out = copy.deepcopy(event)
    node: Any = out
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return out


def raw(event: Json) -> bytes:
    return json.dumps(event).encode()


def parsed_set() -> PreferencesSet:
    event = parse_preference(raw(set_event()))
    assert isinstance(event, PreferencesSet)
    return event


def reason_of(text: bytes | str) -> str:
    with pytest.raises(EventRejected) as caught:
        parse_preference(text)
    return caught.value.reason


def due_event() -> Json:
    return envelope(
        "nudge.due.v1",
        {
            "occurrence_id": "c-42/d/turns@1796583600",
            "couple_id": "c-42",
            "schedule_id": "c-42/d/turns",
            "kind": "date_night",
            "recipients": ["maya"],
            "turn": "maya",
            "sequence": 4,
            "scheduled_at": "2026-12-06T19:00:00Z",
            "revision": 3,
        },
    )


def outcome_data(**extra: Any) -> Json:
    return {
        "occurrence_id": "c-42/a/maya@1796583600",
        "couple_id": "c-42",
        "kind": "appreciation",
        "scheduled_at": "2026-12-06T19:00:00Z",
        **extra,
    }


class TestExportedMembers:
    def test_all_is_pinned(self) -> None:
        """schemas exports exactly these names, so a change to the contract is deliberate."""
        assert schemas.__all__ == [
            "DATA_FIELD",
            "DEFAULT_PREFIX",
            "JAR_LIMIT",
            "MAX_DEVICES",
            "MAX_EVENT_BYTES",
            "MAX_REVISION",
            "REASON_LIMIT",
            "AndroidDevice",
            "BounceKind",
            "Cadence",
            "CadenceAdjusted",
            "CadenceAdjustedData",
            "Channel",
            "ChannelBounced",
            "ChannelBouncedData",
            "ChannelComplained",
            "ChannelComplainedData",
            "CheckInFormat",
            "ConsentMethod",
            "CoupleContext",
            "CoupleErased",
            "CoupleErasedData",
            "CronCadence",
            "DailyCadence",
            "DateJarIdeaAdded",
            "DateJarIdeaAddedData",
            "DateJarIdeaRemoved",
            "DateJarIdeaRemovedData",
            "DateNightSource",
            "Device",
            "DeviceRef",
            "EngagementAction",
            "Envelope",
            "EventBuilder",
            "EventRejected",
            "FeedbackSignal",
            "FocusArea",
            "IosDevice",
            "LoveLanguage",
            "MonthlyCadence",
            "NudgeBounced",
            "NudgeBouncedData",
            "NudgeComplained",
            "NudgeComplainedData",
            "NudgeDue",
            "NudgeDueData",
            "NudgeEngaged",
            "NudgeEngagedData",
            "NudgeFailed",
            "NudgeFailedData",
            "NudgeFeedback",
            "NudgeFeedbackData",
            "NudgeKind",
            "NudgePlan",
            "NudgeSent",
            "NudgeSentData",
            "NudgeSuppressed",
            "NudgeSuppressedData",
            "Nudges",
            "OutcomeEvent",
            "OutcomesStreamEvent",
            "Partner",
            "PreferenceEvent",
            "PreferencesPaused",
            "PreferencesPausedData",
            "PreferencesResubscribed",
            "PreferencesResubscribedData",
            "PreferencesResumed",
            "PreferencesResumedData",
            "PreferencesSet",
            "PreferencesSetData",
            "PreferencesSnoozed",
            "PreferencesSnoozedData",
            "PreferencesUnsubscribed",
            "PreferencesUnsubscribedData",
            "PushSubscription",
            "QuietHours",
            "ReportSource",
            "ServiceStateLost",
            "ServiceStateLostData",
            "StrictModel",
            "SuppressionReason",
            "TimeWindow",
            "TimesPerWeekCadence",
            "Weekday",
            "WeeklyCadence",
            "build_couple_erased",
            "build_event",
            "build_idea_added",
            "build_idea_removed",
            "build_preferences_paused",
            "build_preferences_resubscribed",
            "build_preferences_resumed",
            "build_preferences_set",
            "build_preferences_unsubscribed",
            "json_schemas",
            "parse_due",
            "parse_outcome",
            "parse_outcomes_entry",
            "parse_preference",
            "preferences_stream",
            "publish",
            "publish_async",
            "safe_reason",
        ]

    def test_every_exported_name_exists(self) -> None:
        """Each name in __all__ is importable from schemas."""
        missing = [name for name in schemas.__all__ if not hasattr(schemas, name)]
        assert missing == []

    def test_public_members_are_all_exported(self) -> None:
        """Nothing public is reachable from schemas without being listed in __all__."""
        public = {
            name
            for name, value in vars(schemas).items()
            if not name.startswith("_")
            and getattr(value, "__module__", "").startswith("couples_nudge_schemas")
        }
        assert public - set(schemas.__all__) == set()


class TestParsePreference:
    def test_full_set_event(self) -> None:
        """A valid preferences.set.v1 parses into typed, timezone-aware values."""
        event = parse_preference(raw(set_event()))
        assert isinstance(event, PreferencesSet)
        assert event.event_id == uuid.UUID(EVENT_ID)
        assert event.occurred_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
        data = event.data
        assert (data.couple_id, data.revision, data.discreet) == ("c-42", 3, True)
        assert [p.partner_id for p in data.partners] == ["maya", "sam"]
        assert data.partners[0].locale == "en"
        assert data.partners[1].quiet_hours is not None
        assert data.partners[1].quiet_hours.start == time(22, 0)
        assert data.partners[1].quiet_hours.policy == "drop"
        assert data.focus_areas == ["emotional", "experiential"]

    def test_cadences_are_discriminated_by_repeat(self) -> None:
        """Each nudge's cadence becomes the model named by its `repeat` field."""
        nudges = parsed_set().data.nudges
        assert nudges.date_night is not None
        assert nudges.check_in is not None
        assert nudges.appreciation is not None
        assert nudges.date_night.cadence == WeeklyCadence(
            repeat="weekly",
            weekday="fri",
            at=time(19, 0),
            every_weeks=2,
            anchor=date(2026, 1, 9),
        )
        assert isinstance(nudges.check_in.cadence, MonthlyCadence)
        assert isinstance(nudges.appreciation.cadence, TimesPerWeekCadence)

    def test_plan_defaults(self) -> None:
        """A plan without recipients/timing goes to both partners at each one's own local time."""
        appreciation = parsed_set().data.nudges.appreciation
        assert appreciation is not None
        assert (appreciation.recipients, appreciation.timing) == ("both", "own_local")
        assert (appreciation.partner_id, appreciation.timezone_of) == (None, None)

    def test_str_and_bytes_are_equivalent(self) -> None:
        """The same JSON as text or bytes parses to the same event."""
        assert parse_preference(json.dumps(set_event())) == parse_preference(raw(set_event()))

    def test_raw_cron_cadence(self) -> None:
        """A five-field cron expression is accepted as a power-user cadence."""
        event = with_value(
            set_event(),
            ("data", "nudges", "check_in", "cadence"),
            {"repeat": "cron", "cron": "0 20 * * 0#1"},
        )
        parsed = parse_preference(raw(event))
        assert isinstance(parsed, PreferencesSet)
        assert parsed.data.nudges.check_in is not None
        assert parsed.data.nudges.check_in.cadence == CronCadence(
            repeat="cron", cron="0 20 * * 0#1"
        )

    @pytest.mark.parametrize(
        ("type_", "data", "expected"),
        [
            ("preferences.paused.v1", {"couple_id": "c-42"}, PreferencesPaused),
            (
                "preferences.paused.v1",
                {"couple_id": "c-42", "partner_id": "sam", "until": "2026-04-01T00:00:00+02:00"},
                PreferencesPaused,
            ),
            ("preferences.resumed.v1", {"couple_id": "c-42"}, PreferencesResumed),
            (
                "preferences.unsubscribed.v1",
                {"couple_id": "c-42", "partner_id": "sam", "kind": "check_in", "channel": "push"},
                PreferencesUnsubscribed,
            ),
            ("couple.erased.v1", {"couple_id": "c-42"}, CoupleErased),
        ],
    )
    def test_other_preference_events(self, type_: str, data: Json, expected: type) -> None:
        """Each preference event type parses into its own model."""
        assert type(parse_preference(raw(envelope(type_, data)))) is expected

    def test_pause_until_keeps_its_instant(self) -> None:
        """A pause `until` with an offset is the same instant in UTC."""
        event = parse_preference(
            raw(
                envelope(
                    "preferences.paused.v1",
                    {"couple_id": "c-42", "until": "2026-04-01T00:00:00+02:00"},
                )
            )
        )
        assert isinstance(event, PreferencesPaused)
        assert event.data.until == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)

    def test_unsubscribe_defaults_to_everything(self) -> None:
        """An unsubscribe naming no kind or channel covers all kinds on all channels."""
        event = parse_preference(
            raw(envelope("preferences.unsubscribed.v1", {"couple_id": "c-42", "partner_id": "sam"}))
        )
        assert isinstance(event, PreferencesUnsubscribed)
        assert (event.data.kind, event.data.channel) == ("all", "all")

    def test_events_are_immutable(self) -> None:
        """A parsed event cannot be modified in place."""
        event = parse_preference(raw(set_event()))
        with pytest.raises(ValueError, match="frozen"):
            event.producer = "someone-else"  # type: ignore[misc]


D = "preferences.set.v1.data"
P0 = f"{D}.partners.0"


class TestRejections:
    @pytest.mark.parametrize(
        ("path", "value", "expected"),
        [
            (("surprise",), 1, "preferences.set.v1.surprise: Extra inputs are not permitted"),
            (
                ("data", "partners", 0, "nickname"),
                "M",
                f"{P0}.nickname: Extra inputs are not permitted",
            ),
            (("data", "revision"), "3", f"{D}.revision: Input should be a valid integer"),
            (("data", "revision"), True, f"{D}.revision: Input should be a valid integer"),
            (("data", "revision"), -1, f"{D}.revision: Input should be greater than or equal to 0"),
            (("data", "discreet"), "yes", f"{D}.discreet: Input should be a valid boolean"),
            (
                ("occurred_at",),
                "2026-03-01T10:00:00",
                "preferences.set.v1.occurred_at: Value error, must be an ISO 8601 date and time "
                "with a UTC offset",
            ),
            (
                ("event_id",),
                "not-a-uuid",
                "preferences.set.v1.event_id: Value error, must be a UUID as 8-4-4-4-12 hex digits",
            ),
            (
                ("data", "partners", 0, "timezone"),
                "Europe/Atlantis",
                f"{P0}.timezone: Value error, unknown IANA time zone",
            ),
            (
                ("data", "partners", 0, "timezone"),
                "CET+1",
                f"{P0}.timezone: Value error, not a canonical IANA time zone name",
            ),
            (
                ("data", "partners", 0, "name"),
                "M" * 41,
                f"{P0}.name: String should have at most 40 characters",
            ),
            (("data", "partners", 0, "name"), "", f"{P0}.name: String should have at least 1"),
            (
                ("data", "partners", 0, "name"),
                " Maya",
                f"{P0}.name: Value error, control, invisible and line-separator characters, and "
                "leading or trailing whitespace, are not allowed",
            ),
            (
                ("data", "partners", 0, "name"),
                "Maya\nBcc: x@evil.example",
                f"{P0}.name: Value error, control, invisible and line-separator characters",
            ),
            (("data", "couple_id"), "c{s07}", f"{D}.couple_id: String should match pattern"),
            (("data", "couple_id"), "c:42", f"{D}.couple_id: String should match pattern"),
            (("data", "partners", 0, "locale"), "english", f"{P0}.locale: String should match"),
            (("producer",), "couples app", "preferences.set.v1.producer: String should match"),
            (
                ("data", "nudges", "check_in", "cadence"),
                {"repeat": "cron", "cron": "61 * * * *"},
                f"{D}.nudges.check_in.cadence.cron: Value error, not a valid five-field cron "
                "expression",
            ),
            (
                ("data", "nudges", "check_in", "cadence"),
                {"repeat": "cron", "cron": "0 0 * * * *"},
                f"{D}.nudges.check_in.cadence.cron: Value error, not a valid five-field cron",
            ),
            (
                ("data", "nudges", "check_in", "cadence"),
                {"repeat": "cron", "cron": "@daily"},
                f"{D}.nudges.check_in.cadence.cron: Value error, not a valid five-field cron",
            ),
            (
                ("data", "nudges", "check_in", "cadence"),
                {"repeat": "hourly", "at": "20:00"},
                f"{D}.nudges.check_in.cadence: 'repeat' does not match any of the expected "
                "tags: 'weekly', 'monthly', 'times_per_week', 'cron', 'daily'",
            ),
            (
                ("data", "nudges", "check_in", "cadence"),
                {"repeat": "monthly", "at": "20:00", "day": 29},
                f"{D}.nudges.check_in.cadence.monthly.day: Input should be less than or equal "
                "to 28",
            ),
            (
                ("data", "nudges", "check_in", "cadence"),
                {"repeat": "monthly", "at": "20:00", "day": 1, "weekday": "sun", "nth": 1},
                f"{D}.nudges.check_in.cadence.monthly: Value error, give either weekday and nth, "
                "or day",
            ),
            (
                ("data", "nudges", "check_in", "cadence"),
                {"repeat": "monthly", "at": "20:00", "weekday": "sun"},
                f"{D}.nudges.check_in.cadence.monthly: Value error, give either weekday and nth",
            ),
            (
                ("data", "nudges", "date_night", "cadence", "anchor"),
                None,
                f"{D}.nudges.date_night.cadence.weekly: Value error, every_weeks > 1 needs an "
                "anchor date",
            ),
            (
                ("data", "nudges", "date_night", "cadence", "every_weeks"),
                5,
                f"{D}.nudges.date_night.cadence.weekly.every_weeks: Input should be less than or "
                "equal to 4",
            ),
            (
                ("data", "nudges", "date_night", "cadence", "at"),
                "19:00:30",
                f"{D}.nudges.date_night.cadence.weekly.at: Value error, must be a local time as "
                "HH:MM, minute precision",
            ),
            (
                ("data", "nudges", "date_night", "cadence", "at"),
                "19:00+02:00",
                f"{D}.nudges.date_night.cadence.weekly.at: Value error, must be a local time as "
                "HH:MM, minute precision (no UTC offset",
            ),
            (
                ("data", "nudges", "appreciation", "cadence", "between"),
                {"start": "20:00", "end": "12:00"},
                f"{D}.nudges.appreciation.cadence.times_per_week.between: Value error, window end "
                "must be after its start on the same day",
            ),
            (
                ("data", "nudges", "appreciation", "cadence", "times"),
                8,
                f"{D}.nudges.appreciation.cadence.times_per_week.times: Input should be less than "
                "or equal to 7",
            ),
            (
                ("data", "partners", 1, "quiet_hours"),
                {"start": "22:00", "end": "22:00"},
                f"{D}.partners.1.quiet_hours: Value error, quiet hours start and end must differ",
            ),
            (
                ("data", "partners", 1, "quiet_hours", "policy"),
                "snooze",
                f"{D}.partners.1.quiet_hours.policy: Input should be 'defer' or 'drop'",
            ),
            (
                ("data", "partners", 0, "channels"),
                ["email", "push"],
                f"{P0}: Value error, channel 'push' needs a push subscription",
            ),
            (
                ("data", "partners", 0, "channels"),
                ["email", "email"],
                f"{P0}.channels: Value error, channels must not repeat",
            ),
            (
                ("data", "partners", 0, "channels"),
                [],
                f"{P0}.channels: List should have at least 1",
            ),
            (
                ("data", "partners", 0, "love_languages"),
                ["gifts"],
                f"{P0}.love_languages.0: Input should be 'words_of_affirmation'",
            ),
            (
                ("data", "partners", 1, "partner_id"),
                "maya",
                f"{D}: Value error, the two partners need distinct partner_id values",
            ),
            (
                ("data", "partners"),
                [partner("maya", "Europe/Berlin")],
                f"{D}.partners.1: Field required",
            ),
            (
                ("data", "nudges", "date_night", "timezone_of"),
                "alex",
                f"{D}: Value error, nudges.date_night names unknown partner 'alex'",
            ),
            (
                ("data", "nudges", "check_in", "recipients"),
                "one",
                f"{D}.nudges.check_in: Value error, recipients 'one' needs partner_id (and only "
                "it does)",
            ),
            (
                ("data", "nudges", "check_in", "partner_id"),
                "maya",
                f"{D}.nudges.check_in: Value error, recipients 'one' needs partner_id",
            ),
            (
                ("data", "partners", 1, "push", "endpoint"),
                "http://push.example.org/abc",
                f"{D}.partners.1.push.endpoint: Value error, must be an https:// URL",
            ),
            (("data", "focus_areas"), ["romance"], f"{D}.focus_areas.0: Input should be"),
            (
                ("type",),
                "preferences.deleted.v1",
                "event: 'type' does not match any of the expected tags: 'preferences.set.v1',",
            ),
        ],
    )
    def test_invalid_field(self, path: Path_, value: Any, expected: str) -> None:
        """A wrong field is rejected with its dotted location and a clear message."""
        assert reason_of(raw(with_value(set_event(), path, value))).startswith(expected)

    @pytest.mark.parametrize(
        ("path", "expected"),
        [
            (("type",), "event: Unable to extract tag using discriminator 'type'"),
            (("event_id",), "preferences.set.v1.event_id: Field required"),
            (("data", "partners", 0, "timezone"), f"{P0}.timezone: Field required"),
            (
                ("data", "partners", 0, "email"),
                f"{P0}: Value error, channel 'email' needs an email address",
            ),
        ],
    )
    def test_missing_field(self, path: Path_, expected: str) -> None:
        """A missing required field is named in the reason."""
        assert reason_of(raw(without(set_event(), path))).startswith(expected)

    @pytest.mark.parametrize(
        "email",
        ["maya", "maya@example", "maya@@example.org", "Maya <maya@example.org>", "a b@c.de"],
    )
    def test_bad_email_is_not_echoed(self, email: str) -> None:
        """A malformed address is rejected without repeating it in the reason."""
        reason = reason_of(raw(with_value(set_event(), ("data", "partners", 0, "email"), email)))
        assert reason.startswith(f"{P0}.email: Value error, not an email address")
        assert email not in reason

    @pytest.mark.parametrize("text", [b"", b"{", b"not json", b"\xff\xfe", b"[1, 2"])
    def test_not_json(self, text: bytes) -> None:
        """Bytes that are not JSON are rejected as such."""
        assert reason_of(text) == "event: not valid JSON"

    @pytest.mark.parametrize("text", [b"[]", b"42", b'"preferences.set.v1"', b"null"])
    def test_not_an_object(self, text: bytes) -> None:
        """JSON that is not an object is rejected at the top level."""
        assert reason_of(text).startswith("event: ")

    def test_oversized_bytes(self) -> None:
        """A message over MAX_EVENT_BYTES is rejected by size before it is parsed."""
        text = b" " * (MAX_EVENT_BYTES + 1)
        assert reason_of(text) == f"event is {MAX_EVENT_BYTES + 1} bytes; the limit is 65536"

    def test_limit_is_64_kib(self) -> None:
        """The size limit is 64 KiB, and a message of exactly that size is parsed."""
        assert MAX_EVENT_BYTES == 65536
        padded = raw(set_event()).ljust(MAX_EVENT_BYTES)
        assert isinstance(parse_preference(padded), PreferencesSet)

    def test_oversized_text_is_measured_in_utf8_bytes(self) -> None:
        """A str message is measured in encoded bytes, not characters, against the limit."""
        event = with_value(set_event(), ("data", "partners", 0, "name"), "é" * 40_000)
        text = json.dumps(event, ensure_ascii=False)
        size = len(text.encode())
        assert len(text) <= MAX_EVENT_BYTES < size
        assert reason_of(text) == f"event is {size} bytes; the limit is {MAX_EVENT_BYTES}"

    def test_many_problems_are_summarised(self) -> None:
        """The first problems that fit in REASON_LIMIT are listed; the rest are counted."""
        data: Json = {"couple_id": "c-42"} | {f"x{i}": i for i in range(10)}
        reason = reason_of(raw(envelope("couple.erased.v1", data)))
        parts = reason.split("; ")
        assert len(reason) <= REASON_LIMIT
        assert parts[0] == "couple.erased.v1.data.x0: Extra inputs are not permitted"
        shown = len(parts)
        assert reason.endswith(
            f"couple.erased.v1.data.x{shown - 1}: Extra inputs are not permitted "
            f"(+{10 - shown} more)"
        )

    def test_rejected_is_a_value_error(self) -> None:
        """EventRejected is a ValueError whose message is its reason."""
        with pytest.raises(ValueError, match=r"^event: not valid JSON$") as caught:
            parse_preference(b"{")
        assert isinstance(caught.value, EventRejected)
        assert str(caught.value) == caught.value.reason


class TestParseDue:
    def test_valid(self) -> None:
        """A NudgeDue parses with its ids, recipients, turn and an aware instant."""
        due = parse_due(raw(due_event()))
        assert isinstance(due, NudgeDue)
        assert due.data.recipients == ["maya"]
        assert due.data.turn == "maya"
        assert due.data.scheduled_at == datetime(2026, 12, 6, 19, 0, tzinfo=UTC)
        assert due.data.note is None

    @pytest.mark.parametrize(
        ("field", "value", "expected"),
        [
            ("recipients", [], "data.recipients: List should have at least 1 item"),
            (
                "recipients",
                ["a", "b", "c"],
                "data.recipients: List should have at most 2 items",
            ),
            ("sequence", -1, "data.sequence: Input should be greater than or equal"),
            ("kind", "hug", "data.kind: Input should be 'date_night'"),
            ("occurrence_id", "c 42@1", "data.occurrence_id: String should match"),
            ("note", "n" * 41, "data.note: String should have at most 40 characters"),
            ("scheduled_at", "2026-12-06T19:00:00", "data.scheduled_at: Value error, must be an"),
            ("partner_name", "Maya", "data.partner_name: Extra inputs are not"),
        ],
    )
    def test_rejects(self, field: str, value: Any, expected: str) -> None:
        """Bad NudgeDue fields are rejected, including any attempt to carry personal data."""
        with pytest.raises(EventRejected) as caught:
            parse_due(raw(with_value(due_event(), ("data", field), value)))
        assert caught.value.reason.startswith(expected)

    def test_rejects_other_event_types(self) -> None:
        """A preference event on the due stream is not a NudgeDue."""
        with pytest.raises(EventRejected) as caught:
            parse_due(raw(set_event()))
        assert caught.value.reason.startswith("type: Input should be 'nudge.due.v1'")


class TestParseOutcome:
    @pytest.mark.parametrize(
        ("type_", "data", "expected"),
        [
            (
                "nudge.sent.v1",
                outcome_data(partner_id="maya", channel="email", content_id="ap-little-note"),
                NudgeSent,
            ),
            ("nudge.suppressed.v1", outcome_data(reason="missed"), NudgeSuppressed),
            (
                "nudge.failed.v1",
                outcome_data(partner_id="sam", channel="push", error="Gone 410", permanent=True),
                NudgeFailed,
            ),
        ],
    )
    def test_each_outcome(self, type_: str, data: Json, expected: type) -> None:
        """Each outcome type parses into its own model."""
        assert type(parse_outcome(raw(envelope(type_, data)))) is expected

    def test_sent_attempt_defaults_to_one(self) -> None:
        """A sent outcome without an attempt count was the first attempt."""
        event = parse_outcome(
            raw(
                envelope(
                    "nudge.sent.v1",
                    outcome_data(partner_id="maya", channel="email", content_id="x"),
                )
            )
        )
        assert isinstance(event, NudgeSent)
        assert event.data.attempt == 1

    @pytest.mark.parametrize(
        ("type_", "data", "expected"),
        [
            (
                "nudge.suppressed.v1",
                outcome_data(reason="bored"),
                "nudge.suppressed.v1.data.reason: Input should be 'paused'",
            ),
            (
                "nudge.failed.v1",
                outcome_data(partner_id="sam", channel="sms", error="x", permanent=False),
                "nudge.failed.v1.data.channel: Input should be 'email', 'push', 'webhook' or "
                "'mobile'",
            ),
            (
                "nudge.sent.v1",
                outcome_data(partner_id="maya", channel="email", content_id="x", attempt=0),
                "nudge.sent.v1.data.attempt: Input should be greater than or equal to 1",
            ),
            (
                "nudge.due.v1",
                outcome_data(),
                "event: 'type' does not match any of the expected tags: 'nudge.sent.v1'",
            ),
        ],
    )
    def test_rejects(self, type_: str, data: Json, expected: str) -> None:
        """Unknown reasons, channels, attempt counts and event types are rejected."""
        with pytest.raises(EventRejected) as caught:
            parse_outcome(raw(envelope(type_, data)))
        assert caught.value.reason.startswith(expected)


STATE_LOST = {
    "detected_at": "2026-12-06T19:00:03Z",
    "detected_by": "scheduler-host-12",
    "lost_epoch_began_at": "2026-12-01T08:00:00Z",
}


class TestParseOutcomesEntry:
    def test_state_lost_notice(self) -> None:
        """service.state_lost.v1 is an entry of the outcomes stream, with when and by whom."""
        event = parse_outcomes_entry(raw(envelope("service.state_lost.v1", STATE_LOST)))
        assert isinstance(event, ServiceStateLost)
        assert event.data.detected_by == "scheduler-host-12"
        assert event.data.lost_epoch_began_at == datetime(2026, 12, 1, 8, tzinfo=UTC)

    def test_nudge_outcomes_too(self) -> None:
        """The stream's parser reads the nudge outcomes as parse_outcome does."""
        data = outcome_data(reason="state_lost")
        assert type(parse_outcomes_entry(raw(envelope("nudge.suppressed.v1", data)))) is (
            NudgeSuppressed
        )

    def test_parse_outcome_refuses_the_notice(self) -> None:
        """parse_outcome is for nudges' outcomes only: a service notice is not one."""
        with pytest.raises(EventRejected):
            parse_outcome(raw(envelope("service.state_lost.v1", STATE_LOST)))

    def test_naive_detection_time_is_rejected(self) -> None:
        """detected_at needs a UTC offset, like every instant in every event."""
        data = {**STATE_LOST, "detected_at": "2026-12-06T19:00:03"}
        with pytest.raises(EventRejected) as caught:
            parse_outcomes_entry(raw(envelope("service.state_lost.v1", data)))
        assert "detected_at" in caught.value.reason

    def test_the_json_schema_describes_the_notice(self) -> None:
        """Apps in other languages find service.state_lost.v1 in outcome-event.schema.json."""
        assert "service.state_lost.v1" in json.dumps(json_schemas()["outcome-event"])


def _objects(node: Any) -> list[Json]:
    """Every JSON Schema object definition (with `properties`) anywhere under ``node``; the
    conditions of `if`/`then` (which name properties of the object around them) are not."""
    found: list[Json] = []
    if isinstance(node, dict):
        if "properties" in node and node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found += _objects(value)
    elif isinstance(node, list):
        for value in node:
            found += _objects(value)
    return found


class TestJsonSchemas:
    def test_one_schema_per_stream(self) -> None:
        """There is a schema for preference events (and their CloudEvents form), NudgeDue and
        outcome events."""
        assert set(json_schemas()) == {
            "preference-event",
            "preference-cloudevent",
            "nudge-due",
            "outcome-event",
        }

    @pytest.mark.parametrize(
        ("stem", "types"),
        [
            (
                "preference-event",
                {
                    "preferences.set.v1",
                    "preferences.paused.v1",
                    "preferences.resumed.v1",
                    "preferences.unsubscribed.v1",
                    "couple.erased.v1",
                    "preferences.resubscribed.v1",
                    "channel.bounced.v1",
                    "channel.complained.v1",
                    "datejar.idea_added.v1",
                    "datejar.idea_removed.v1",
                    "preferences.snoozed.v1",
                    "nudge.feedback.v1",
                },
            ),
            (
                "outcome-event",
                {
                    "nudge.sent.v1",
                    "nudge.suppressed.v1",
                    "nudge.failed.v1",
                    "service.state_lost.v1",
                    "nudge.bounced.v1",
                    "nudge.complained.v1",
                    "nudge.engaged.v1",
                    "cadence.adjusted.v1",
                },
            ),
        ],
    )
    def test_unions_are_discriminated_by_type(self, stem: str, types: set[str]) -> None:
        """A union schema maps every event type to its model through the `type` discriminator."""
        schema = json_schemas()[stem]
        assert schema["discriminator"]["propertyName"] == "type"
        assert set(schema["discriminator"]["mapping"]) == types

    def test_nudge_due_requires_its_envelope(self) -> None:
        """NudgeDue's schema requires the envelope fields and data."""
        schema = json_schemas()["nudge-due"]
        assert {"type", "event_id", "occurred_at", "producer", "data"} <= set(schema["required"])
        assert schema["properties"]["type"]["const"] == "nudge.due.v1"

    @pytest.mark.parametrize("stem", ["preference-event", "nudge-due", "outcome-event"])
    def test_objects_are_closed(self, stem: str) -> None:
        """Every object in every schema forbids additional properties, as the models do."""
        objects = _objects(json_schemas()[stem])
        assert objects
        assert all(obj.get("additionalProperties") is False for obj in objects)

    @pytest.mark.parametrize("stem", ["preference-event", "nudge-due", "outcome-event"])
    def test_serialisable(self, stem: str) -> None:
        """Each schema is plain JSON, as other languages need it."""
        schema = json_schemas()[stem]
        assert json.loads(json.dumps(schema)) == schema

    def test_exported_files_are_current(self) -> None:
        """The JSON Schema files in schemas/json equal what the code generates (`make schema`)."""
        folder = Path(schemas.__file__).parent / "json"
        on_disk = {
            path.name.removesuffix(".schema.json"): json.loads(path.read_text("utf-8"))
            for path in sorted(folder.glob("*.schema.json"))
        }
        assert on_disk == json_schemas()


class TestCoupleContext:
    def test_context_and_format_parse(self) -> None:
        """A couple's context and an explicit check-in format parse into typed values."""
        event = with_value(
            set_event(),
            ("data", "context"),
            {"living": "apart", "budget": "low", "avoid": ["mobility"], "children_at_home": True},
        )
        event = with_value(event, ("data", "nudges", "check_in", "format"), "question")
        data = parsed_set_of(event)
        assert data.context is not None
        assert (data.context.living, data.context.budget) == ("apart", "low")
        assert (data.context.avoid, data.context.children_at_home) == (["mobility"], True)
        assert data.nudges.check_in is not None
        assert data.nudges.check_in.format == "question"

    def test_everything_is_optional(self) -> None:
        """An empty context and no context both parse: unknown rules nothing out."""
        assert parsed_set_of(with_value(set_event(), ("data", "context"), {})).context is not None
        assert parsed_set().data.context is None

    @pytest.mark.parametrize(
        ("path", "value", "expected"),
        [
            (("data", "context"), {"pets": True}, f"{D}.context.pets: Extra inputs"),
            (("data", "context"), {"living": "nearby"}, f"{D}.context.living: Input should be"),
            (("data", "context"), {"budget": 20}, f"{D}.context.budget: Input should be"),
            (("data", "context"), {"avoid": ["stairs"]}, f"{D}.context.avoid.0: Input should be"),
            (
                ("data", "context"),
                {"avoid": ["mobility", "mobility"]},
                f"{D}.context.avoid: ",
            ),
            (
                ("data", "context"),
                {"children_at_home": "yes"},
                f"{D}.context.children_at_home: Input should be a valid boolean",
            ),
            (
                ("data", "nudges", "date_night", "format"),
                "question",
                f"{D}: Value error, nudges.date_night.format is for check-ins only",
            ),
            (
                ("data", "nudges", "check_in", "format"),
                "essay",
                f"{D}.nudges.check_in.format: Input should be",
            ),
        ],
    )
    def test_rejected(self, path: Path_, value: Any, expected: str) -> None:
        """Unknown keys, values and a format on another kind are refused with a bounded reason."""
        reason = reason_of(raw(with_value(set_event(), path, value)))
        assert reason.startswith(expected)
        assert len(reason) < 400


def parsed_set_of(event: Json) -> PreferencesSetData:
    parsed = parse_preference(raw(event))
    assert isinstance(parsed, PreferencesSet)
    return parsed.data
