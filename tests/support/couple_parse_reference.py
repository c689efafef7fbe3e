"""parse_couple as it was before issue 20's pass on the notifier's parse (main 11ac29b):
the reference its faster form is held to (tests/property/test_couple_parse.py). Uncached: the
profile is built on every call, as on a cache miss. Not used by the services."""

# ruff: noqa

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

from couples_nudge.common.check_in_format import check_in_format
from couples_nudge.common.couple_state import (
    _AVOID_NAMES,
    _BUDGET_NAMES,
    _CHANNEL_NAMES,
    _DEFAULT_LOCALE,
    _FOCUS_NAMES,
    _FORMAT_NAMES,
    _LIVING_NAMES,
    _LOVE_NAMES,
    _MOBILE,
    _NO_NUDGES,
    _ORDER_KEYS,
    _PROFILE_KEYS,
    _SLASH,
    _W,
    CoupleState,
    parse_quiet,
)
from couples_nudge_schemas import (
    AndroidDevice,
    CoupleContext,
    Device,
    IosDevice,
    Partner,
    PreferencesSetData,
    PushSubscription,
    QuietHours,
)

_new_model = object.__new__
_set = object.__setattr__
_M = TypeVar("_M", bound=BaseModel)


def _context(text: str) -> CoupleContext:
    living, budget, avoid, kids, _ = text.split("|")
    return _trusted(
        CoupleContext,
        {
            "living": _LIVING_NAMES.get(living),
            "budget": _BUDGET_NAMES.get(budget),
            "avoid": [_AVOID_NAMES[a] for a in avoid],
            "children_at_home": None if not kids else kids == "y",
        },
    )


def _devices(text: bytes | None) -> list[Device]:
    if text is None:
        return []
    out: list[Device] = []
    for line in text.decode().split("\n"):
        platform, app_id, token = line.split(" ", 2)
        values = {"token": token, "app_id": None if app_id == "-" else app_id}
        if platform == "i":
            out.append(_trusted(IosDevice, {"platform": "ios", **values}))
        else:
            out.append(_trusted(AndroidDevice, {"platform": "android", **values}))
    return out


def _push(text: bytes) -> PushSubscription:
    endpoint, p256dh, auth = text.decode().rsplit("|", 2)
    return _trusted(PushSubscription, {"endpoint": endpoint, "p256dh": p256dh, "auth": auth})


def _trusted(cls: type[_M], values: dict[str, Any]) -> _M:
    """``cls.model_construct(**values)`` for values of every field, 10x cheaper.

    Only the scheduler writes the profile fields, from a validated preferences.set: validating
    them again on every read would cost more than the rest of a parse. Made by
    `object.__new__`, which is `cls.__new__` for a pydantic model (none defines its own: a
    test pins it), without the read of `cls.__new__` through the model metaclass's
    `__getattr__` hook (~1.5k instructions).
    """
    made = _new_model(cls)  # not `cls.__new__`: see `_trusted`'s docstring
    _set(made, "__dict__", values)
    _set(made, "__pydantic_fields_set__", set(values))
    _set(made, "__pydantic_extra__", None)
    _set(made, "__pydantic_private__", None)
    return made


def _partner(
    s: bytes, q: bytes | None, n: bytes, c: bytes, w: bytes | None, m: bytes | None
) -> Partner:
    """A partner from their fields. The codes are mapped by `map` over a dict's __getitem__,
    not by comprehensions: on 3.11 each comprehension is a frame of its own (~1-2k
    instructions), and a parse made five of them."""
    partner_id, _, zone = s.decode().partition("|")  # _split_partner, without its call
    locale, channels, love, email = c.decode().split("|", 3)
    return _trusted(
        Partner,
        {
            "partner_id": partner_id,
            "name": n.decode(),
            "timezone": zone,
            "locale": locale or _DEFAULT_LOCALE,
            "channels": list(map(_CHANNEL_NAMES.__getitem__, channels)),
            "email": email or None,
            "push": None if w is None else _push(w),
            "devices": _devices(m),
            "love_languages": list(map(_LOVE_NAMES.__getitem__, love)),
            "quiet_hours": None if q is None else _quiet_hours(q.decode()),
        },
    )


def _quiet_hours(text: str) -> QuietHours:
    start, end, policy = parse_quiet(text)
    return _trusted(QuietHours, {"start": start, "end": end, "policy": policy})


def _profile(values: tuple[bytes | None, ...]) -> PreferencesSetData | None:
    """The profile from the couple hash's fields (_ORDER_KEYS, then both partners' push
    subscriptions and device lists joined from their pieces); cached by their bytes."""
    rev, couple_id, s0, s1, q0, q1, n0, n1, c0, c1, f, x, ln, w0, w1, m0, m1 = values
    if rev is None or couple_id is None:
        return None
    if s0 is None or s1 is None or n0 is None or n1 is None or c0 is None or c1 is None:
        return None
    focus, _, discreet = (f or b"|").decode().partition("|")
    return _trusted(
        PreferencesSetData,
        {
            "couple_id": couple_id.decode(),
            "revision": int(rev),
            "partners": (_partner(s0, q0, n0, c0, w0, m0), _partner(s1, q1, n1, c1, w1, m1)),
            "nudges": _NO_NUDGES,
            "focus_areas": list(map(_FOCUS_NAMES.__getitem__, focus)),
            "discreet": discreet == "1",
            "context": None if x is None else _context(x.decode()),
            "listening": ln == b"1",
        },
    )


def reference_parse_couple(raw: dict[bytes, bytes]) -> CoupleState:
    legacy = raw.get(b"profile")
    if legacy:
        fields = {k.decode(): v.decode() for k, v in raw.items() if k != b"profile"}
        profile = PreferencesSetData.model_validate_json(legacy)
        return CoupleState(profile, fields, check_in_format(profile.nudges.check_in))
    fields = {}
    couple_id = raw.get(b"id")
    here = (couple_id or b"") + b"/"  # a schedule id: "<couple>/<kind code>/<target>"
    schedules = []
    records: dict[str, str] = {}
    push: list[tuple[bytes, bytes]] = []
    mobile: list[tuple[bytes, bytes]] = []
    for k, v in raw.items():
        if _SLASH in k:  # a schedule record: "<kind code>/<target>"
            schedules.append(here + k)
            records[k.decode()] = v.decode()
        elif k[0] == _W:  # a piece of a push subscription
            push.append((k, v))
        elif k[0] == _MOBILE and k[2:3] == b".":  # a piece of a partner's device list
            mobile.append((k, v))
        elif k not in _PROFILE_KEYS:
            fields[k.decode()] = v.decode()
    if couple_id is None:
        return CoupleState(None, fields)
    fields["sids"] = b",".join(schedules).decode()
    values = (
        *map(raw.get, _ORDER_KEYS),
        *((_joined(push, b"w0."), _joined(push, b"w1.")) if push else (None, None)),
        *((_joined(mobile, b"m0."), _joined(mobile, b"m1.")) if mobile else (None, None)),
    )
    x = raw.get(b"x")
    fmt = _FORMAT_NAMES.get(x.decode().rpartition("|")[2]) if x else None
    return CoupleState(_profile(values), fields, fmt, records)


def _joined(pieces: list[tuple[bytes, bytes]], prefix: bytes) -> bytes | None:
    mine = sorted(p for p in pieces if p[0].startswith(prefix))
    return b"".join(v for _, v in mine) if mine else None
