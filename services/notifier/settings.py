"""Notifier configuration (environment variables prefixed NUDGE_).

Channels are switched on by configuring them: email always; Web Push when a VAPID key and
subject are set; the webhook when a URL and secret are set. Unsubscribe links (and their
HTTP endpoint) need both `public_url` and at least one `unsubscribe_secrets` entry.
Validation errors name the setting, never a secret's value.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import NoDecode

from services.common.settings import CommonSettings
from services.notifier.unsubscribe import parse_keys

__all__ = ["NotifierSettings"]


def _http_url(value: str, name: str, *, query: bool = False) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ValueError(f"{name} must be an http or https URL without a fragment")
    if parts.query and not query:
        raise ValueError(f"{name} must not have a query string")
    return value


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
    repeat_min_gap: timedelta = Field(
        default=timedelta(days=28),
        description="An item never comes back sooner; within the repeat window only when "
        "nothing fresh fits the receiver's love language.",
    )
    idempotency_retention: timedelta = timedelta(days=14)
    retry_base: timedelta = Field(
        default=timedelta(seconds=30), description="First wait after a transient failure."
    )
    retry_cap: timedelta = Field(default=timedelta(hours=1), description="Longest wait.")
    max_attempts: Annotated[int, Field(ge=1, le=50)] = Field(
        default=6, description="Send attempts before a nudge goes to the dead-letter stream."
    )
    retry_poll_seconds: Annotated[float, Field(gt=0)] = Field(
        default=1.0, description="How often due retries are moved back onto the due stream."
    )

    daily_cap_per_partner: Annotated[int, Field(ge=1, le=1000)] = Field(
        default=3, description="Most nudges one partner receives in any rolling 24 hours."
    )

    public_url: str | None = Field(
        default=None, description="Base URL of the notifier's HTTP side, for unsubscribe links."
    )
    unsubscribe_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="'kid:secret' entries, comma-separated; the first signs, all verify.",
    )

    vapid_private_key: SecretStr | None = Field(
        default=None, description="Web Push VAPID key: PEM, or base64url of the raw 32 bytes."
    )
    vapid_subject: str | None = Field(
        default=None, description="Web Push contact: mailto:ops@example.org or an https URL."
    )
    push_ttl: timedelta = Field(
        default=timedelta(hours=12),
        description="How long a push service keeps an undelivered push.",
    )
    push_link: str | None = Field(
        default=None,
        description="Deep link a push opens; may use {kind}, {couple_id}, {occurrence_id}.",
    )
    manage_url: str | None = Field(
        default=None,
        description="Where a partner manages their nudges; emails link to it when set.",
    )
    support_url: str | None = Field(
        default=None,
        description="Support for people who do not feel safe in their relationship, chosen "
        "by the operator; emails link to it when set (never hard-coded).",
    )
    push_timeout: Annotated[float, Field(gt=0, le=120)] = Field(
        default=10.0, description="Seconds per Web Push or webhook request."
    )
    push_concurrency: Annotated[int, Field(ge=1, le=256)] = Field(
        default=16, description="Open connections per HTTP channel (Web Push, webhook)."
    )

    webhook_url: str | None = Field(
        default=None, description="Push payloads are POSTed here (signed) for apps that push."
    )
    webhook_secret: SecretStr | None = Field(
        default=None, description="HMAC-SHA256 key of the X-Nudge-Signature header."
    )
    operator_token: SecretStr | None = Field(
        default=None,
        description="Unlocks dead-letter replay on the /status page (X-Operator-Token header).",
    )

    @field_validator("unsubscribe_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value, "public_url").rstrip("/")

    @field_validator("manage_url", "support_url")
    @classmethod
    def _link(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _http_url(value, str(info.field_name), query=True)

    @field_validator("push_link")
    @classmethod
    def _push_link(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            example = value.format(kind="k", couple_id="c", occurrence_id="o")
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                "push_link may only use the placeholders {kind}, {couple_id}, {occurrence_id}"
            ) from None
        _http_url(example, "push_link", query=True)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        # Checked here, not per field, so that an error never carries a secret as its input.
        if self.repeat_min_gap > self.repeat_window:
            raise ValueError("repeat_min_gap must not be longer than repeat_window")
        if (self.public_url is None) != (not self.unsubscribe_secrets):
            raise ValueError("public_url and unsubscribe_secrets go together (set both or none)")
        parse_keys(self.unsubscribe_secrets)
        if (self.vapid_private_key is None) != (self.vapid_subject is None):
            raise ValueError("vapid_private_key and vapid_subject go together")
        if self.vapid_private_key is not None and self.vapid_subject is not None:
            from services.notifier.channels.webpush import check_subject, load_vapid_key

            load_vapid_key(self.vapid_private_key)
            check_subject(self.vapid_subject)
        if (self.webhook_url is None) != (self.webhook_secret is None):
            raise ValueError("webhook_url and webhook_secret go together")
        if self.webhook_url is not None:
            _http_url(self.webhook_url, "webhook_url", query=True)
        return self

    @property
    def unsubscribe_enabled(self) -> bool:
        return self.public_url is not None and bool(self.unsubscribe_secrets)
