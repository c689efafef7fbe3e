"""A partner's app devices: strictly validated (by the models and the exported JSON Schema alike),
stored in the couple hash without loss, and referred to in outcomes by a hash, never the token."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from couples_nudge.common.couple_state import device_ref, encode_profile, parse_couple
from couples_nudge_schemas import MAX_DEVICES, EventRejected, PreferencesSetData, parse_preference
from tests.support.events import example

REPO = Path(__file__).resolve().parents[2]
SCHEMA = Draft202012Validator(
    json.loads((REPO / "schemas/json/preference-event.schema.json").read_text())
)
APNS_TOKEN = "a1" * 32
FCM_TOKEN = "fcm-Token_1:APA91b" + "x" * 140


def event_with(devices: list[Any], channels: list[str] | None = None) -> dict[str, Any]:
    event = copy.deepcopy(example())
    partner = event["data"]["partners"][0]
    partner["channels"] = channels or ["mobile"]
    partner["devices"] = devices
    return event


def refusal(event: dict[str, Any]) -> str | None:
    try:
        parse_preference(json.dumps(event))
    except EventRejected as exc:
        return exc.reason
    return None


class TestDevicesValidated:
    def test_an_android_and_an_iphone_are_accepted(self) -> None:
        """One FCM and one APNs device with app ids pass the model and the JSON Schema."""
        event = event_with(
            [
                {"platform": "android", "token": FCM_TOKEN, "app_id": "org.example.couples"},
                {"platform": "ios", "token": APNS_TOKEN, "app_id": "org.example.Couples"},
            ]
        )
        assert refusal(event) is None
        assert SCHEMA.is_valid(event)

    @pytest.mark.parametrize(
        ("device", "reason"),
        [
            ({"platform": "ios", "token": "a1" * 31}, "an APNs device token is hex"),
            ({"platform": "ios", "token": "zz" * 32}, "an APNs device token is hex"),
            ({"platform": "ios", "token": "a" * 65}, "an APNs device token is hex"),
            ({"platform": "ios", "token": "ab" * 101}, "at most 200 characters"),
            ({"platform": "android", "token": "short"}, "an FCM registration token"),
            ({"platform": "android", "token": "tok en" * 10}, "an FCM registration token"),
            ({"platform": "android", "token": "tok\x00" * 10}, "an FCM registration token"),
            ({"platform": "android", "token": "tök" * 10}, "an FCM registration token"),
            ({"platform": "android", "token": "x" * 4097}, "at most 4096 characters"),
            ({"platform": "android", "token": FCM_TOKEN, "app_id": "nodot"}, "an app id"),
            ({"platform": "android", "token": FCM_TOKEN, "app_id": "a.b c"}, "an app id"),
            ({"platform": "windows", "token": FCM_TOKEN}, "does not match any of the expected"),
            ({"platform": "ios", "token": APNS_TOKEN, "extra": 1}, "Extra inputs"),
        ],
    )
    def test_bad_devices_are_refused(self, device: dict[str, Any], reason: str) -> None:
        """Tokens are checked by platform (APNs: hex; FCM: printable ASCII without spaces),
        app ids are reverse-DNS, nothing unknown passes; the JSON Schema agrees."""
        event = event_with([device])
        assert reason in (refusal(event) or "accepted")
        assert not SCHEMA.is_valid(event)

    def test_at_most_ten_devices(self) -> None:
        """A partner has at most MAX_DEVICES devices."""
        devices = [{"platform": "ios", "token": f"{i:02x}" * 32} for i in range(MAX_DEVICES + 1)]
        assert "at most 10 items" in (refusal(event_with(devices)) or "accepted")
        assert not SCHEMA.is_valid(event_with(devices))
        assert refusal(event_with(devices[:MAX_DEVICES])) is None

    def test_a_token_twice_is_refused(self) -> None:
        """The same APNs token twice (even in another case) would be one device sent twice."""
        twice = [
            {"platform": "ios", "token": APNS_TOKEN},
            {"platform": "ios", "token": APNS_TOKEN.upper()},
        ]
        assert "a device token must not repeat" in (refusal(event_with(twice)) or "accepted")

    def test_mobile_needs_a_device(self) -> None:
        """The 'mobile' channel without devices is refused, as 'push' without a subscription."""
        assert "channel 'mobile' needs at least one device" in (
            refusal(event_with([])) or "accepted"
        )

    def test_the_reason_never_quotes_the_token(self) -> None:
        """A refused token is personal data: the rejection reason does not echo it."""
        secret = "SECRET" + "q" * 40 + " x"
        reason = refusal(event_with([{"platform": "android", "token": secret}])) or ""
        assert reason
        assert "SECRET" not in reason


class TestDevicesStored:
    def test_round_trip_through_the_couple_hash(self) -> None:
        """Devices survive the couple hash in 64-byte pieces, in order, with their app ids."""
        devices = [
            {"platform": "android", "token": "t" * 3000 + ":APA91b", "app_id": "org.example.a"},
            {"platform": "ios", "token": APNS_TOKEN},
            {"platform": "android", "token": FCM_TOKEN},
        ]
        data = PreferencesSetData.model_validate_json(
            json.dumps(event_with(devices, ["mobile", "email"])["data"])
        )
        fields = encode_profile(data)
        assert all(len(v.encode()) <= 64 for k, v in fields.items() if k.startswith("m0."))
        raw = {k.encode(): v.encode() for k, v in (fields | {"rev": "1"}).items()}
        raw[b"dead:maya:mobile:0123456789abcdef"] = b"1"  # a dead mark is not a piece
        couple = parse_couple(raw)
        assert couple.profile is not None
        assert couple.profile.partners[0].devices == data.partners[0].devices
        assert couple.profile.partners[1].devices == []
        assert couple.device_dead("maya", "0123456789abcdef")
        assert not couple.device_dead("sam", "0123456789abcdef")

    def test_ten_devices_of_the_longest_tokens(self) -> None:
        """Ten 4 KiB tokens (hundreds of pieces) come back in order."""
        devices = [{"platform": "android", "token": f"{i}" + "k" * 4095} for i in range(10)]
        data = PreferencesSetData.model_validate_json(json.dumps(event_with(devices)["data"]))
        raw = {k.encode(): v.encode() for k, v in (encode_profile(data) | {"rev": "1"}).items()}
        couple = parse_couple(raw)
        assert couple.profile is not None
        assert couple.profile.partners[0].devices == data.partners[0].devices


class TestDeviceRef:
    def test_is_a_documented_hash_of_the_token(self) -> None:
        """A publisher finds the device of an outcome: sha256(token) as hex, first 16 digits."""
        assert device_ref(FCM_TOKEN) == hashlib.sha256(FCM_TOKEN.encode()).hexdigest()[:16]
        assert device_ref(FCM_TOKEN) != device_ref(APNS_TOKEN)
        assert FCM_TOKEN not in device_ref(FCM_TOKEN)
