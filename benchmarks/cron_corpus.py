"""Generated raw crons and human cadences for the crons benchmark: seeded, so every run plans
the same corpus.

Raw crons take every field form the schema accepts (numbers, names, lists, ranges, wrapping
and equal ranges, steps, '?', L, a-L, W, D#n, LD); half are shaped like a power user's
(one or a few minutes, hours a few hours apart), half are drawn from every form, so many
of those fire too often and are refused by the minimum interval -- which is part of
ingestion too. The expressions that were slow to plan (issue #20: '0 */4 * * *',
'30 8 * * 1-5', '0 9,21 * * *') are always in.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from typing import Any

from croniter import croniter

__all__ = ["ZONES", "cadences", "everyday_crons", "raw_crons"]

PINNED = ("0 */4 * * *", "30 8 * * 1-5", "0 9,21 * * *", "30 1 17 * */3", "0 9 */2 * *")
ZONES = (
    "Europe/Berlin",
    "America/New_York",
    "Australia/Lord_Howe",
    "Antarctica/Troll",
    "Asia/Kathmandu",
    "Pacific/Chatham",
    "America/Santiago",
    "Europe/London",
    "UTC",
)
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _value(rng: random.Random, low: int, high: int, names: tuple[str, ...] = ()) -> str:
    number = rng.randint(low, high)
    if names and number - low < len(names) and rng.random() < 0.3:
        return rng.choice([str.lower, str.upper, str.capitalize])(names[number - low])
    return str(number)


def _atom(rng: random.Random, low: int, high: int, names: tuple[str, ...] = ()) -> str:
    first = _value(rng, low, high, names)
    form = rng.choice(["n", "n", "a-b", "a-b/s", "n/s", "a-a"])
    step = f"/{rng.randint(1, max(1, high - low))}"
    if form == "n":
        return first
    if form == "n/s":
        return first + step
    if form == "a-a":
        return f"{first}-{first}"
    last = _value(rng, low, high, names)
    return f"{first}-{last}{step if form == 'a-b/s' else ''}"


def _field(rng: random.Random, low: int, high: int, names: tuple[str, ...] = ()) -> str:
    roll = rng.random()
    if roll < 0.3:
        return "*"
    if roll < 0.45:
        return f"*/{rng.randint(1, high - low + 1)}"
    return ",".join(_atom(rng, low, high, names) for _ in range(rng.choice([1, 1, 2, 3])))


def _day_of_month(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.08:
        return "?"
    if roll < 0.14:
        return "L"
    if roll < 0.18:
        return f"{rng.randint(1, 28)}-L"
    if roll < 0.24:
        return f"{rng.randint(1, 31)}W"
    return _field(rng, 1, 31)


def _day_of_week(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.08:
        return "?"
    if roll < 0.16:
        return ",".join(
            f"{_value(rng, 0, 7, WEEKDAYS)}#{rng.randint(1, 5)}" for _ in range(rng.randint(1, 2))
        )
    if roll < 0.22:
        return f"L{rng.randint(0, 7)}"
    return _field(rng, 0, 7, WEEKDAYS)


def _power_user(rng: random.Random) -> list[str]:
    """One to two minutes; one hour, a short list, a range or a step of hours."""
    minute = rng.choice([str(rng.randint(0, 59)), f"{rng.randint(0, 29)},{rng.randint(30, 59)}"])
    hour = rng.choice(
        [
            str(rng.randint(0, 23)),
            f"{rng.randint(0, 11)},{rng.randint(12, 23)}",
            f"*/{rng.randint(2, 12)}",
            f"{rng.randint(6, 9)}-{rng.randint(17, 22)}/{rng.randint(3, 6)}",
        ]
    )
    return [minute, hour]


def raw_crons(count: int, seed: int = 20, power_users: float = 0.5) -> list[str]:
    """`count` distinct expressions croniter (the schema's validator) accepts; a share of
    `power_users` with a power user's minutes and hours, the rest of every form."""
    rng = random.Random(seed)
    found: dict[str, None] = dict.fromkeys(PINNED)
    while len(found) < count:
        if rng.random() < power_users:
            head = _power_user(rng)
        else:
            head = [_field(rng, 0, 59), _field(rng, 0, 23)]
        expr = " ".join([*head, _day_of_month(rng), _field(rng, 1, 12, MONTHS), _day_of_week(rng)])
        if len(expr) <= 120 and croniter.is_valid(expr):
            found[expr] = None
    return list(found)[:count]


def everyday_crons(count: int, seed: int = 22) -> list[str]:
    """`count` distinct crons as people write them: a minute, an hour or a few, every day or
    some weekdays, now and then a day of the month, the last day, an n-th weekday, a season."""
    rng = random.Random(seed)
    found: dict[str, None] = {}
    while len(found) < count:
        minute = str(rng.choice([0, 0, 15, 30, 45, rng.randint(0, 59)]))
        hour = rng.choice(
            [
                str(rng.randint(6, 22)),
                f"{rng.randint(6, 11)},{rng.randint(16, 22)}",
                f"*/{rng.choice([4, 6, 8, 12])}",
                f"{rng.randint(6, 9)}-{rng.randint(18, 21)}/{rng.choice([4, 5, 6])}",
            ]
        )
        day_of_month = rng.choice(["*"] * 8 + ["?", str(rng.randint(1, 28)), "1,15", "L"])
        month = rng.choice(["*"] * 9 + ["*/3", "jun-aug", "11-2"])
        day_of_week = rng.choice(
            ["*"] * 4
            + ["1-5", "mon-fri", "0,6", "sat,sun", str(rng.randint(0, 6))]
            + [rng.choice(WEEKDAYS), f"{rng.randint(0, 6)}#{rng.randint(1, 4)}", "L5", "?"]
        )
        if day_of_month == "?" and day_of_week == "?":
            continue
        expr = f"{minute} {hour} {day_of_month} {month} {day_of_week}"
        if croniter.is_valid(expr):
            found[expr] = None
    return list(found)


def cadences(count: int, seed: int = 21) -> Iterator[dict[str, Any]]:
    """Weekly (every 1-4 weeks), monthly by day and by n-th weekday, times-per-week."""
    rng = random.Random(seed)
    for _ in range(count):
        at = f"{rng.randint(0, 23):02d}:{rng.randrange(0, 60, 5):02d}"
        weekday = rng.choice(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
        kind = rng.choice(["weekly", "monthly_day", "monthly_nth", "times_per_week"])
        if kind == "weekly":
            every = rng.randint(1, 4)
            anchor = date(2026, 1, 1).replace(day=rng.randint(1, 28)).isoformat()
            yield {"repeat": "weekly", "weekday": weekday, "at": at, "every_weeks": every} | (
                {"anchor": anchor} if every > 1 else {}
            )
        elif kind == "monthly_day":
            yield {"repeat": "monthly", "at": at, "day": rng.randint(1, 28)}
        elif kind == "monthly_nth":
            nth = rng.choice([1, 2, 3, 4, -1])
            yield {"repeat": "monthly", "at": at, "weekday": weekday, "nth": nth}
        else:
            start = rng.randint(0, 20)
            end = rng.randint(start + 1, 23)
            window = {"start": f"{start:02d}:00", "end": f"{end:02d}:30"}
            yield {"repeat": "times_per_week", "times": rng.randint(1, 7), "between": window}
