"""Scheduler configuration (environment variables prefixed NUDGE_)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field

from couples_nudge.common.settings import CommonSettings, Duration, PositiveDuration
from couples_nudge_schemas import NudgeKind

__all__ = ["SchedulerSettings"]


class SchedulerSettings(CommonSettings):
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 1000
    max_poll_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        default=0.2, description="Longest real-time sleep of the timer loop between checks."
    )
    lookahead_seconds: Annotated[float, Field(ge=0, le=60)] = Field(
        default=2.0,
        description=(
            "Real seconds before an instant at which the timer loop prepares its FIRE calls "
            "(timers and records read, payloads built; nothing sent before the instant), at "
            "least: earlier for a burst that would take longer to prepare; 0 disables it."
        ),
    )
    lookahead_max: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        default=100_000,
        description="Most fires held prepared at once (~1 KB each); more are fired as usual.",
    )
    lease_policy: Literal["auto", "one", "fair"] = Field(
        default="auto",
        description=(
            "Which replicas fire (services/scheduler/leases.py): one fires every shard and the "
            "others stand by (one), or each fires a fair share (fair); auto: one on a single "
            "server, fair on a cluster."
        ),
    )
    min_interval: Duration = Field(
        default=timedelta(hours=4), description="Raw cron may not fire more often than this."
    )
    grace_date_night: PositiveDuration = timedelta(hours=3)
    grace_check_in: PositiveDuration = timedelta(hours=6)
    grace_appreciation: PositiveDuration = timedelta(hours=6)
    tombstone_retention: PositiveDuration = Field(
        default=timedelta(days=30),
        description="How long an erasure blocks replays of the couple's older events.",
    )

    future_tolerance: Annotated[Duration, Field(le=timedelta(days=1))] = Field(
        default=timedelta(minutes=5),
        description=(
            "How far ahead of the service's clock an event's occurred_at may be; a later one "
            "is rejected (it would win over every later event until its date)."
        ),
    )

    soft_bounce_limit: Annotated[int, Field(ge=1, le=100)] = Field(
        default=3, description="Soft bounces within soft_bounce_window that mark an email dead."
    )
    soft_bounce_window: PositiveDuration = Field(
        default=timedelta(days=30),
        description="Soft bounces further apart than this are not counted together.",
    )

    def grace(self, kind: NudgeKind) -> timedelta:
        grace: timedelta = getattr(self, f"grace_{kind}")
        return grace
