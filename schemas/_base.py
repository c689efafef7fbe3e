"""Building blocks shared by every event: strict base model, the envelope, constrained types.

Every model is strict (no type coercion), forbids unknown fields and is immutable. Events are
always validated from JSON bytes, where pydantic's strict mode still reads ISO 8601 strings as
datetimes and UUIDs.
"""

from __future__ import annotations

import re
import uuid
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from typing import Annotated, Any, Final, cast

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import core_schema

__all__ = [
    "DATE_PATTERN",
    "EMAIL_PATTERN",
    "FORBIDDEN_CHARACTERS",
    "INSTANT_PATTERN",
    "LOCAL_TIME_PATTERN",
    "NAME_PATTERN",
    "SPACES",
    "UUID_PATTERN",
    "ZONE_PATTERN",
    "Checked",
    "Email",
    "Envelope",
    "EventId",
    "ExactInt",
    "Instant",
    "LocalDate",
    "LocalTime",
    "Name",
    "Producer",
    "SafeId",
    "StrictModel",
    "TimeZoneName",
    "Unique",
    "added_field",
]


class StrictModel(BaseModel):
    """Strict, closed, immutable: the base of every schema model."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


# Areas of the tz database's geographic zones. "UTC" and Area/Location names (links such as
# Asia/Calcutta included) are canonical here; "localtime", "posixrules", "Factory", "EST",
# "US/Eastern", "Etc/GMT+5" and the like are not: they depend on the host or mislead.
_ZONE_AREAS: Final = (
    "Africa",
    "America",
    "Antarctica",
    "Arctic",
    "Asia",
    "Atlantic",
    "Australia",
    "Europe",
    "Indian",
    "Pacific",
)
ZONE_PATTERN: Final = rf"^(?:UTC|(?:{'|'.join(_ZONE_AREAS)})/[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)?)$"

# What no display name or address may hold, as one character class that Python's `re`, the
# ECMA-262 regexes of JSON Schema validators and Rust's regex all read alike: every control
# character (Cc, C0 and C1, U+0085 included), the line and paragraph separators (Zl, Zp) and
# the invisible format characters (Cf) of the Basic Multilingual Plane that can hide or reorder
# text (bidi overrides, zero-width space, BOM...). Zero-width (non-)joiners stay allowed:
# Persian and Indic names and emoji sequences need them.
FORBIDDEN_CHARACTERS: Final = (
    r"\x00-\x1f\x7f-\x9f\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u180e"
    r"\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
# Unicode whitespace that FORBIDDEN_CHARACTERS does not already cover.
SPACES: Final = r"\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
NAME_PATTERN: Final = (
    rf"^[^{SPACES}{FORBIDDEN_CHARACTERS}](?:[^{FORBIDDEN_CHARACTERS}]*"
    rf"[^{SPACES}{FORBIDDEN_CHARACTERS}])?$"
)
_ADDRESS_PART: Final = rf'[^@<>,;:"{SPACES}{FORBIDDEN_CHARACTERS}]+'
# Deliberately simple: one @, a dot in the domain, no spaces, controls or invisible characters.
# Deliverability is the SMTP server's judgement; this keeps garbage and header injection out.
EMAIL_PATTERN: Final = rf"^{_ADDRESS_PART}@{_ADDRESS_PART}\.{_ADDRESS_PART}$"
# Calendar dates the service's parser accepts, exactly: years 0001-9999, months of their
# length, 29 February in leap years only (Gregorian: every 4th year, centuries every 400th).
_YEAR: Final = r"(?:[0-9]{3}[1-9]|[0-9]{2}[1-9]0|[0-9][1-9]00|[1-9]000)"
_LEAP_YEAR: Final = (
    r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26])00)"
)
_DAY_OF_YEAR: Final = (
    r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
    r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    r"|02-(?:0[1-9]|1[0-9]|2[0-8]))"
)
_DATE: Final = rf"(?:{_YEAR}-{_DAY_OF_YEAR}|{_LEAP_YEAR}-02-29)"
_HOUR_MINUTE: Final = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]"
DATE_PATTERN: Final = rf"^{_DATE}$"
# A local wall-clock time, minute precision: HH:MM (HH:MM:00 too, as serialisers write it).
LOCAL_TIME_PATTERN: Final = rf"^{_HOUR_MINUTE}(?::00)?$"
# ISO 8601 / RFC 3339 date and time with a UTC offset ("Z" or +HH:MM), as a string; seconds
# are optional (Java's OffsetDateTime writes none when they are zero), fractions up to 1 ns.
INSTANT_PATTERN: Final = (
    rf"^{_DATE}[Tt]{_HOUR_MINUTE}(?::[0-5][0-9](?:[.,][0-9]{{1,9}})?)?"
    rf"(?:[Zz]|[+-]{_HOUR_MINUTE})$"
)
# A UUID in its one text form (8-4-4-4-12 hex digits): no braces, URN or bare 32 digits.
UUID_PATTERN: Final = (
    r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
)


@dataclass(frozen=True, slots=True)
class Checked:
    """A pattern a string must match, and the reason given when it does not.

    Checked with a clear message (pydantic's own `pattern` error would report the whole
    regex), and exported as the JSON Schema `pattern`, so a standard validator applies the
    same rule. Patterns are anchored and written in the regex subset every engine reads alike
    (no `\\s`, `\\d`, `\\w`, look-arounds or Unicode classes): that is what lets the check
    run in pydantic-core (its Rust regex, as a step whose error is replaced by the message,
    type `pattern_checked`) instead of a Python function called per value (fourteen per
    preferences.set: issue 20); Python's `re` only checks raw_text values given in Python.
    tests/property/test_schema_formats.py holds the two engines to the same answers.

    The JSON Schema keeps the `format` pydantic gives the type only where that format admits
    every string the pattern admits (`date`, `uuid`); `drop_format=True` removes it where it
    means something else: JSON Schema's `time` is RFC 3339's full-time (seconds and an
    offset) and its `date-time` requires seconds, so a validator asserting formats would
    refuse values the service accepts.

    With `raw_text=True` the check runs on the input before pydantic parses it (for values
    that pydantic would otherwise read from other forms, e.g. a datetime from "1"): a string
    must match, a non-string input is refused, and an already-built value (in Python) passes.
    `python_after` (with `raw_text` only) then checks what the pattern cannot: a value built in
    Python. JSON text that matched the pattern needs no such check, and gets none: a Python
    call per value from pydantic-core (six local times a preferences.set: issue 20).

    With `json_lookup` (with `raw_text` only), JSON text is read by that one callable instead
    of the pattern and the type's parser: it must return the parsed value for exactly the
    strings the pattern admits and raise ValueError for any other (the error is then the
    pattern's, as before). A C method such as a dict's `__getitem__` is called by
    pydantic-core without a Python frame: see `_LocalTimes`.
    """

    pattern: str
    message: str
    raw_text: bool = False
    drop_format: bool = False
    python_after: Callable[[Any], Any] | None = None
    json_lookup: Callable[[str], Any] | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        regex = re.compile(self.pattern)
        message, raw_text = self.message, self.raw_text

        def check(value: Any) -> Any:
            if isinstance(value, str):
                if regex.fullmatch(value) is None:
                    raise ValueError(message)
            elif raw_text and isinstance(value, int | float | bool | list | dict | None):
                raise ValueError(message)  # JSON values other than strings
            return value

        inner = handler(source)
        matched = core_schema.custom_error_schema(
            core_schema.str_schema(pattern=self.pattern, strict=True),
            "pattern_checked",
            custom_error_message=f"Value error, {message}",
        )
        if raw_text:
            # Strict validation refuses a string that is not JSON input any more; the text was
            # just checked, so the value's own parser reads it as from JSON.
            lax = cast("core_schema.CoreSchema", {**inner, "strict": False})
            python: core_schema.CoreSchema = core_schema.no_info_before_validator_function(
                check, lax
            )
            if self.python_after is not None:
                python = core_schema.no_info_after_validator_function(self.python_after, python)
            json_text: core_schema.CoreSchema = core_schema.chain_schema([matched, lax])
            if self.json_lookup is not None:
                # Any error (not a string, or not a key) is the pattern's, as `matched` gives it.
                # Serialised as the type is (the step's own serialiser would be a str's).
                json_text = core_schema.custom_error_schema(
                    core_schema.no_info_after_validator_function(
                        self.json_lookup,
                        core_schema.str_schema(strict=True),
                        serialization=inner.get("serialization")
                        or core_schema.simple_ser_schema(inner["type"]),
                    ),
                    "pattern_checked",
                    custom_error_message=f"Value error, {message}",
                )
            return core_schema.json_or_python_schema(json_schema=json_text, python_schema=python)
        return core_schema.chain_schema([inner, matched])

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if schema["type"] == "json-or-python":  # raw_text: described as the Python side is
            schema = schema["python_schema"]
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        if self.drop_format:
            json_schema.pop("format", None)
        return json_schema


@dataclass(frozen=True, slots=True)
class Unique:
    """The items of a list must not repeat (`uniqueItems` in the JSON Schema)."""

    message: str = "items must not repeat"

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        message = self.message

        def check(value: list[Any]) -> list[Any]:
            if len(value) > 1 and len(set(value)) != len(value):
                raise ValueError(message)
            return value

        return core_schema.no_info_after_validator_function(check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["uniqueItems"] = True
        return json_schema


class _KnownZones(dict[str, str]):
    """Every IANA zone name of the host's tz database, each mapped to itself: the zone check.

    The check is this dict's own `__getitem__`, a C method: pydantic-core calls it per value
    without a Python frame (a Python function and its cached zone set cost ~1.2k instructions
    a partner, this ~0.4k: issue 20). A known name returns itself (an equal str); a name not in
    the dict reaches `__missing__`, which reads the tz database on the first miss only (so no
    import reads it), then refuses an unknown name with the check's ValueError.
    """

    loaded = False

    def __missing__(self, name: str) -> str:
        if not self.loaded:
            self.update((zone, zone) for zone in zoneinfo.available_timezones())
            self.loaded = True
            if name in self:
                return self[name]
        raise ValueError("unknown IANA time zone")


_check_zone: Final = _KnownZones().__getitem__


class _LocalTimes(dict[str, time]):
    """Every text LOCAL_TIME_PATTERN admits ("HH:MM", "HH:MM:00"), mapped to its local time.

    A LocalTime read from JSON is this dict's own `__getitem__` (a C method, no Python frame)
    instead of the pattern's regex and the time parser (~1.2k instructions a value, seven a
    realistic preferences.set: issue 20); the times are immutable, so every event shares them.
    The dict is filled on its first miss (not at import), with exactly the 2,880 texts the
    pattern admits (tests/property/test_ingest14_local_times.py compares the two): bounded,
    and no input is ever stored. Any other text reaches `__missing__` and raises ValueError.
    """

    loaded = False

    def __missing__(self, text: str) -> time:
        if not self.loaded:
            for hour in range(24):
                for minute in range(60):
                    value = time(hour, minute)
                    self[f"{hour:02d}:{minute:02d}"] = value
                    self[f"{hour:02d}:{minute:02d}:00"] = value
            self.loaded = True
            if text in self:
                return self[text]
        raise ValueError("not a local time as HH:MM")


_read_local_time: Final = _LocalTimes().__getitem__


def _check_local_time(value: time) -> time:
    if value.tzinfo is not None:
        raise ValueError("a local time must not carry a UTC offset; the partner's zone applies")
    if value.second or value.microsecond:
        raise ValueError("local times have minute precision (HH:MM)")
    return value


def _exact_int(value: Any) -> Any:
    """Refuses true/false and 1.0 where a Literal of ints is expected (Python's True == 1)."""
    if type(value) is not int:
        raise ValueError("must be an integer")
    return value


# Ids end up inside Redis keys and hash tags, so they exclude braces, colons and whitespace.
SafeId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
TimeZoneName = Annotated[
    str,
    StringConstraints(max_length=64),
    Checked(ZONE_PATTERN, "not a canonical IANA time zone name (Area/Location, or UTC)"),
    AfterValidator(_check_zone),
]
LocalTime = Annotated[
    time,
    Checked(
        LOCAL_TIME_PATTERN,
        "must be a local time as HH:MM, minute precision (no UTC offset: the partner's zone "
        "applies)",
        raw_text=True,
        drop_format=True,
        python_after=_check_local_time,  # the pattern allows neither in JSON text
        json_lookup=_read_local_time,
    ),
]
LocalDate = Annotated[date, Checked(DATE_PATTERN, "must be a date as YYYY-MM-DD", raw_text=True)]
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    Checked(
        NAME_PATTERN,
        "control, invisible and line-separator characters, and leading or trailing "
        "whitespace, are not allowed",
    ),
]
Email = Annotated[
    str,
    StringConstraints(max_length=254),
    Checked(
        EMAIL_PATTERN,
        'not an email address: one @, a dot in the domain; no spaces, controls or <>,;:"',
    ),
]
Instant = Annotated[
    AwareDatetime,
    Checked(
        INSTANT_PATTERN,
        "must be an ISO 8601 date and time with a UTC offset, as a string (2026-03-01T10:00:00Z)",
        raw_text=True,
        drop_format=True,
    ),
]
EventId = Annotated[
    uuid.UUID,
    Checked(UUID_PATTERN, "must be a UUID as 8-4-4-4-12 hex digits, as a string", raw_text=True),
]
Producer = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:/-]+$")
]
ExactInt = BeforeValidator(_exact_int)  # Annotated[Literal[1, 2], ExactInt]


def added_field(default: Any = None, **field: Any) -> Any:
    """A field added to an event within its version (docs/publishers.md, "How the contracts
    evolve"): optional, and left out of the JSON while it holds its default.

    Every model forbids unknown fields, so a plain optional field would be written as
    `"name": null` by a publisher on a newer schemas package, and an older service would
    refuse every such event, whether or not the publisher used the field. Left out, the
    event is one the older service reads; only an event that sets the field needs the newer
    service. tests/unit/test_contract_evolution.py holds what the models write to the v1
    baseline.
    """
    return Field(default=default, exclude_if=lambda value: value == default, **field)


class Envelope(StrictModel):
    """What every event carries: a versioned type, a unique id, when it happened, who sent it."""

    event_id: EventId
    occurred_at: Instant
    producer: Producer = Field(description="Name of the publishing app or service.")
