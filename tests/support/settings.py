"""Service settings pointed at the test server, isolated by the test's key prefix."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.scheduler.settings import SchedulerSettings


def scheduler_settings(redis_url: str, prefix: str, **overrides: Any) -> SchedulerSettings:
    return SchedulerSettings(redis_url=SecretStr(redis_url), key_prefix=prefix, **overrides)


def notifier_settings(redis_url: str, prefix: str, **overrides: Any) -> NotifierSettings:
    return NotifierSettings(redis_url=SecretStr(redis_url), key_prefix=prefix, **overrides)
