"""Notifier configuration (environment variables prefixed NUDGE_)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import Field, SecretStr

from services.common.settings import CommonSettings

__all__ = ["NotifierSettings"]


class NotifierSettings(CommonSettings):
    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 1025
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: Annotated[float, Field(gt=0)] = 10.0
    smtp_concurrency: Annotated[int, Field(ge=1, le=64)] = 4
    sender: str = Field(default="Nudges <nudges@localhost>", description="From: header.")
    batch_size: Annotated[int, Field(ge=1, le=1000)] = 100
    max_in_flight: Annotated[int, Field(ge=1, le=1000)] = 32
    repeat_window: timedelta = Field(
        default=timedelta(days=90), description="A couple does not see an item again within it."
    )
    idempotency_retention: timedelta = timedelta(days=14)
