"""Duration settings read as the README says (ISO 8601 or seconds) and refuse what means nothing:
a negative duration, zero where zero would spin or keep nothing, and `inf` / `nan` numbers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from couples_nudge.common.settings import CommonSettings
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.scheduler.settings import SchedulerSettings

CLASSES = (CommonSettings, SchedulerSettings, NotifierSettings)

DURATIONS = sorted(
    {
        (cls, name)
        for cls in CLASSES
        for name, field in cls.model_fields.items()
        if field.annotation is timedelta and name not in CommonSettings.model_fields
    }
    | {
        (CommonSettings, n)
        for n, f in CommonSettings.model_fields.items()
        if f.annotation is timedelta
    },
    key=lambda pair: (pair[0].__name__, pair[1]),
)
# Zero means something for these: no minimum, no repeat avoidance, a push delivered now or
# never, no event dated ahead of the clock.
ZERO_ALLOWED = {"min_interval", "repeat_window", "repeat_min_gap", "push_ttl", "future_tolerance"}


def variable(name: str) -> str:
    return f"NUDGE_{name.upper()}"


def refused(cls: type[CommonSettings], name: str) -> bool:
    try:
        cls()
    except ValidationError as exc:
        return any(error["loc"] == (name,) for error in exc.errors())
    return False


def test_the_durations_are_found() -> None:
    """The lists below are read from the classes: a new duration setting is checked too."""
    names = {name for _, name in DURATIONS}
    assert {"reclaim_idle", "shutdown_timeout", "grace_check_in", "retry_base"} <= names


@pytest.mark.parametrize(("given", "seconds"), [("90", 90.0), ("1.5", 1.5), ("PT4H", 14400.0)])
def test_seconds_or_iso_8601(monkeypatch: pytest.MonkeyPatch, given: str, seconds: float) -> None:
    """ "Durations accept ISO 8601 (`PT4H`) or seconds" (README, Configuration)."""
    monkeypatch.setenv("NUDGE_RECLAIM_IDLE", given)
    monkeypatch.setenv("NUDGE_RETRY_CAP", given)
    assert CommonSettings().reclaim_idle == timedelta(seconds=seconds)
    assert NotifierSettings().retry_cap == timedelta(seconds=seconds)


@pytest.mark.parametrize(("cls", "name"), DURATIONS, ids=lambda v: getattr(v, "__name__", v))
@pytest.mark.parametrize("given", ["-PT1S", "-5"])
def test_a_negative_duration_is_refused(
    monkeypatch: pytest.MonkeyPatch, cls: type[CommonSettings], name: str, given: str
) -> None:
    monkeypatch.setenv(variable(name), given)
    assert refused(cls, name)


@pytest.mark.parametrize(("cls", "name"), DURATIONS, ids=lambda v: getattr(v, "__name__", v))
def test_zero_is_refused_where_it_means_nothing(
    monkeypatch: pytest.MonkeyPatch, cls: type[CommonSettings], name: str
) -> None:
    """A reclaimer idle time of 0 claims every entry every pass and spins (measured: 70% of a
    core with nothing to do); retry waits, retentions and grace windows of 0 keep nothing."""
    monkeypatch.setenv(variable(name), "PT0S")
    if name == "repeat_min_gap":
        monkeypatch.setenv("NUDGE_REPEAT_WINDOW", "PT0S")  # at most the window
    assert refused(cls, name) is (name not in ZERO_ALLOWED)


@pytest.mark.parametrize("given", ["inf", "-inf", "nan"])
@pytest.mark.parametrize("name", ["smtp_timeout", "clock_speed", "retry_poll_seconds"])
def test_numbers_are_finite(monkeypatch: pytest.MonkeyPatch, given: str, name: str) -> None:
    """An SMTP timeout of `inf` never times out; a clock speed of `nan` compares to nothing."""
    monkeypatch.setenv(variable(name), given)
    assert refused(NotifierSettings, name)
