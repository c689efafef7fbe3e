"""Specification of couples_nudge.common.couple_state: the couple hash as the notifier reads it.

Field values are "<occurred_ms>|<value>" as the scheduler's last-writer-wins script stores
them; ``pause_value`` builds the pause form of that string.
"""

from __future__ import annotations

import json
import uuid
from datetime import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from couples_nudge.common.couple_state import (
    CoupleState,
    UnreadableCouple,
    encode_profile,
    parse_couple,
    pause_value,
)
from couples_nudge_schemas import (
    CheckInFormat,
    CoupleContext,
    CronCadence,
    MonthlyCadence,
    NudgePlan,
    Nudges,
    Partner,
    PreferencesSetData,
    PushSubscription,
    QuietHours,
    TimesPerWeekCadence,
    TimeWindow,
    WeeklyCadence,
)

KINDS = ("date_night", "check_in", "appreciation")
CHANNELS = ("email", "push", "webhook")


def state(**fields: str) -> CoupleState:
    """A couple state from hash fields; keyword names use __ for ':' (pause__sam -> pause:sam)."""
    return CoupleState(profile=None, fields={k.replace("__", ":"): v for k, v in fields.items()})


class TestPauseValue:
    @pytest.mark.parametrize(
        ("occurred_ms", "until_ms", "resume", "expected"),
        [
            (1000, None, False, "1000|inf"),
            (1000, 5000, False, "1000|5000"),
            (1000, None, True, "1000|off"),
            (1000, 5000, True, "1000|off"),
        ],
    )
    def test_encoding(
        self, occurred_ms: int, until_ms: int | None, resume: bool, expected: str
    ) -> None:
        """A pause is stored with when it happened and until when: an instant, inf, or off."""
        assert pause_value(occurred_ms, until_ms, resume=resume) == expected


class TestPaused:
    @pytest.mark.parametrize(
        ("value", "now_ms", "paused"),
        [
            ("1000|inf", 1000, True),
            ("1000|inf", 10**15, True),
            ("1000|5000", 4999, True),
            ("1000|5000", 5000, False),  # `until` is the first instant no longer paused
            ("1000|5000", 6000, False),
            ("1000|off", 2000, False),
        ],
    )
    def test_couple_pause(self, value: str, now_ms: int, paused: bool) -> None:
        """A couple pause holds for both partners: forever, until an instant, or not at all."""
        s = state(pause=value)
        assert s.paused("maya", now_ms) is paused
        assert s.paused("sam", now_ms) is paused

    def test_no_pause(self) -> None:
        """Without any pause field nobody is paused."""
        assert state().paused("maya", 0) is False

    def test_partner_pause(self) -> None:
        """A partner-level pause stops that partner only."""
        s = state(pause__sam="1000|inf")
        assert s.paused("sam", 2000) is True
        assert s.paused("maya", 2000) is False

    def test_partner_pause_survives_couple_resume(self) -> None:
        """Resuming the couple does not undo one partner's own pause."""
        s = state(pause="2000|off", pause__sam="1000|inf")
        assert s.paused("sam", 3000) is True
        assert s.paused("maya", 3000) is False

    def test_couple_pause_overrides_partner_resume(self) -> None:
        """A couple pause holds even for a partner who resumed their own."""
        s = state(pause="2000|9000", pause__sam="1000|off")
        assert s.paused("sam", 3000) is True

    def test_partner_pause_until(self) -> None:
        """A partner's timed pause ends at its instant."""
        s = state(pause__maya="1000|5000")
        assert s.paused("maya", 4999) is True
        assert s.paused("maya", 5000) is False

    @given(until=st.integers(0, 2**45), now=st.integers(0, 2**45))
    def test_timed_pause_property(self, until: int, now: int) -> None:
        """Built with pause_value, a timed pause holds exactly while now < until."""
        s = state(pause__sam=pause_value(0, until))
        assert s.paused("sam", now) is (now < until)


class TestUnsubscribed:
    @pytest.mark.parametrize(
        ("field", "blocked"),
        [
            (
                "unsub:sam:check_in:push",
                {("sam", "check_in", "push")},
            ),
            (
                "unsub:sam:all:push",
                {("sam", kind, "push") for kind in KINDS},
            ),
            (
                "unsub:sam:check_in:all",
                {("sam", "check_in", channel) for channel in CHANNELS},
            ),
            (
                "unsub:sam:all:all",
                {("sam", kind, channel) for kind in KINDS for channel in CHANNELS},
            ),
        ],
    )
    def test_kind_and_channel(self, field: str, blocked: set[tuple[str, str, str]]) -> None:
        """An unsubscribe covers its kind (or all) on its channel (or all), for one partner."""
        s = CoupleState(profile=None, fields={field: "1000|1"})
        actual = {
            (partner, kind, channel)
            for partner in ("maya", "sam")
            for kind in KINDS
            for channel in CHANNELS
            if s.unsubscribed(partner, kind, channel)
        }
        assert actual == blocked

    def test_nothing_unsubscribed(self) -> None:
        """Without unsubscribe fields everything is allowed."""
        assert state().unsubscribed("sam", "check_in", "email") is False


class TestChannelDead:
    def test_dead_channel(self) -> None:
        """A channel marked dead is dead for that partner only, and only that channel."""
        s = CoupleState(profile=None, fields={"dead:sam:email": "1000"})
        assert s.channel_dead("sam", "email") is True
        assert s.channel_dead("sam", "push") is False
        assert s.channel_dead("maya", "email") is False


def profile() -> PreferencesSetData:
    return PreferencesSetData(
        couple_id="c1",
        revision=4,
        partners=(
            Partner(
                partner_id="maya",
                name="Maya",
                timezone="Europe/Berlin",
                channels=["email"],
                email="maya@example.org",
            ),
            Partner(
                partner_id="sam",
                name="Sam",
                timezone="America/New_York",
                channels=["email"],
                email="sam@example.org",
            ),
        ),
        nudges=Nudges(
            date_night=NudgePlan(
                cadence=WeeklyCadence(repeat="weekly", weekday="fri", at=time(19, 0))
            )
        ),
        discreet=True,
    )


def varied() -> PreferencesSetData:
    """Every optional part of a profile set, as the scheduler stores it (no nudge plans)."""
    return PreferencesSetData(
        couple_id="c-2.x",
        revision=9,
        partners=(
            Partner(
                partner_id="maya",
                name="Maya | Lu",
                timezone="America/Argentina/Buenos_Aires",
                locale="pt-BR",
                channels=["push", "webhook", "email"],
                email="m|a@example.org",
                push=PushSubscription(
                    endpoint="https://push.example.org/send/abc", p256dh="BNc_x-1=", auth="q-1_"
                ),
                love_languages=["physical_touch", "words_of_affirmation", "receiving_gifts"],
                quiet_hours=QuietHours(start=time(23, 30), end=time(6, 15), policy="drop"),
            ),
            Partner(
                partner_id="sam",
                name="Sam",
                timezone="Asia/Kolkata",
                channels=["webhook"],
                love_languages=["acts_of_service", "quality_time"],
                quiet_hours=QuietHours(start=time(13, 0), end=time(14, 0)),
            ),
        ),
        nudges=Nudges(),
        focus_areas=["conflict", "emotional", "physical", "intellectual", "experiential"],
        discreet=True,
    )


def stored(prefs: PreferencesSetData, **extra: str) -> dict[bytes, bytes]:
    """The couple hash as the scheduler writes it, plus extra fields (same __ convention)."""
    fields = {"rev": str(prefs.revision), **encode_profile(prefs)}
    fields |= {k.replace("__", ":"): v for k, v in extra.items()}
    return {k.encode(): v.encode() for k, v in fields.items()}


class TestParseCouple:
    def test_full_hash(self) -> None:
        """The profile fields become the preferences; records become "sids"; the rest is text."""
        raw = stored(profile(), pause__sam="1000|inf", unsub__maya__all__push="1000|1")
        raw |= {b"d/maya": b"0|1|00|e0 19 * * 5", b"d/sam": b"0|1|11|e0 19 * * 5"}
        s = parse_couple(raw)
        assert s.exists is True
        assert s.profile == profile().model_copy(update={"nudges": Nudges()})
        assert s.fields == {
            "rev": "4",
            "sids": "c1/d/maya,c1/d/sam",
            "pause:sam": "1000|inf",
            "unsub:maya:all:push": "1000|1",
        }
        assert s.paused("sam", 2000) is True
        assert s.unsubscribed("maya", "date_night", "push") is True

    def test_every_part_of_a_profile(self) -> None:
        """Locale, channels, push, love languages, quiet hours, focus and '|' in text survive."""
        s = parse_couple(stored(varied()))
        assert s.profile == varied()
        assert s.profile.model_dump_json() == varied().model_dump_json()
        assert s.fields == {"rev": "9", "sids": ""}

    def test_a_cached_profile_follows_the_stored_bytes(self) -> None:
        """Decoded profiles are cached by their bytes: a changed field is never served stale."""
        first = parse_couple(stored(varied()))
        renamed = varied().partners[1].model_copy(update={"name": "Samuel"})
        changed = varied().model_copy(update={"partners": (varied().partners[0], renamed)})
        again = parse_couple(stored(changed))
        assert first.profile is not None
        assert again.profile is not None
        assert (first.profile.partners[1].name, again.profile.partners[1].name) == ("Sam", "Samuel")

    def test_defaults_store_nothing(self) -> None:
        """Default locale, focus areas and discretion take no field."""
        fields = encode_profile(profile().model_copy(update={"discreet": False}))
        assert set(fields) == {"id", "s0", "s1", "n0", "n1", "c0", "c1"}
        assert "q0" in encode_profile(varied())
        assert fields["c0"] == "|e||maya@example.org"

    def test_values_fit_a_listpack(self) -> None:
        """Without a push subscription every value stays within hash-max-listpack-value (64),
        even with UUIDs for ids (and a zone name of up to 27 characters)."""
        prefs = varied()
        maya = prefs.partners[0].model_copy(
            update={
                "push": None,
                "channels": ["email"],
                "partner_id": str(uuid.uuid4()),
                "timezone": "America/Argentina/Catamarca",
            }
        )
        fields = encode_profile(prefs.model_copy(update={"partners": (maya, prefs.partners[1])}))
        assert max(len(v.encode()) for v in fields.values()) <= 64

    @pytest.mark.parametrize("piece", ["a", "\u00e9"])
    def test_a_long_push_subscription_is_kept_in_pieces(self, piece: str) -> None:
        """A push endpoint of 1,000 characters round-trips from values of at most 64 bytes."""
        push = PushSubscription(
            endpoint="https://push.example.org/" + piece * 975, p256dh="B" * 87, auth="a" * 22
        )
        maya = varied().partners[0].model_copy(update={"push": push})
        prefs = varied().model_copy(update={"partners": (maya, varied().partners[1])})
        fields = encode_profile(prefs)
        assert max(len(v.encode()) for v in fields.values()) <= 64
        assert len([f for f in fields if f.startswith("w0.")]) > 16
        profile = parse_couple(stored(prefs)).profile
        assert profile is not None
        assert profile.partners[0].push == push

    def test_scheduler_fields_hold_no_personal_data(self) -> None:
        """s0/s1, which the timer loop reads on every fire, carry ids, zones and quiet hours."""
        fields = encode_profile(varied())
        assert fields["s0"] == "maya|America/Argentina/Buenos_Aires"
        assert fields["s1"] == "sam|Asia/Kolkata"
        assert (fields["q0"], fields["q1"]) == ("23:30-06:15x", "13:00-14:00d")

    def test_legacy_profile_json(self) -> None:
        """A hash of the layout before issue 7 (profile JSON, "sids") parses as it always did."""
        raw = {
            b"rev": b"4",
            b"profile": profile().model_dump_json(exclude_defaults=True).encode(),
            b"sids": b"c1/d/maya,c1/d/sam",
            b"pause:sam": b"1000|inf",
        }
        s = parse_couple(raw)
        assert s.exists is True
        assert s.profile == profile()
        assert s.fields == {"rev": "4", "sids": "c1/d/maya,c1/d/sam", "pause:sam": "1000|inf"}

    def test_a_legacy_profile_the_schema_now_refuses_is_unreadable_without_quoting_it(
        self,
    ) -> None:
        """A name stored by an older, laxer schema (a right-to-left mark, allowed before
        9fbbd1c): UnreadableCouple, whose message and chain hold nothing stored (pydantic's
        own error quoted the name, and reached the log of a 500)."""
        stored = profile().model_dump(mode="json", exclude_defaults=True)
        stored["partners"][0]["name"] = "Lena\u200fSecret-Name"
        raw = {b"rev": b"1", b"profile": json.dumps(stored).encode()}
        with pytest.raises(UnreadableCouple) as caught:
            parse_couple(raw)
        assert "Secret-Name" not in str(caught.value)
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__

    def test_unknown_couple(self) -> None:
        """An empty hash (never set, or erased) is a couple that does not exist."""
        s = parse_couple({})
        assert s.exists is False
        assert s.profile is None
        assert s.fields == {}

    def test_fields_without_profile(self) -> None:
        """Fields without a profile still do not make the couple exist."""
        assert parse_couple({b"pause": b"1|inf"}).exists is False


MONTHLY = MonthlyCadence(repeat="monthly", weekday="sun", nth=1, at=time(20, 0))
WEEKLY = WeeklyCadence(repeat="weekly", weekday="sun", at=time(20, 0))
THRICE = TimesPerWeekCadence(
    repeat="times_per_week", times=3, between=TimeWindow(start=time(12), end=time(20))
)
CRON = CronCadence(repeat="cron", cron="0 20 * * *")


class TestContextAndCheckInFormat:
    @pytest.mark.parametrize(
        "context",
        [
            CoupleContext(living="apart", budget="free", avoid=["mobility"], children_at_home=True),
            CoupleContext(living="together", budget="low", children_at_home=False),
            CoupleContext(budget="any"),
            CoupleContext(avoid=["mobility"]),
        ],
    )
    def test_context_round_trips(self, context: CoupleContext) -> None:
        """Every part of a couple's context survives the couple hash, in one short field."""
        prefs = varied().model_copy(update={"context": context})
        fields = encode_profile(prefs)
        assert len(fields["x"]) <= 16
        parsed = parse_couple(stored(prefs)).profile
        assert parsed is not None
        assert parsed.context == context

    def test_no_context_takes_no_field(self) -> None:
        """Without a context or a check-in plan nothing is stored, and none is read back."""
        prefs = varied().model_copy(update={"context": CoupleContext()})
        assert "x" not in encode_profile(prefs)
        assert parse_couple(stored(varied())).check_in_format is None

    @pytest.mark.parametrize(
        ("plan", "expected"),
        [
            (NudgePlan(cadence=MONTHLY), "monthly_guide"),
            (NudgePlan(cadence=WEEKLY), "question"),
            (NudgePlan(cadence=THRICE), "question"),
            (NudgePlan(cadence=CRON), "question"),
            (NudgePlan(cadence=WEEKLY, format="monthly_guide"), "monthly_guide"),
            (NudgePlan(cadence=MONTHLY, format="question"), "question"),
        ],
    )
    def test_check_in_format_from_the_plan(self, plan: NudgePlan, expected: CheckInFormat) -> None:
        """A monthly cadence gets the guide, anything more frequent questions, unless the plan
        names its format; the notifier reads it back from the couple hash."""
        prefs = varied().model_copy(update={"nudges": Nudges(check_in=plan)})
        assert parse_couple(stored(prefs)).check_in_format == expected
