"""Cron expressions in every form the rules accept, for property tests.

Numbers, names (any case), lists, ranges, wrapping ranges ("22-2", "fri-mon"), equal ranges
("5-5"), steps ("*/3", "1-31/2", "5/15"), "?" in a day field, and croniter's extensions: "L" and
"a-L" days of the month, "15W", "D#n" and "LD" weekdays. Expressions the rules refuse are
rejected by the strategy, so every drawn expression is one a couple could send.
"""

from __future__ import annotations

from hypothesis import reject
from hypothesis import strategies as st

from couples_nudge.scheduler.rules import RuleError, validate_cron

__all__ = ["any_crons"]

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@st.composite
def _value(draw: st.DrawFn, low: int, high: int, names: tuple[str, ...] = ()) -> str:
    """One value, sometimes spelled as a name in any case."""
    number = draw(st.integers(low, high))
    if names and number - low < len(names) and draw(st.booleans()):
        name = names[number - low]
        return draw(st.sampled_from([name, name.upper(), name.capitalize()]))
    return str(number)


@st.composite
def _atom(draw: st.DrawFn, low: int, high: int, names: tuple[str, ...] = ()) -> str:
    """n, a-b (also wrapping, also equal), a-b/s or n/s."""
    form = draw(st.sampled_from(["n", "a-b", "a-b/s", "n/s", "a-a"]))
    first = draw(_value(low, high, names))
    if form == "n":
        return first
    step = f"/{draw(st.integers(1, max(1, high - low)))}"
    if form == "n/s":
        return f"{first}{step}"
    if form == "a-a":
        return f"{first}-{first}{draw(st.sampled_from(['', step]))}"
    last = draw(_value(low, high, names))
    return f"{first}-{last}{step if form == 'a-b/s' else ''}"


@st.composite
def _field(draw: st.DrawFn, low: int, high: int, names: tuple[str, ...] = ()) -> str:
    """'*', '*/s', or a list of one to three atoms."""
    kind = draw(st.sampled_from(["*", "*/s", "list", "list"]))
    if kind == "*":
        return "*"
    if kind == "*/s":
        return f"*/{draw(st.integers(1, high - low + 1))}"
    return ",".join(draw(st.lists(_atom(low, high, names), min_size=1, max_size=3)))


@st.composite
def _day_of_month(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["field", "field", "field", "?", "L", "a-L", "W", "list+L"]))
    if kind == "field":
        return draw(_field(1, 31))
    if kind == "?":
        return "?"
    if kind == "L":
        return draw(st.sampled_from(["L", "l"]))
    if kind == "a-L":
        return f"{draw(st.integers(1, 31))}-L"
    if kind == "W":
        return f"{draw(st.integers(1, 31))}W"
    return f"{draw(_field(1, 31))},L"


@st.composite
def _day_of_week(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["field", "field", "field", "?", "nth", "last"]))
    if kind == "field":
        return draw(_field(0, 7, WEEKDAYS))
    if kind == "?":
        return "?"
    count = draw(st.integers(1, 2))
    if kind == "nth":
        items = [f"{draw(_value(0, 7, WEEKDAYS))}#{draw(st.integers(1, 5))}" for _ in range(count)]
    else:
        items = [f"L{draw(st.integers(0, 7))}" for _ in range(count)]
    return ",".join(items)


@st.composite
def any_crons(
    draw: st.DrawFn,
    minutes: st.SearchStrategy[str] | None = None,
    hours: st.SearchStrategy[str] | None = None,
) -> str:
    """A five-field expression the rules accept; ``minutes``/``hours`` replace those fields."""
    fields = [
        draw(minutes if minutes is not None else _field(0, 59)),
        draw(hours if hours is not None else _field(0, 23)),
        draw(_day_of_month()),
        draw(_field(1, 12, MONTHS)),
        draw(_day_of_week()),
    ]
    expr = " ".join(fields)
    try:
        validate_cron(expr)
    except RuleError:
        reject()
    return expr
