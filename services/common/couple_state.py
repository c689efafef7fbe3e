"""The couple hash: what the scheduler writes and the notifier reads at send time. Pure codec.

Fields of nudges:couple:{sNN}:<couple>, each value short (at most 64 bytes for typical data),
so that Redis keeps the hash in its compact listpack encoding with default settings
(`hash-max-listpack-value 64`, `hash-max-listpack-entries` 128 or more):

    rev                      revision of the last applied preferences.set
    id                       the couple id
    s0, s1                   partner 0/1's "<partner id>|<zone>" (the scheduler reads s and q
    q0, q1                   on every fire: no personal data); q: quiet hours
                             "<HH:MM>-<HH:MM><d|x>" (d: defer, x: drop), only when set
    n0, n1                   partner 0/1's name
    c0, c1                   "<locale>|<channel codes>|<love language codes>|<email or empty>"
    w0.00, w0.01, ...        partner 0/1's push subscription "<endpoint>|<p256dh>|<auth>", only
    w1.00, ...               when there is one, in pieces of at most 64 bytes (endpoints are long)
    m0.00, m0.01, ...        partner 0/1's app devices, one "<a|i> <app id or -> <token>" line
    m1.00, ...               each, in pieces of at most 64 bytes, only when there are any
    f                        "<focus area codes>|<1 if discreet>", only when not the defaults
    dn                       where date-night ideas come from: "jar" or "mixed", only when not
                             the catalog (the ideas themselves: the couple's jar hash, keys.py)
    ci                       "daily" when the check-in is the daily question, else absent
    x                        "<living t|a>|<budget f|l|a>|<avoid codes>|<children y|n>|<check-in
                             format m|q>", each part empty when unknown; only when one is set
                             (the check-in format: check_in_format.py, decided when written)
    <kind code>/<target>     a schedule record (services/scheduler/records.py): the schedule
                             "<couple>/<kind code>/<target>"; these fields are its "sids"
    pause                    "<occurred_ms>|<until_ms|inf|off>", last writer wins
    pause:<partner>          the same for one partner
    unsub:<partner>:<kind>:<channel>   "<occurred_ms>|1" (or "|complaint": a spam report);
                             kind, channel may be "all"; "<ms>|0": cleared by a resubscribe
    dead:<partner>:<channel> occurred_ms (and "|hard", "|soft" after bounces); a channel that
                             answered "gone" (bad address, 410) or bounced
    soft:<partner>:<channel> "<count>|<first ms>|<newest ms>": soft bounces counted
                             (scheduler/consent.py)
    dead:<partner>:mobile:<device ref>  the same for one app device (refs: device_ref)
    ln                       "1" when the couple opted in to the listening cadence
    snz:<partner>:<kind>     "<occurred_ms>|<until_ms>": a snooze (preferences.snoozed.v1),
                             last writer wins, kept across preferences.set like unsub
    lvl:<partner>:<kind>     "<level>|<last signal>|<its ms>": the listening cadence's level
                             for that partner and kind (services/common/listening.py), kept
                             likewise
    adj:<partner>:<kind>     "<previous level>|<kept>|<out of>": the last level change's notice
                             until it is published (services/scheduler/feedback.py)

The layout before issue 7 kept the profile as PreferencesSetData JSON in "profile" and the
schedule ids in "sids"; such a hash still parses (the next preferences.set rewrites it).
`parse_couple` gives the notifier the same view of both: `profile` and `fields["sids"]`; the
check-in format is `CoupleState.check_in_format` (None for a hash written before it was kept:
such a couple's check-ins are drawn from both formats until its next preferences.set).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import time
from functools import lru_cache
from typing import Any, Final, Literal, TypeVar, cast

from pydantic import BaseModel, ValidationError

from couples_nudge.common.check_in_format import check_in_format
from couples_nudge_schemas import (
    AndroidDevice,
    Channel,
    CheckInFormat,
    CoupleContext,
    Device,
    FocusArea,
    IosDevice,
    LoveLanguage,
    Nudges,
    Partner,
    PreferencesSetData,
    PushSubscription,
    QuietHours,
)

__all__ = [
    "PROFILE_FIELDS",
    "CoupleState",
    "UnreadableCouple",
    "device_ref",
    "encode_profile",
    "parse_couple",
    "parse_quiet",
    "pause_value",
    "profile_fields",
    "quiet_text",
]

OFF: Final = "off"
FOREVER: Final = "inf"

PROFILE_FIELDS: Final = frozenset(
    {"id", "s0", "s1", "q0", "q1", "n0", "n1", "c0", "c1", "f", "x", "ln"}
)
_ORDER_KEYS: Final = tuple(
    f.encode()
    for f in ("rev", "id", "s0", "s1", "q0", "q1", "n0", "n1", "c0", "c1", "f", "x", "ln")
)
_PROFILE_KEYS: Final = frozenset(f.encode() for f in PROFILE_FIELDS)

_CHANNELS: Final = {"email": "e", "push": "p", "webhook": "w", "mobile": "m"}
_PLATFORMS: Final = {"android": "a", "ios": "i"}
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
_LIVING: Final = {"together": "t", "apart": "a"}
_BUDGET: Final = {"free": "f", "low": "l", "any": "a"}
_AVOID: Final = {"mobility": "m"}
_FORMAT: Final = {"monthly_guide": "m", "question": "q"}
_LIVING_NAMES: Final = {v: k for k, v in _LIVING.items()}
_BUDGET_NAMES: Final = {v: k for k, v in _BUDGET.items()}
_AVOID_NAMES: Final = {v: k for k, v in _AVOID.items()}
_FORMAT_NAMES: Final = cast("dict[str, CheckInFormat]", {v: k for k, v in _FORMAT.items()})
_CHANNEL_NAMES: Final = cast("dict[str, Channel]", {v: k for k, v in _CHANNELS.items()})
_LOVE_NAMES: Final = cast("dict[str, LoveLanguage]", {v: k for k, v in _LOVE.items()})
_FOCUS_NAMES: Final = cast("dict[str, FocusArea]", {v: k for k, v in _FOCUS.items()})
_NO_NUDGES: Final = Nudges()
_NO_CONTEXT: Final = CoupleContext()
_DEFAULT_LOCALE: Final = "en"
_PIECE: Final = 64
_W: Final = ord("w")
_MOBILE: Final = ord("m")
# `b"/" in key` tries the needle as an int first: for bytes that raises a TypeError with a
# formatted message and clears it (~2k instructions a field, 10 fields a couple); an int is
# looked for with memchr at once.
_SLASH: Final = ord("/")


def pause_value(occurred_ms: int, until_ms: int | None, *, resume: bool = False) -> str:
    state = OFF if resume else (FOREVER if until_ms is None else str(until_ms))
    return f"{occurred_ms}|{state}"


def quiet_text(quiet: QuietHours) -> str:
    """ "22:00-07:00d": start, end and policy (d defer, x drop) of a partner's quiet hours."""
    return _quiet_text(quiet.start, quiet.end, quiet.policy)


@lru_cache(maxsize=1024)
def _quiet_text(start: time, end: time, policy: str) -> str:
    return f"{start:%H:%M}-{end:%H:%M}{_POLICY[policy]}"


def parse_quiet(text: str) -> tuple[time, time, Literal["defer", "drop"]]:
    policy: Literal["defer", "drop"] = "drop" if text[-1] == "x" else "defer"
    return time.fromisoformat(text[:5]), time.fromisoformat(text[6:11]), policy


def _split_partner(text: str) -> tuple[str, str]:
    """(partner id, zone) of an "s0"/"s1" value."""
    partner_id, _, zone = text.partition("|")
    return partner_id, zone


def encode_profile(data: PreferencesSetData) -> dict[str, str]:
    """The couple hash fields that hold the profile (everything but the nudge plans)."""
    return {"id": data.couple_id} | profile_fields(data)


def profile_fields(data: PreferencesSetData) -> dict[str, str]:
    """`encode_profile` but "id", in the same order: what APPLY_PLAN is sent (it writes "id"
    from the couple id it is given).

    On the ingestion path once per preferences.set: field names are constants, and what
    couples repeat (quiet hours, a partner's locale, channels and love languages, the context)
    is encoded once per distinct value (`lru_cache`), not once per couple. Each model's
    fields are read from its `__dict__`, which holds exactly its field values (the schema's
    models forbid extras): a pydantic model's attribute goes through its __getattr__ hook,
    ~3x a dict read (`__dict__` itself costs one such read, `vars()` four), and a couple has
    ~35 of them (issue 20).
    """
    values = data.__dict__
    fields: dict[str, str] = {}
    for i, partner in enumerate(values["partners"]):
        s, q, n, c = _PARTNER_FIELDS[i]
        p = partner.__dict__
        fields[s] = f"{p['partner_id']}|{p['timezone']}"
        if (quiet := p["quiet_hours"]) is not None:
            hours = quiet.__dict__
            fields[q] = _quiet_text(hours["start"], hours["end"], hours["policy"])
        fields[n] = p["name"]
        codes = _partner_codes(p["locale"], tuple(p["channels"]), tuple(p["love_languages"]))
        fields[c] = f"{codes}{p['email'] or ''}"
        if (push := p["push"]) is not None:
            fields |= _push_fields(i, push)
        if devices := p["devices"]:
            fields |= _device_fields(i, devices)
    plans = values["nudges"].__dict__
    date_night, check_in = plans["date_night"], plans["check_in"]
    if date_night is not None and date_night.source != "catalog":
        fields["dn"] = date_night.source
    if check_in is not None and check_in.cadence.repeat == "daily":
        fields["ci"] = "daily"
    if values["listening"]:
        fields["ln"] = "1"
    focus_areas, discreet = values["focus_areas"], values["discreet"]
    if focus_areas or discreet:
        fields["f"] = _focus_text(tuple(focus_areas), discreet)
    fmt = check_in_format(check_in)
    context = values["context"]
    text = _context_text(context, fmt) if context else _bare_context_text(fmt)
    if text:
        fields["x"] = text
    return fields


_PARTNER_FIELDS: Final = (("s0", "q0", "n0", "c0"), ("s1", "q1", "n1", "c1"))


@lru_cache(maxsize=1024)
def _partner_codes(locale: str, channels: tuple[str, ...], love: tuple[str, ...]) -> str:
    """A partner's "c" field up to the email: "<locale>|<channel codes>|<love codes>|"."""
    codes = "".join([_CHANNELS[c] for c in channels])
    loves = "".join([_LOVE[x] for x in love])
    return f"{'' if locale == _DEFAULT_LOCALE else locale}|{codes}|{loves}|"


@lru_cache(maxsize=1024)
def _focus_text(focus_areas: tuple[str, ...], discreet: bool) -> str:
    """The "f" field: "<focus area codes>|<1 if discreet>"."""
    return f"{''.join([_FOCUS[a] for a in focus_areas])}|{'1' if discreet else ''}"


@lru_cache(maxsize=8)
def _bare_context_text(fmt: CheckInFormat | None) -> str:
    """The "x" field of a couple without a context."""
    return _context_text(None, fmt)


def _context_text(context: CoupleContext | None, fmt: CheckInFormat | None) -> str:
    """The "x" field: "" when there is nothing to keep."""
    c = context or _NO_CONTEXT
    kids = "" if c.children_at_home is None else ("y" if c.children_at_home else "n")
    text = "|".join(
        (
            _LIVING[c.living] if c.living else "",
            _BUDGET[c.budget] if c.budget else "",
            "".join([_AVOID[a] for a in c.avoid]),
            kids,
            _FORMAT[fmt] if fmt else "",
        )
    )
    return "" if text == "||||" else text


@lru_cache(maxsize=256)
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


def _push_fields(i: int, push: PushSubscription) -> dict[str, str]:
    text = f"{push.endpoint}|{push.p256dh}|{push.auth}"
    size = _PIECE if text.isascii() else _PIECE // 4  # at most 4 bytes a character
    return {f"w{i}.{n:02d}": text[at : at + size] for n, at in enumerate(range(0, len(text), size))}


def _device_fields(i: int, devices: list[Device]) -> dict[str, str]:
    """Tokens and app ids are printable ASCII without spaces: one line per device."""
    text = "\n".join(f"{_PLATFORMS[d.platform]} {d.app_id or '-'} {d.token}" for d in devices)
    pieces = range(0, len(text), _PIECE)  # 10 devices of 4 KiB: < 1000 pieces, 3 digits
    return {f"m{i}.{n:03d}": text[at : at + _PIECE] for n, at in enumerate(pieces)}


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


def device_ref(token: str) -> str:
    """Which device an outcome or a dead mark is about, without the token: the first 16 hex
    digits of the SHA-256 of the token as published (ASCII)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def _push(text: bytes) -> PushSubscription:
    endpoint, p256dh, auth = text.decode().rsplit("|", 2)
    return _trusted(PushSubscription, {"endpoint": endpoint, "p256dh": p256dh, "auth": auth})


_M = TypeVar("_M", bound=BaseModel)


def _trusted(cls: type[_M], values: dict[str, Any]) -> _M:
    """``cls.model_construct(**values)`` for values of every field, 10x cheaper.

    Only the scheduler writes the profile fields, from a validated preferences.set: validating
    them again on every read would cost more than the rest of a parse. Made by
    `object.__new__`, which is `cls.__new__` for a pydantic model (none defines its own: a
    test pins it), without the read of `cls.__new__` through the model metaclass's
    `__getattr__` hook (~1.5k instructions). `_partner` and `_profile` make their models the
    same way inline, with their class's shared fields set (`_PARTNER_SHARED_FIELDS`).
    """
    made = _new_model(cls)  # not `cls.__new__`: see `_trusted`'s docstring
    _set_dict(made, values)
    _set_fields_set(made, set(values))
    _set_extra(made, None)
    _set_private(made, None)
    return made


# Module globals: `object.__new__` read once, not an attribute of a global per model. A
# pydantic model's state is four slots of BaseModel (`__dict__`, its fields; the fields set;
# extras; private values): each is set by calling its descriptor's `__set__`, what
# `object.__setattr__` ends in after looking the name up on the class (~0.7k instructions a
# model less; a test holds BaseModel's slots to these four).
_new_model = object.__new__
_set_dict: Final = vars(BaseModel)["__dict__"].__set__
_set_fields_set: Final = vars(BaseModel)["__pydantic_fields_set__"].__set__
_set_extra: Final = vars(BaseModel)["__pydantic_extra__"].__set__
_set_private: Final = vars(BaseModel)["__pydantic_private__"].__set__


def _partner(
    s: bytes, q: bytes | None, n: bytes, c: bytes, w: bytes | None, m: bytes | None
) -> Partner:
    """A partner from their fields (issue 20: built on every nudge, one nudge per couple
    per occurrence). The codes become names through
    `_channel_names` and `_love_names` (a tuple per distinct code string, cached; each
    partner gets lists of its own, unpacked by `[*...]`: no call of `list`, 77.4k -> 76.3k
    instructions a parse for three lists, h/notify11),
    not by comprehensions (on 3.11 each is a frame of its own, ~1-2k instructions) nor by
    `map` (~2x a cached lookup); the set of fields set is a copy of the full one (every
    field is given), cheaper than a set of the dict's keys; no call for absent devices."""
    partner_id, _, zone = s.decode().partition("|")  # _split_partner, without its call
    locale, channels, love, email = c.decode().split("|", 3)
    made = _new_model(Partner)  # `_trusted` inline (its call: ~0.5k instructions a model)
    _set_dict(
        made,
        {
            "partner_id": partner_id,
            "name": n.decode(),
            "timezone": zone,
            "locale": locale or _DEFAULT_LOCALE,
            "channels": [*_channel_names(channels)],
            "email": email or None,
            "push": None if w is None else _push(w),
            "devices": [] if m is None else _devices(m),
            "love_languages": [*_love_names(love)],
            "quiet_hours": None if q is None else _quiet_hours(q.decode()),
        },
    )
    _set_fields_set(made, _PARTNER_SHARED_FIELDS)
    _set_extra(made, None)
    _set_private(made, None)
    return made


# Every field of a Partner, in the order `_partner` gives them (a test pins it).
_PARTNER_FIELDS_SET: Final = frozenset(
    (
        "partner_id",
        "name",
        "timezone",
        "locale",
        "channels",
        "email",
        "push",
        "devices",
        "love_languages",
        "quiet_hours",
    )
)
# The fields set every parsed Partner shares, given as is (a set, as pydantic's), and
# `_DATA_SHARED_FIELDS` every parsed profile's (issue 20, h/notify13: each set not made saves
# its copy, its deallocation and its traversal by the cyclic collector, ~4k instructions a
# parse). Invariant: nothing changes a parsed model's `model_fields_set` in place: pydantic
# reads it, or copies it before it changes it (`model_copy`, `copy`); the one change it makes
# in place, `__setattr__`'s `add(name)`, cannot happen on the schema's frozen models (and
# would add a field the set holds). tests/property/test_couple_parse.py checks the sets.
_PARTNER_SHARED_FIELDS: Final = set(_PARTNER_FIELDS_SET)


@lru_cache(maxsize=256)
def _channel_names(codes: str) -> tuple[Channel, ...]:
    """The channels of a partner's channel codes; an unknown code raises KeyError, as an
    uncached lookup did (errors are not cached). Couples repeat few code strings."""
    return tuple(map(_CHANNEL_NAMES.__getitem__, codes))


@lru_cache(maxsize=1024)
def _love_names(codes: str) -> tuple[LoveLanguage, ...]:
    """The love languages of their codes (as `_channel_names`)."""
    return tuple(map(_LOVE_NAMES.__getitem__, codes))


@lru_cache(maxsize=1024)
def _focus_names(codes: str) -> tuple[FocusArea, ...]:
    """The focus areas of their codes (as `_channel_names`)."""
    return tuple(map(_FOCUS_NAMES.__getitem__, codes))


@lru_cache(maxsize=1024)
def _quiet_hours(text: str) -> QuietHours:
    start, end, policy = parse_quiet(text)
    return _trusted(QuietHours, {"start": start, "end": end, "policy": policy})


def _profile(
    raw: dict[bytes, bytes],
    couple_id: bytes,
    push: list[tuple[bytes, bytes]] | None,
    mobile: list[tuple[bytes, bytes]] | None,
) -> PreferencesSetData | None:
    """The profile from the couple hash's fields (each read by its name, not unpacked from a
    tuple of them: ~1.5k instructions a parse, h/notify13), both partners' push
    subscriptions and device lists joined from their pieces (`push`, `mobile`: None when
    there are none).

    Not cached (issue 20, h/notify9): the notifier parses a couple once per occurrence (one
    nudge for both partners), hours apart, so a cache of 4,096 profiles keyed by their bytes
    missed on nearly every parse at the target's thousands of couples a second; a miss paid
    the key's ~17 byte-string hashes and the LRU's bookkeeping, and the profiles it kept alive
    were traversed by the cyclic GC: 471.1k -> 460.0k instructions a notifier message
    (callgrind, every couple new as in the benchmark's drain)."""
    get = raw.get
    rev, s0, s1, n0, n1 = get(b"rev"), get(b"s0"), get(b"s1"), get(b"n0"), get(b"n1")
    c0, c1 = get(b"c0"), get(b"c1")
    if rev is None:
        return None
    if s0 is None or s1 is None or n0 is None or n1 is None or c0 is None or c1 is None:
        return None
    w0, w1 = (_joined(push, b"w0."), _joined(push, b"w1.")) if push else (None, None)
    m0, m1 = (_joined(mobile, b"m0."), _joined(mobile, b"m1.")) if mobile else (None, None)
    focus, _, discreet = (get(b"f") or b"|").decode().partition("|")
    x = get(b"x")
    made = _new_model(PreferencesSetData)  # `_trusted` inline
    _set_dict(
        made,
        {
            "couple_id": couple_id.decode(),
            "revision": int(rev),
            "partners": (
                _partner(s0, get(b"q0"), n0, c0, w0, m0),
                _partner(s1, get(b"q1"), n1, c1, w1, m1),
            ),
            "nudges": _NO_NUDGES,
            "focus_areas": [*_focus_names(focus)],
            "discreet": discreet == "1",
            "context": None if x is None else _context(x.decode()),
            "listening": get(b"ln") == b"1",
        },
    )
    _set_fields_set(made, _DATA_SHARED_FIELDS)
    _set_extra(made, None)
    _set_private(made, None)
    return made


# Every field of a PreferencesSetData, in the order `_profile` gives them (a test pins it).
_DATA_FIELDS_SET: Final = frozenset(
    (
        "couple_id",
        "revision",
        "partners",
        "nudges",
        "focus_areas",
        "discreet",
        "context",
        "listening",
    )
)
# The fields set every parsed profile shares (`_PARTNER_SHARED_FIELDS`' comment).
_DATA_SHARED_FIELDS: Final = set(_DATA_FIELDS_SET)


def _paused(raw: str | None, now_ms: int) -> bool:
    if not raw:
        return False
    _, _, state = raw.partition("|")
    if state == OFF:
        return False
    return state == FOREVER or now_ms < int(state)


# What every consent mark's field name starts with: "pause" and "pause:<partner>" (`paused`),
# "unsub:" (`unsubscribed`), "dead:" (`channel_dead`, `device_dead`), "snz:" (`snoozed`).
_MARKS: Final = (b"pause", b"unsub:", b"dead:", b"snz:")
_MARK_INITIALS: Final = frozenset(mark[0] for mark in _MARKS)


@dataclass(frozen=True, slots=True)
class CoupleState:
    """A couple hash as the notifier reads it (`parse_couple`).

    `consent_marks`: False only when `fields` holds no consent mark (no name starting with
    one of `_MARKS`); then `paused`, `snoozed`, `unsubscribed`, `channel_dead` and
    `device_dead` are False for any partner, kind, channel, device and instant, since each
    reads only such fields, and a delivery skips asking them (issue 20, h/notify11: ~19.7k
    instructions a nudge of two partners with one channel each, for a couple with no marks,
    as most are). True when unknown (the default, a state made by hand or from the layout
    before issue 7): every check is asked. Not compared (two states of the same fields are
    equal whichever way they were made). tests/property/test_couple_parse.py pins both.
    """

    profile: PreferencesSetData | None
    fields: dict[str, str] = field(default_factory=dict)
    check_in_format: CheckInFormat | None = None  # None: not kept (written before it was)
    records: dict[str, str] = field(default_factory=dict)  # "<kind code>/<target>" -> record
    consent_marks: bool = field(default=True, compare=False, repr=False)  # see the docstring

    @property
    def exists(self) -> bool:
        return self.profile is not None

    def paused(self, partner_id: str, now_ms: int) -> bool:
        return _paused(self.fields.get("pause"), now_ms) or _paused(
            self.fields.get(f"pause:{partner_id}"), now_ms
        )

    def unsubscribed(self, partner_id: str, kind: str, channel: str) -> bool:
        for name in self.fields:  # a loop, not any() of a generator: no frame to make
            if name.startswith("unsub:"):
                break
        else:
            return False  # the common case, checked once per call without building keys
        scopes: dict[tuple[str, str], str] = {}
        for k in (kind, "all"):
            for c in (channel, "all"):
                value = self.fields.get(f"unsub:{partner_id}:{k}:{c}")
                if value is not None:
                    scopes[k, c] = value
        for (k, c), value in scopes.items():
            if not value.endswith("|0") and not _undone(k, c, _ms_of(value), scopes):
                return True
        return False

    def channel_dead(self, partner_id: str, channel: str) -> bool:
        return f"dead:{partner_id}:{channel}" in self.fields

    @property
    def date_night_source(self) -> str:
        """Where date-night ideas come from: "catalog", "jar" or "mixed"."""
        return self.fields.get("dn", "catalog")

    @property
    def daily_question(self) -> bool:
        """Whether the check-in is the daily question (a `daily` cadence)."""
        return self.fields.get("ci") == "daily"

    def device_dead(self, partner_id: str, ref: str) -> bool:
        return f"dead:{partner_id}:mobile:{ref}" in self.fields

    @property
    def listening(self) -> bool:
        """Whether the couple opted in to the listening cadence."""
        return self.profile is not None and self.profile.listening

    def snoozed(self, partner_id: str, kind: str, now_ms: int) -> bool:
        value = self.fields.get(f"snz:{partner_id}:{kind}")
        if not value:
            return False
        until = value.partition("|")[2]
        return until.isdigit() and now_ms < int(until)

    def level(self, partner_id: str, kind: str) -> int:
        """The listening cadence's level for the partner and kind (0: as chosen)."""
        value = self.fields.get(f"lvl:{partner_id}:{kind}", "0")
        level = value.partition("|")[0]
        return int(level) if level.isdigit() else 0


class UnreadableCouple(ValueError):
    """A stored couple that cannot be read; its message never quotes what is stored."""


def parse_couple(raw: dict[bytes, bytes]) -> CoupleState:
    legacy = raw.get(b"profile")
    if legacy:
        fields = {k.decode(): v.decode() for k, v in raw.items() if k != b"profile"}
        try:
            profile = PreferencesSetData.model_validate_json(legacy)
        except ValidationError:
            # Stored by an older, laxer schema (a name with a right-to-left mark was allowed
            # before 9fbbd1c). pydantic's message quotes the value: a name, an address.
            raise UnreadableCouple(
                "the stored profile (the layout before issue 7) no longer validates; "
                "its couple's next preferences.set replaces it"
            ) from None
        return CoupleState(profile, fields, check_in_format(profile.nudges.check_in))
    fields = {}
    couple_id = raw.get(b"id")
    here = (couple_id or b"") + b"/"  # a schedule id: "<couple>/<kind code>/<target>"
    schedules = []
    records: dict[str, str] = {}
    push: list[tuple[bytes, bytes]] | None = None  # made on the first piece (most have none)
    mobile: list[tuple[bytes, bytes]] | None = None
    marks = False  # a consent mark among the fields (CoupleState's docstring)
    for k, v in raw.items():
        # Most of a hash's fields are the profile's (read by key below), so they are passed
        # over first: none holds "/" nor starts with "w" or "m", so the order of the tests
        # does not change where a field goes.
        if k in _PROFILE_KEYS:
            continue
        if _SLASH in k:  # a schedule record: "<kind code>/<target>"
            schedules.append(here + k)
            records[k.decode()] = v.decode()
        elif k[0] == _W:  # a piece of a push subscription
            if push is None:
                push = []
            push.append((k, v))
        elif k[0] == _MOBILE and k[2:3] == b".":  # a piece of a partner's device list
            if mobile is None:
                mobile = []
            mobile.append((k, v))
        else:
            fields[k.decode()] = v.decode()
            # bytes: the decoded name starts alike (ASCII prefixes); the first byte tested
            # first ("rev", in every hash, starts with none of theirs)
            if k[0] in _MARK_INITIALS and k.startswith(_MARKS):
                marks = True
    if couple_id is None:
        return CoupleState(None, fields, consent_marks=marks)
    fields["sids"] = b",".join(schedules).decode()
    x = raw.get(b"x")
    fmt = _FORMAT_NAMES.get(x.decode().rpartition("|")[2]) if x else None
    return _state(_profile(raw, couple_id, push, mobile), fields, fmt, records, marks)


def _state(
    profile: PreferencesSetData | None,
    fields: dict[str, str],
    fmt: CheckInFormat | None,
    records: dict[str, str],
    marks: bool,
) -> CoupleState:
    """`CoupleState(profile, fields, fmt, records, marks)`, ~half the instructions: every slot
    set through its descriptor, as the frozen dataclass's `__init__` does through
    `object.__setattr__` (a test holds the slots to the dataclass's fields)."""
    state = _new_state(CoupleState)
    _SET_PROFILE(state, profile)
    _SET_FIELDS(state, fields)
    _SET_FORMAT(state, fmt)
    _SET_RECORDS(state, records)
    _SET_MARKS(state, marks)
    return state


_new_state = object.__new__
# The slots' descriptors (a frozen dataclass with slots: one member descriptor a field).
_SET_PROFILE: Final = cast("Any", CoupleState).profile.__set__
_SET_FIELDS: Final = cast("Any", CoupleState).fields.__set__
_SET_FORMAT: Final = cast("Any", CoupleState).check_in_format.__set__
_SET_RECORDS: Final = cast("Any", CoupleState).records.__set__
_SET_MARKS: Final = cast("Any", CoupleState).consent_marks.__set__


def _joined(pieces: list[tuple[bytes, bytes]], prefix: bytes) -> bytes | None:
    mine = sorted(p for p in pieces if p[0].startswith(prefix))
    return b"".join(v for _, v in mine) if mine else None


def _ms_of(value: str) -> int:
    """The occurred_ms an `unsub:` value starts with (0 for one written without it)."""
    head = value.partition("|")[0]
    return int(head) if head.isdigit() else 0


def _undone(kind: str, channel: str, since_ms: int, scopes: dict[tuple[str, str], str]) -> bool:
    """Whether a resubscribe of a scope covering (kind, channel), not older than `since_ms`,
    undoes that scope's unsubscribe. RESUBSCRIBE clears the unsubscribes inside its scope that
    it is not older than, but one delivered after it (another replica, a retry) has no field
    yet and is written: the reader weighs the two by when they happened."""
    for (k, c), value in scopes.items():
        covers = k in (kind, "all") and c in (channel, "all")
        if covers and value.endswith("|0") and _ms_of(value) >= since_ms:
            return True
    return False
