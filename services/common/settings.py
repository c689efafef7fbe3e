"""Configuration from the environment: one validated object per service, built once at start.

Nothing else reads os.environ. Every variable is prefixed NUDGE_ except REDIS_URL, the
conventional name (NUDGE_REDIS_URL works too). Every secret (a SecretStr field, here or in a
service's settings) can also come from a file named by `<VARIABLE>_FILE`
(services/common/secret_files.py).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    AwareDatetime,
    BeforeValidator,
    Field,
    SecretStr,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from redis.asyncio import ConnectionPool

from couples_nudge.common.keys import Keys
from couples_nudge.common.secret_files import SecretFileSource

__all__ = ["CommonSettings", "Duration", "PositiveDuration"]

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_URL_FORM: Final = (
    "REDIS_URL must be redis://[user:password@]host[:port][/db], rediss://... (TLS) or "
    "unix:///path, with only redis-py's connection options as query parameters"
)

_SECONDS: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def _seconds(value: object) -> object:
    """A duration given as a number of seconds (`60`, `1.5`) as that many seconds: pydantic
    reads a number in a string only as ISO 8601 (`PT60S`), and refuses `60`."""
    if isinstance(value, str) and _SECONDS.fullmatch(value.strip()):
        return float(value)
    return value


# Durations: ISO 8601 (`PT4H`, `P30D`) or seconds. None of ours means anything below zero, and
# most nothing at zero either (a reclaimer idle time of 0 spins; a retention of 0 keeps
# nothing), so each says its lower bound.
Duration = Annotated[timedelta, BeforeValidator(_seconds), Field(ge=timedelta(0))]
PositiveDuration = Annotated[timedelta, BeforeValidator(_seconds), Field(gt=timedelta(0))]


def _check_redis_url(url: str) -> None:
    """ValueError (a fixed text, never the URL: it may hold a password) unless redis-py can
    build a connection from `url`: the scheme, port, db and query options are checked at
    start, where a wrong one is an invalid setting, not an unexpected error at the first
    connection (a query option it does not know fails only when the connection is made)."""
    try:
        path = urlsplit(url).path.strip("/")
        pool = ConnectionPool.from_url(url)
        pool.make_connection()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
    except (ValueError, TypeError):
        raise ValueError(REDIS_URL_FORM) from None
    if not url.startswith("unix:") and path and not path.isdigit():
        raise ValueError(REDIS_URL_FORM)  # redis-py would silently use db 0


class CommonSettings(BaseSettings):
    # No `inf` or `nan` for a number: a timeout or a period of either never ends or never
    # compares.
    model_config = SettingsConfigDict(
        env_prefix="NUDGE_", extra="ignore", frozen=True, allow_inf_nan=False
    )

    redis_url: SecretStr = Field(
        default=SecretStr(DEFAULT_REDIS_URL),
        validation_alias=AliasChoices("REDIS_URL", "NUDGE_REDIS_URL"),
        description="redis:// or rediss:// URL, may carry user and password (never logged).",
    )
    redis_cluster: bool = Field(
        default=False, description="REDIS_URL names a node of a Redis Cluster."
    )
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")] = "nudges"
    shards: Annotated[int, Field(ge=1, le=1024)] = 1
    preferences_maxlen: Annotated[int, Field(ge=1000)] = 1_000_000
    due_maxlen: Annotated[int, Field(ge=1000)] = 1_000_000
    outcomes_maxlen: Annotated[int, Field(ge=1000)] = 1_000_000
    rejected_maxlen: Annotated[int, Field(ge=100)] = 100_000
    dead_maxlen: Annotated[int, Field(ge=100)] = 100_000
    reclaim_idle: PositiveDuration = Field(
        default=timedelta(seconds=60),
        description="A pending message idle this long (its consumer died) is claimed again.",
    )
    max_deliveries: Annotated[int, Field(ge=1)] = Field(
        default=5, description="Deliveries before a message that keeps failing is dead-lettered."
    )
    shutdown_timeout: PositiveDuration = Field(
        default=timedelta(seconds=10),
        le=timedelta(minutes=10),
        description="The whole budget from SIGTERM to exit: work unfinished by then is left "
        "pending for another replica.",
    )
    consumer_name: str | None = Field(
        default=None, description="Unique per process; default hostname-pid."
    )
    clock_speed: Annotated[float, Field(gt=0)] = Field(
        default=1.0, description="Simulated seconds per real second (demos only)."
    )
    clock_start: AwareDatetime | None = Field(
        default=None, description="Simulated start instant; with clock_speed, for demos."
    )
    clock_anchor: float | None = Field(
        default=None,
        description="Unix time at which the simulated clock reads clock_start (shared by "
        "several processes); default: process start.",
    )
    http_host: str = Field(default="127.0.0.1", description="Where the HTTP listeners listen.")
    http_port: Annotated[int, Field(ge=0, le=65535)] | None = Field(
        default=None,
        description="HTTP port (everything, or only the public pages when operator_port is "
        "set); unset disables it, 0 picks a free port.",
    )
    operator_port: Annotated[int, Field(ge=0, le=65535)] | None = Field(
        default=None,
        description="A second port for operators (/healthz, /readyz, /metrics, /status): "
        "when set, those leave http_port, which then serves only public pages.",
    )
    http_deadline_seconds: Annotated[float, Field(gt=0, le=300)] = Field(
        default=10.0,
        description="Longest an HTTP request may take; past it the request is cancelled and "
        "answered 503 (Retry-After: 5): a Redis that stopped answering holds no request.",
    )
    state_check_seconds: Annotated[float, Field(gt=0, le=60)] = Field(
        default=2.0,
        description="How often a process checks that Redis still holds the services' state "
        "(the state marker) and that its consumer groups and subscribers are there.",
    )
    metrics_refresh_seconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=15.0, description="How often the Redis gauges behind /metrics are refreshed."
    )
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="after")
    def _distinct_ports(self) -> Self:
        if self.operator_port and self.operator_port == self.http_port:
            raise ValueError("operator_port must differ from http_port (or be unset)")
        return self

    @model_validator(mode="after")
    def _usable_redis_url(self) -> Self:
        # Here, not in a field validator: a field's error carries its input, the URL.
        _check_redis_url(self.redis_url.get_secret_value())
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The environment, then `<VARIABLE>_FILE` for secrets (never both for one setting)."""
        return (
            init_settings,
            env_settings,
            SecretFileSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    @property
    def keys(self) -> Keys:
        return Keys(prefix=self.key_prefix, shards=self.shards)
