"""Which kind of check-in a couple's plan asks for. Pure.

A plan may say so (`format`); otherwise a monthly cadence gets the monthly guide (a structured
talk with an agenda) and every more frequent cadence (weekly, several times a week, daily, raw
cron) gets one question at a time.
"""

from __future__ import annotations

from couples_nudge_schemas import CheckInFormat, NudgePlan

__all__ = ["check_in_format"]


def check_in_format(plan: NudgePlan | None) -> CheckInFormat | None:
    """The format of the couple's check-ins, or None without a check-in plan."""
    if plan is None:
        return None
    if plan.format is not None:
        return plan.format
    return "monthly_guide" if plan.cadence.repeat == "monthly" else "question"
