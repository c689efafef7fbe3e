"""The couple hash: what the scheduler writes and the notifier reads at send time. Pure codec.

Fields of nudges:couple:{sNN}:<couple>, each value short (at most 64 bytes for typical data),
so that Redis keeps the hash in its compact listpack encoding with default settings
(`hash-max-listpack-value 64`, `hash-max-listpack-entries` 128 or more):

    rev                      revision of the last applied preferences.set
    id                       the couple id
    s0, s1                   partner 0/1 as the scheduler needs it (no personal data):
                             "<partner id>|<zone>" or "<partner id>|<zone>|<HH:MM>-<HH:MM><d|x>"
                             with quiet hours (d: defer, x: drop)
    n0, n1                   partner 0/1's name
    c0, c1                   "<locale>|<channel codes>|<love language codes>|<email or empty>"
    w0, w1                   partner 0/1's push subscription JSON, only when there is one
    f                        "<focus area codes>|<1 if discreet>", only when not the defaults
    <kind code>/<target>     a schedule record (services/scheduler/records.py): the schedule
                             "<couple>/<kind code>/<target>"; these fields are its "sids"
    pause                    "<occurred_ms>|<until_ms|inf|off>", last writer wins
    pause:<partner>          the same for one partner
    unsub:<partner>:<kind>:<channel>   occurred_ms; kind, channel may be "all"
    dead:<partner>:<channel> occurred_ms; a channel that answered "gone" (bad address, 410)

The layout before issue 7 kept the profile as PreferencesSetData JSON in "profile" and the
schedule ids in "sids"; such a hash still parses (the next preferences.set rewrites it).
`parse_couple` gives the notifier the same view of both: `profile` and `fields["sids"]`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from functools import lru_cache
from typing import Any, Final, Literal

from schemas import PreferencesSetData, PushSubscription, QuietHours

__all__ = [
    "PROFILE_FIELDS",
    "CoupleState",
    "encode_profile",
    "parse_couple",
    "pause_value",
    "quiet_text",
    "split_partner_field",
]

OFF: Final = "off"
FOREVER: Final = "inf"

PROFILE_FIELDS: Final = frozenset({"id", "s0", "s1", "n0", "n1", "c0", "c1", "w0", "w1", "f"})
_ORDER: Final = ("rev", "id", "s0", "s1", "n0", "n1", "c0", "c1", "w0", "w1", "f")

_CHANNELS: Final = {"email": "e", "push": "p", "webhook": "w"}
_LOVE: Final = {
    "words_of_affirmation": "w",
    "acts_of_service": "a",
    "receiving_gifts": "g",
    "quality_time": "q",
    "physical_touch": "t",
}
_FOCUS: Final = {
    "emotional": "e",
    "physical": "p",
    "intellectual": "i",
    "experiential": "x",
    "spiritual": "s",
    "conflict": "c",
}
_POLICY: Final = {"defer": "d", "drop": "x"}
_DECODE: Final = {
    "channels": {v: k for k, v in _CHANNELS.items()},
    "love": {v: k for k, v in _LOVE.items()},
    "focus": {v: k for k, v in _FOCUS.items()},
    "policy": {v: k for k, v in _POLICY.items()},
}
_DEFAULT_LOCALE: Final = "en"


def pause_value(occurred_ms: int, until_ms: int | None, *, resume: bool = False) -> str:
    state = OFF if resume else (FOREVER if until_ms is None else str(until_ms))
    return f"{occurred_ms}|{state}"


def quiet_text(quiet: QuietHours) -> str:
    """ "22:00-07:00d": start, end and policy (d defer, x drop) of a partner's quiet hours."""
    return f"{quiet.start:%H:%M}-{quiet.end:%H:%M}{_POLICY[quiet.policy]}"


def parse_quiet(text: str) -> tuple[time, time, Literal["defer", "drop"]]:
    policy: Literal["defer", "drop"] = "drop" if text[-1] == "x" else "defer"
    return time.fromisoformat(text[:5]), time.fromisoformat(text[6:11]), policy


def split_partner_field(text: str) -> tuple[str, str, str]:
    """(partner id, zone, quiet text or "") of an "s0"/"s1" value."""
    partner_id, zone, *quiet = text.split("|")
    return partner_id, zone, quiet[0] if quiet else ""


def encode_profile(data: PreferencesSetData) -> dict[str, str]:
    """The couple hash fields that hold the profile (everything but the nudge plans)."""
    fields = {"id": data.couple_id}
    for i, p in enumerate(data.partners):
        quiet = f"|{quiet_text(p.quiet_hours)}" if p.quiet_hours else ""
        fields[f"s{i}"] = f"{p.partner_id}|{p.timezone}{quiet}"
        fields[f"n{i}"] = p.name
        channels = "".join(_CHANNELS[c] for c in p.channels)
        love = "".join(_LOVE[x] for x in p.love_languages)
        locale = "" if p.locale == _DEFAULT_LOCALE else p.locale
        fields[f"c{i}"] = f"{locale}|{channels}|{love}|{p.email or ''}"
        if p.push is not None:
            fields[f"w{i}"] = p.push.model_dump_json()
    if data.focus_areas or data.discreet:
        focus = "".join(_FOCUS[a] for a in data.focus_areas)
        fields["f"] = f"{focus}|{'1' if data.discreet else ''}"
    return fields


def _partner(s: bytes, n: bytes, c: bytes, w: bytes | None) -> dict[str, Any]:
    partner_id, zone, quiet = split_partner_field(s.decode())
    locale, channels, love, email = c.decode().split("|", 3)
    partner: dict[str, Any] = {
        "partner_id": partner_id,
        "name": n.decode(),
        "timezone": zone,
        "locale": locale or _DEFAULT_LOCALE,
        "channels": [_DECODE["channels"][x] for x in channels],
        "love_languages": [_DECODE["love"][x] for x in love],
    }
    if email:
        partner["email"] = email
    if quiet:
        start, end, policy = parse_quiet(quiet)
        partner["quiet_hours"] = QuietHours(start=start, end=end, policy=policy)
    if w is not None:
        partner["push"] = PushSubscription.model_validate_json(w)
    return partner


@lru_cache(maxsize=4096)
def _profile(values: tuple[bytes | None, ...]) -> PreferencesSetData | None:
    """The profile of a couple hash's profile fields (in _ORDER); cached by their bytes."""
    rev, couple_id, s0, s1, n0, n1, c0, c1, w0, w1, f = values
    if rev is None or couple_id is None:
        return None
    if s0 is None or s1 is None or n0 is None or n1 is None or c0 is None or c1 is None:
        return None
    focus, _, discreet = (f or b"|").decode().partition("|")
    data: dict[str, Any] = {
        "couple_id": couple_id.decode(),
        "revision": int(rev),
        "partners": (_partner(s0, n0, c0, w0), _partner(s1, n1, c1, w1)),
        "nudges": {},
        "focus_areas": [_DECODE["focus"][x] for x in focus],
        "discreet": discreet == "1",
    }
    return PreferencesSetData.model_validate(data)


def _paused(raw: str | None, now_ms: int) -> bool:
    if not raw:
        return False
    _, _, state = raw.partition("|")
    if state == OFF:
        return False
    return state == FOREVER or now_ms < int(state)


@dataclass(frozen=True, slots=True)
class CoupleState:
    profile: PreferencesSetData | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.profile is not None

    def paused(self, partner_id: str, now_ms: int) -> bool:
        return _paused(self.fields.get("pause"), now_ms) or _paused(
            self.fields.get(f"pause:{partner_id}"), now_ms
        )

    def unsubscribed(self, partner_id: str, kind: str, channel: str) -> bool:
        return any(
            f"unsub:{partner_id}:{k}:{c}" in self.fields
            for k in (kind, "all")
            for c in (channel, "all")
        )

    def channel_dead(self, partner_id: str, channel: str) -> bool:
        return f"dead:{partner_id}:{channel}" in self.fields


def parse_couple(raw: dict[bytes, bytes]) -> CoupleState:
    fields: dict[str, str] = {}
    stored: dict[str, bytes] = {}
    schedules: list[str] = []
    for k, v in raw.items():
        name = k.decode()
        if name in PROFILE_FIELDS:
            stored[name] = v
        elif "/" in name:
            schedules.append(name)
        else:
            fields[name] = v.decode()
    legacy = fields.pop("profile", None)
    if legacy:
        return CoupleState(PreferencesSetData.model_validate_json(legacy), fields)
    if "id" not in stored:
        return CoupleState(None, fields)
    rev = fields.get("rev")
    profile = _profile((rev.encode() if rev else None, *(stored.get(f) for f in _ORDER[1:])))
    couple_id = stored["id"].decode()
    fields["sids"] = ",".join(f"{couple_id}/{s}" for s in schedules)
    return CoupleState(profile, fields)
