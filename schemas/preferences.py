"""Preference events: what other apps publish on the preferences stream.

preferences.set.v1           full replacement of a couple's preferences (with a revision)
                             (a partner's app devices: `devices`, for the "mobile" channel)
preferences.paused.v1        pause the couple or one partner, optionally until an instant
preferences.resumed.v1       undo a pause
preferences.unsubscribed.v1  one partner stops one nudge kind (or all) on one channel (or all)
preferences.resubscribed.v1  undo unsubscribes (and spam complaints) in a scope, with the consent
couple.erased.v1             forget everything about the couple
datejar.idea_added.v1        one of the couple's own date ideas goes into their date jar
datejar.idea_removed.v1      an idea comes out of the jar again

The models' cross-field checks run on every preferences.set (issue 20): each reads a field
once, and where it reads several of a model, from the model's __dict__ (a frozen model with no
extra fields holds exactly its fields there); tests/property/test_preference_checks.py holds
them to the plain forms.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Final, Literal, NamedTuple, Self

from croniter import croniter
from pydantic import ConfigDict, Field, StringConstraints, model_validator
from pydantic.config import JsonDict

from couples_nudge_schemas._base import (
    FORBIDDEN_CHARACTERS,
    NAME_PATTERN,
    SPACES,
    Checked,
    Email,
    Envelope,
    ExactInt,
    Instant,
    LocalDate,
    LocalTime,
    Name,
    SafeId,
    StrictModel,
    TimeZoneName,
    Unique,
)

__all__ = [
    "JAR_LIMIT",
    "MAX_DEVICES",
    "AndroidDevice",
    "Cadence",
    "Channel",
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
    "FocusArea",
    "IosDevice",
    "LoveLanguage",
    "MonthlyCadence",
    "NudgeKind",
    "NudgePlan",
    "Nudges",
    "Partner",
    "PreferencesPaused",
    "PreferencesPausedData",
    "PreferencesResubscribed",
    "PreferencesResubscribedData",
    "PreferencesResumed",
    "PreferencesResumedData",
    "PreferencesSet",
    "PreferencesSetData",
    "PreferencesUnsubscribed",
    "PreferencesUnsubscribedData",
    "PushSubscription",
    "QuietHours",
    "TimeWindow",
    "TimesPerWeekCadence",
    "Weekday",
    "WeeklyCadence",
]

NudgeKind = Literal["date_night", "check_in", "appreciation"]
# "mobile" reaches a partner's app devices (`devices`): FCM for Android, APNs for iOS.
Channel = Literal["email", "push", "webhook", "mobile"]
MAX_DEVICES: Final = 10
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
LoveLanguage = Literal[
    "words_of_affirmation", "acts_of_service", "receiving_gifts", "quality_time", "physical_touch"
]
FocusArea = Literal[
    "emotional", "physical", "intellectual", "experiential", "spiritual", "conflict"
]
CheckInFormat = Literal["monthly_guide", "question"]

Locale = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")]
# Where a date night's idea comes from: the catalog, the couple's own date jar, or both in turn.
DateNightSource = Literal["catalog", "jar", "mixed"]
JAR_LIMIT: Final = 200  # ideas in one couple's date jar
# The largest revision: the scheduler compares revisions in Lua, as doubles, exact only up to
# 2^53 (a revision of 2^53 + 1 after 2^53 read as equal: stale, the newer one dropped).
MAX_REVISION: Final = 2**53 - 1
# "jar:<idea id>" is an outcome's content_id (at most 64 characters).
IdeaId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,47}$")]
IdeaText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200),
    Checked(
        NAME_PATTERN,
        "control, invisible and line-separator characters, and leading or trailing "
        "whitespace, are not allowed",
    ),
]


class TimeWindow(StrictModel):
    """A daily local window [start, end); start < end on the same day."""

    start: LocalTime
    end: LocalTime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("window end must be after its start on the same day")
        return self


class QuietHours(StrictModel):
    """Local hours in which a partner gets no nudge; may wrap midnight (22:00-08:00)."""

    start: LocalTime
    end: LocalTime
    policy: Literal["defer", "drop"] = "defer"

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start == self.end:
            raise ValueError("quiet hours start and end must differ")
        return self


class PushSubscription(StrictModel):
    """A Web Push subscription as the browser's PushManager returns it."""

    endpoint: Annotated[
        str,
        StringConstraints(max_length=1024),
        Checked(
            rf"^https://[^{SPACES}{FORBIDDEN_CHARACTERS}]+$",
            "must be an https:// URL without spaces, control or invisible characters",
        ),
    ]
    p256dh: Annotated[str, StringConstraints(max_length=256, pattern=r"^[A-Za-z0-9_=-]+$")]
    auth: Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_=-]+$")]


# An app id: an iOS bundle id or an Android application id (reverse-DNS, at least one dot).
AppId = Annotated[
    str,
    StringConstraints(max_length=155),
    Checked(
        r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$",
        "an app id is a bundle id or package name such as org.example.app",
    ),
]


class AndroidDevice(StrictModel):
    """An app install reached through Firebase Cloud Messaging (its registration token)."""

    platform: Literal["android"]
    token: Annotated[
        str,
        StringConstraints(max_length=4096),
        Checked(
            r"^[\x21-\x7e]{16,4096}$",
            "an FCM registration token is 16 to 4096 printable ASCII characters without spaces",
        ),
    ]
    app_id: AppId | None = Field(
        default=None, description="The Android application id; FCM refuses other apps' tokens."
    )


class IosDevice(StrictModel):
    """An app install reached through APNs (its device token as hex)."""

    platform: Literal["ios"]
    token: Annotated[
        str,
        StringConstraints(max_length=200),
        Checked(
            r"^(?:[0-9a-fA-F]{2}){32,100}$",
            "an APNs device token is hex: 64 characters today, at most 200",
        ),
    ]
    app_id: AppId | None = Field(
        default=None, description="The bundle id, sent as apns-topic (else NUDGE_APNS_TOPIC)."
    )


Device = Annotated[AndroidDevice | IosDevice, Field(discriminator="platform")]


def _needs_when_chosen(channel: str, field: str, rule: JsonDict) -> JsonDict:
    """JSON Schema: a partner who chose `channel` has `field` (as _channels_have_addresses)."""
    return {
        "if": {"properties": {"channels": {"contains": {"const": channel}}}},
        "then": {"required": [field], "properties": {field: rule}},
    }


class Partner(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                _needs_when_chosen("email", "email", {"type": "string"}),
                _needs_when_chosen("push", "push", {"type": "object"}),
                _needs_when_chosen("mobile", "devices", {"minItems": 1}),
            ]
        }
    )

    partner_id: SafeId
    name: Name
    timezone: TimeZoneName
    locale: Locale = "en"
    channels: Annotated[
        list[Channel], Field(min_length=1, max_length=4), Unique("channels must not repeat")
    ]
    email: Email | None = None
    push: PushSubscription | None = None
    devices: Annotated[list[Device], Field(max_length=MAX_DEVICES)] = Field(
        default_factory=list,
        description="The partner's app installs; the 'mobile' channel reaches each live one.",
    )
    love_languages: Annotated[
        list[LoveLanguage], Field(max_length=5), Unique("love_languages must not repeat")
    ] = Field(default_factory=list)
    quiet_hours: QuietHours | None = None

    @model_validator(mode="after")
    def _channels_have_addresses(self) -> Self:
        values = self.__dict__
        channels, devices = values["channels"], values["devices"]
        if "email" in channels and values["email"] is None:
            raise ValueError("channel 'email' needs an email address")
        if "push" in channels and values["push"] is None:
            raise ValueError("channel 'push' needs a push subscription")
        if not devices:  # most partners: no token to compare
            if "mobile" in channels:
                raise ValueError("channel 'mobile' needs at least one device")
            return self
        tokens = {d.token.lower() if d.platform == "ios" else d.token for d in devices}
        if len(tokens) != len(devices):
            raise ValueError("a device token must not repeat")
        return self


class WeeklyCadence(StrictModel):
    """Every week (or every n-th week, counted from the anchor's week) on a weekday."""

    # JSON Schema of _anchor_when_skipping: every_weeks of 2 or more needs the anchor.
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"every_weeks": {"minimum": 2}}, "required": ["every_weeks"]},
            "then": {"required": ["anchor"], "properties": {"anchor": {"type": "string"}}},
        }
    )

    repeat: Literal["weekly"]
    weekday: Weekday
    at: LocalTime
    every_weeks: Annotated[int, Field(ge=1, le=4)] = 1
    anchor: LocalDate | None = Field(
        default=None, description="A date in a week that fires; needed when every_weeks > 1."
    )

    @model_validator(mode="after")
    def _anchor_when_skipping(self) -> Self:
        if self.every_weeks > 1 and self.anchor is None:
            raise ValueError("every_weeks > 1 needs an anchor date")
        return self


class DailyCadence(StrictModel):
    """Every local calendar day at one local time (once a day, also across DST changes)."""

    repeat: Literal["daily"]
    at: LocalTime


class MonthlyCadence(StrictModel):
    """Monthly on the n-th weekday (nth=-1 is the last) or on a day of the month (1-28)."""

    # JSON Schema of _one_form: weekday and nth, or day (a field left out or null is unset).
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["weekday", "nth"],
                    "properties": {
                        "weekday": {"type": "string"},
                        "nth": {"type": "integer"},
                        "day": {"type": "null"},
                    },
                },
                {
                    "required": ["day"],
                    "properties": {
                        "day": {"type": "integer"},
                        "weekday": {"type": "null"},
                        "nth": {"type": "null"},
                    },
                },
            ]
        }
    )

    repeat: Literal["monthly"]
    at: LocalTime
    weekday: Weekday | None = None
    nth: Annotated[Literal[1, 2, 3, 4, -1], ExactInt] | None = None
    day: Annotated[int, Field(ge=1, le=28)] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        values = self.__dict__
        weekday, nth = values["weekday"], values["nth"]
        by_weekday = weekday is not None and nth is not None
        if by_weekday == (values["day"] is not None) or (weekday is None) != (nth is None):
            raise ValueError("give either weekday and nth, or day")
        return self


class TimesPerWeekCadence(StrictModel):
    """N times a week at spread, per-couple times inside a daily local window."""

    repeat: Literal["times_per_week"]
    times: Annotated[int, Field(ge=1, le=7)]
    between: TimeWindow


class CronCadence(StrictModel):
    """A raw five-field cron expression in local time, for power users."""

    repeat: Literal["cron"]
    cron: Annotated[
        str,
        StringConstraints(max_length=120),
        Checked(r"^[\x20-\x7e]+$", "a cron expression is printable ASCII text"),
    ]

    @model_validator(mode="after")
    def _parses(self) -> Self:
        if not _valid_cron(self.cron):
            raise ValueError("not a valid five-field cron expression")
        return self


def _valid_cron(cron: str) -> bool:
    """Five fields croniter accepts: ``croniter.is_valid``, field by field.

    croniter checks each field on its own, so an expression is valid exactly when each of its
    fields is (with the others '*'); and fields repeat across couples far more than whole
    expressions do, while croniter's check of a new expression costs more than the rest of
    ingesting a couple. Fields are split as croniter splits them (ASCII whitespace).
    """
    fields = _CRON_FIELD_RE.findall(cron)
    return len(cron.split()) == len(fields) == 5 and None not in map(
        cron_field_reading, range(5), fields
    )


_CRON_FIELD_RE = re.compile(r"\S+", re.ASCII)  # croniter's own field splitting


class CronFieldReading(NamedTuple):
    """croniter's reading of one cron field: its ``expanded`` values, and for the day fields
    the ``D#n``/``LD`` weekdays (``nth_weekday_of_month``) and ``W`` days (``nearest_weekday``)."""

    values: tuple[int | str, ...]
    nth: tuple[tuple[int, tuple[int | str, ...]], ...] = ()
    nearest: tuple[int, ...] = ()


@lru_cache(maxsize=16_384)
def cron_field_reading(index: int, field: str) -> CronFieldReading | None:
    """croniter's reading of one field alone (the others '*'), None when croniter refuses it
    (``croniter.is_valid``: every ValueError of its parse), remembered. The scheduler's rules
    read the same cache (services/scheduler/rules.py), so a new field is parsed once."""
    probe = ["*"] * 5
    probe[index] = field
    try:
        parsed = croniter(" ".join(probe), 0)  # any start: fields read alike
    except ValueError:
        return None
    return CronFieldReading(
        tuple(parsed.expanded[index]),
        tuple((d, tuple(n)) for d, n in parsed.nth_weekday_of_month.items()) if index == 4 else (),
        tuple(sorted(parsed.nearest_weekday)) if index == 2 else (),
    )


Cadence = Annotated[
    WeeklyCadence | MonthlyCadence | TimesPerWeekCadence | CronCadence | DailyCadence,
    Field(discriminator="repeat"),
]


class NudgePlan(StrictModel):
    """How one kind of nudge repeats and who gets it.

    recipients: "both", "alternate" (one partner per occurrence, taking turns) or "one"
    (only `partner_id`). timing: "own_local" fires at each recipient's own local time;
    "together" fires both at the same instant, computed in `timezone_of`'s zone.
    """

    # JSON Schema of _one_names_partner: partner_id exactly when recipients is "one".
    model_config = ConfigDict(
        json_schema_extra={
            "if": {"properties": {"recipients": {"const": "one"}}, "required": ["recipients"]},
            "then": {"required": ["partner_id"], "properties": {"partner_id": {"type": "string"}}},
            "else": {"properties": {"partner_id": {"type": "null"}}},
        }
    )

    cadence: Cadence
    format: CheckInFormat | None = Field(
        default=None,
        description="Check-ins only: 'monthly_guide' (a structured talk with an agenda) or "
        "'question' (one question). Default: a guide for a monthly cadence, else questions.",
    )
    recipients: Literal["both", "alternate", "one"] = "both"
    partner_id: SafeId | None = None
    timing: Literal["own_local", "together"] = "own_local"
    timezone_of: SafeId | None = None
    source: DateNightSource = Field(
        default="catalog",
        description="Date nights only: where the ideas come from. 'catalog' (the service's "
        "ideas), 'jar' (the couple's own date jar, drawn without replacement until it is "
        "empty, then it refills; the catalog's while it is empty) or 'mixed' (the jar on even "
        "occurrences of the schedule, the catalog on odd ones).",
    )

    @model_validator(mode="after")
    def _one_names_partner(self) -> Self:
        if (self.recipients == "one") != (self.partner_id is not None):
            raise ValueError("recipients 'one' needs partner_id (and only it does)")
        return self


class CoupleContext(StrictModel):
    """What a couple's life rules out; every field optional (unknown rules nothing out).

    Content choice never picks an item whose assumptions this rules out: an item for a
    shared home when the couple lives apart, a paid idea over budget, a walk when mobility is
    to be avoided, an evening without the children when children are at home."""

    living: Literal["together", "apart"] | None = Field(
        default=None, description="'apart': ideas that work at a distance (calls, letters)."
    )
    budget: Literal["free", "low", "any"] | None = Field(
        default=None, description="The most an idea may cost: free, low (a coffee) or any."
    )
    avoid: Annotated[
        list[Literal["mobility"]], Field(max_length=1), Unique("avoid must not repeat")
    ] = Field(
        default_factory=list,
        description="Activities to leave out: 'mobility' (walking any distance, dancing, ...).",
    )
    children_at_home: bool | None = Field(
        default=None, description="True: no idea that needs an evening without children."
    )


# JSON Schema of the plan rules of PreferencesSetData._references_resolve that read one plan:
# only date nights draw from the jar, only check-ins name a format.
_ONLY_CATALOG: Final[JsonDict] = {"source": {"const": "catalog"}}
_NO_FORMAT: Final[JsonDict] = {"format": {"type": "null"}}


class Nudges(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "properties": {
                        "date_night": {"properties": _NO_FORMAT},
                        "check_in": {"properties": _ONLY_CATALOG},
                        "appreciation": {"properties": {**_ONLY_CATALOG, **_NO_FORMAT}},
                    }
                }
            ]
        }
    )

    date_night: NudgePlan | None = None
    check_in: NudgePlan | None = None
    appreciation: NudgePlan | None = None


# The NudgePlan fields _references_resolve checks, each of which passes at its default.
_PLAN_REFERENCES: Final = frozenset(("partner_id", "timezone_of", "source", "format"))


class PreferencesSetData(StrictModel):
    couple_id: SafeId
    revision: Annotated[
        int,
        Field(
            ge=0,
            le=MAX_REVISION,
            description="Monotonic; older revisions are ignored. At most 2^53 - 1: every "
            "integer up to it is exact as a double, as the stored revision is compared.",
        ),
    ]
    partners: tuple[Partner, Partner]
    nudges: Nudges
    focus_areas: Annotated[list[FocusArea], Field(max_length=6)] = Field(default_factory=list)
    discreet: bool = Field(
        default=False,
        description="Neutral push title and body, email subject and inbox preview; the "
        "content only inside the opened email or app.",
    )
    context: CoupleContext | None = None
    listening: bool = Field(
        default=False,
        description="The listening cadence (opt-in): a kind a partner leaves unanswered "
        "several times in a row comes one step less often for them; 'we did it' and 'more of "
        "these' bring it back, never above the rhythm chosen here.",
    )

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        values = self.__dict__
        first, second = values["partners"]
        ids = (first.partner_id, second.partner_id)
        if ids[0] == ids[1]:
            raise ValueError("the two partners need distinct partner_id values")
        # Fields read from each model's __dict__ (its field values): a pydantic model's
        # attributes go through its __getattr__ hook, ~3x a dict read; `vars(model)` costs
        # ~2x `model.__dict__` (issue 20).
        for kind, plan in values["nudges"].__dict__.items():
            # A plan whose input named none of the four fields checked below holds their
            # defaults (None, None, "catalog", None), which pass every check: most plans.
            if plan is None or _PLAN_REFERENCES.isdisjoint(plan.__pydantic_fields_set__):
                continue
            fields = plan.__dict__
            # The two references tested one after the other, not looped over as a tuple
            # (~0.6k instructions a plan).
            partner_id, timezone_of = fields["partner_id"], fields["timezone_of"]
            if partner_id is not None and partner_id not in ids:
                raise ValueError(f"nudges.{kind} names unknown partner {partner_id!r}")
            if timezone_of is not None and timezone_of not in ids:
                raise ValueError(f"nudges.{kind} names unknown partner {timezone_of!r}")
            if fields["source"] != "catalog" and kind != "date_night":
                raise ValueError(f"nudges.{kind}: only date nights draw from the date jar")
            if fields["format"] is not None and kind != "check_in":
                raise ValueError(f"nudges.{kind}.format is for check-ins only")
        return self


class PreferencesSet(Envelope):
    type: Literal["preferences.set.v1"]
    data: PreferencesSetData


class PreferencesPausedData(StrictModel):
    couple_id: SafeId
    partner_id: SafeId | None = Field(default=None, description="None pauses the whole couple.")
    until: Instant | None = Field(default=None, description="None pauses until resumed.")


class PreferencesPaused(Envelope):
    type: Literal["preferences.paused.v1"]
    data: PreferencesPausedData


class PreferencesResumedData(StrictModel):
    couple_id: SafeId
    partner_id: SafeId | None = None


class PreferencesResumed(Envelope):
    type: Literal["preferences.resumed.v1"]
    data: PreferencesResumedData


class PreferencesUnsubscribedData(StrictModel):
    couple_id: SafeId
    partner_id: SafeId
    kind: NudgeKind | Literal["all"] = "all"
    channel: Channel | Literal["all"] = "all"


class PreferencesUnsubscribed(Envelope):
    type: Literal["preferences.unsubscribed.v1"]
    data: PreferencesUnsubscribedData


class CoupleErasedData(StrictModel):
    couple_id: SafeId


class CoupleErased(Envelope):
    type: Literal["couple.erased.v1"]
    data: CoupleErasedData


ConsentMethod = Literal["in_app", "web_form", "email_confirmation", "support", "other"]


class PreferencesResubscribedData(StrictModel):
    couple_id: SafeId
    partner_id: SafeId
    kind: NudgeKind | Literal["all"] = "all"
    channel: Channel | Literal["all"] = "all"
    consented_at: Instant = Field(description="When the person asked for the nudges again.")
    method: ConsentMethod = Field(description="How they asked: kept as the record of consent.")


class PreferencesResubscribed(Envelope):
    """Undo unsubscribes (and spam complaints) inside the scope (kind, channel).

    It clears every unsubscribe whose kind and channel both lie inside the scope: "all" covers
    every kind (or channel) and "all" itself. A broader unsubscribe stays: after an
    unsubscribe of all kinds, a resubscribe to date_night alone changes nothing; send "all".
    A spam complaint is an unsubscribe of kind "all" on the email channel.
    """

    type: Literal["preferences.resubscribed.v1"]
    data: PreferencesResubscribedData


class DateJarIdeaAddedData(StrictModel):
    couple_id: SafeId
    idea_id: IdeaId = Field(description="The app's id of the idea; adding it again is a no-op.")
    text: IdeaText = Field(description="The idea, as the couple wrote it. Personal data.")
    added_by: SafeId = Field(description="The partner who put it in the jar.")


class DateJarIdeaAdded(Envelope):
    """An idea into the couple's date jar (at most JAR_LIMIT ideas a couple)."""

    type: Literal["datejar.idea_added.v1"]
    data: DateJarIdeaAddedData


class DateJarIdeaRemovedData(StrictModel):
    couple_id: SafeId
    idea_id: IdeaId


class DateJarIdeaRemoved(Envelope):
    """An idea out of the couple's date jar (removing one that is not there is a no-op)."""

    type: Literal["datejar.idea_removed.v1"]
    data: DateJarIdeaRemovedData
