"""Notifier configuration (environment variables prefixed NUDGE_).

Channels are switched on by configuring them: email always; Web Push when a VAPID key and
subject are set; the webhook when a URL and secret are set; "mobile" when FCM (a
service-account key file) or APNs (a .p8 key file, key id and team id) or both are set.
Key material is read from files (mounted secrets), never from the environment itself.
Unsubscribe links (and their HTTP endpoint) need both `public_url` and at least one
`unsubscribe_secrets` entry.
Validation errors name the setting, never a secret's value.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Final, Literal, Self
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import NoDecode

from couples_nudge.common.settings import CommonSettings, Duration, PositiveDuration
from couples_nudge.notifier.unsubscribe import parse_keys

__all__ = ["NotifierSettings"]

_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}")


def _http_url(value: str, name: str, *, query: bool = False) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ValueError(f"{name} must be an http or https URL without a fragment")
    if parts.query and not query:
        raise ValueError(f"{name} must not have a query string")
    return value


_PROJECT: Final = r"^[a-z][a-z0-9-]{4,61}[a-z0-9]$"
_APPLE_ID: Final = r"^[A-Z0-9]{10}$"
_BUNDLE: Final = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$"


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
    repeat_window: Duration = Field(
        default=timedelta(days=90), description="A couple does not see an item again within it."
    )
    repeat_min_gap: Duration = Field(
        default=timedelta(days=28),
        description="An item never comes back sooner; within the repeat window only when "
        "nothing fresh fits the receiver's love language.",
    )
    idempotency_retention: PositiveDuration = timedelta(days=14)
    retry_base: PositiveDuration = Field(
        default=timedelta(seconds=30), description="First wait after a transient failure."
    )
    retry_cap: PositiveDuration = Field(default=timedelta(hours=1), description="Longest wait.")
    # 9: the waits (30 s doubling, capped at an hour) add up to 2 h 3 min, 1 h 39 min at
    # the least with the jitter, so a relay down for an hour is ridden out (6 gave up after
    # 12-19 minutes: docs/reliability.md).
    max_attempts: Annotated[int, Field(ge=1, le=50)] = Field(
        default=9, description="Send attempts before a nudge goes to the dead-letter stream."
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
    # FCM refuses an android.ttl over 28 days (400 INVALID_ARGUMENT for every send).
    push_ttl: Annotated[Duration, Field(le=timedelta(days=28))] = Field(
        default=timedelta(hours=12),
        description="How long a push service keeps an undelivered push (at most 28 days).",
    )
    push_link: str | None = Field(
        default=None,
        description="Deep link a push opens; may use {kind}, {couple_id}, {occurrence_id}.",
    )
    manage_url: str | None = Field(
        default=None,
        description="Where a partner manages their nudges; emails link to it when set.",
    )
    action_links: bool = Field(
        default=True,
        description="Signed action links (we did it, not this week, snooze, more, manage) in "
        "every email, push and webhook payload; need public_url and unsubscribe_secrets.",
    )
    action_link_ttl: PositiveDuration = Field(
        default=timedelta(days=30),
        description="How long a one-tap action link works (manage links do not expire); "
        "answers are remembered this long, so a link followed again changes nothing.",
    )
    listen_after: Annotated[int, Field(ge=2, le=20)] = Field(
        default=3,
        description="Listening cadence: nudges of a kind a partner leaves unanswered in a row "
        "before that kind comes one step less often for them (couples who opted in).",
    )
    support_url: str | None = Field(
        default=None,
        description="Support for people who do not feel safe in their relationship, chosen "
        "by the operator; emails link to it when set (never hard-coded).",
    )
    push_timeout: Annotated[float, Field(gt=0, le=120)] = Field(
        default=10.0, description="Seconds per Web Push, webhook, FCM or APNs request."
    )
    push_concurrency: Annotated[int, Field(ge=1, le=256)] = Field(
        default=16, description="Open connections per HTTP channel (Web Push, webhook, FCM, APNs)."
    )

    fcm_credentials_file: Path | None = Field(
        default=None, description="Google service-account JSON key file; enables FCM."
    )
    fcm_project_id: Annotated[str, StringConstraints(pattern=_PROJECT)] | None = Field(
        default=None, description="Firebase project id; defaults to the key file's project_id."
    )
    fcm_endpoint: str = Field(
        default="https://fcm.googleapis.com", description="FCM API origin (tests point it home)."
    )
    apns_key_file: Path | None = Field(
        default=None, description="APNs .p8 signing key file; enables APNs with key and team id."
    )
    apns_key_id: Annotated[str, StringConstraints(pattern=_APPLE_ID)] | None = Field(
        default=None, description="The .p8 key's 10-character key id."
    )
    apns_team_id: Annotated[str, StringConstraints(pattern=_APPLE_ID)] | None = Field(
        default=None, description="The Apple developer team id (10 characters)."
    )
    apns_topic: Annotated[str, StringConstraints(pattern=_BUNDLE)] | None = Field(
        default=None, description="Bundle id for iOS devices published without an app_id."
    )
    apns_environment: Literal["production", "sandbox"] = Field(
        default="production", description="api.push.apple.com or api.sandbox.push.apple.com."
    )
    apns_host: str | None = Field(
        default=None, description="APNs origin overriding the environment's (tests)."
    )
    mobile_ca_file: Path | None = Field(
        default=None, description="PEM CA bundle trusted for FCM, OAuth and APNs (tests)."
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

    # Relay webhooks for bounces and complaints (services/notifier/webhooks/): each endpoint is
    # served when its credential is set; all need unsubscribe_secrets (Message-IDs are signed).
    ses_topic_arns: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="SNS topic ARNs whose SES notifications are believed (comma-separated); "
        "enables POST /webhooks/ses.",
    )
    sns_cert_host_pattern: str = Field(
        default=r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?",
        description="Regex the host of SigningCertURL and SubscribeURL must match in full.",
    )
    sns_ca_file: Path | None = Field(
        default=None,
        description="CA bundle for fetching SNS certificates (default: the system's); tests.",
    )
    sendgrid_public_key: str | None = Field(
        default=None,
        description="SendGrid Event Webhook verification key (base64 DER or PEM, ECDSA "
        "P-256); enables POST /webhooks/sendgrid.",
    )
    postmark_webhook_user: str | None = None
    postmark_webhook_password: SecretStr | None = Field(
        default=None,
        description="Basic auth Postmark sends (with postmark_webhook_user); enables POST "
        "/webhooks/postmark.",
    )
    mailgun_signing_key: SecretStr | None = Field(
        default=None, description="Mailgun HTTP webhook signing key; enables /webhooks/mailgun."
    )
    dsn_secret: SecretStr | None = Field(
        default=None,
        description="Bearer token for POST /webhooks/dsn (RFC 3464 bounces sent by email).",
    )
    webhook_replay_window: PositiveDuration = Field(
        default=timedelta(minutes=5),
        le=timedelta(days=1),
        description="Signed webhook requests older (or newer) than this are refused; seen "
        "ones are remembered this long (and events a day) to refuse replays.",
    )
    webhook_max_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = Field(
        default=1024 * 1024, description="Largest webhook request body accepted."
    )
    dkim_key_file: Path | None = Field(
        default=None, description="PEM RSA private key that DKIM-signs every email."
    )
    dkim_selector: str | None = Field(default=None, description="DKIM selector (s=).")
    dkim_domain: str | None = Field(default=None, description="DKIM signing domain (d=).")

    @field_validator("unsubscribe_secrets", mode="before")
    @classmethod
    def _split_secrets(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("ses_topic_arns", mode="before")
    @classmethod
    def _split_arns(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("ses_topic_arns")
    @classmethod
    def _arns(cls, value: list[str]) -> list[str]:
        for arn in value:
            if not re.fullmatch(
                r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}", arn
            ):
                raise ValueError("ses_topic_arns must be SNS topic ARNs (arn:aws:sns:...)")
        return value

    @field_validator("sns_cert_host_pattern")
    @classmethod
    def _host_pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error:
            raise ValueError("sns_cert_host_pattern is not a regular expression") from None
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
            from couples_nudge.notifier.channels.webpush import check_subject, load_vapid_key

            load_vapid_key(self.vapid_private_key)
            check_subject(self.vapid_subject)
        if (self.webhook_url is None) != (self.webhook_secret is None):
            raise ValueError("webhook_url and webhook_secret go together")
        if self.webhook_url is not None:
            _http_url(self.webhook_url, "webhook_url", query=True)
        self._check_reports()
        self._check_dkim()
        self._check_mobile()
        return self

    def _check_reports(self) -> None:
        if (self.postmark_webhook_user is None) != (self.postmark_webhook_password is None):
            raise ValueError("postmark_webhook_user and postmark_webhook_password go together")
        if self.sendgrid_public_key is not None:
            from couples_nudge.notifier.webhooks.sendgrid import load_public_key

            load_public_key(self.sendgrid_public_key)
        if self.reports_enabled and not self.unsubscribe_secrets:
            raise ValueError(
                "bounce and complaint webhooks need unsubscribe_secrets (and public_url): "
                "Message-IDs are signed with them, so that a report maps back to its nudge"
            )

    def _check_dkim(self) -> None:
        dkim = (self.dkim_key_file, self.dkim_selector, self.dkim_domain)
        if any(v is None for v in dkim) and any(v is not None for v in dkim):
            raise ValueError("dkim_key_file, dkim_selector and dkim_domain go together")
        if self.dkim_selector is not None and not re.fullmatch(
            r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", self.dkim_selector
        ):
            raise ValueError("dkim_selector must be a DNS label (letters, digits, . _ -)")
        if self.dkim_domain is not None and not re.fullmatch(
            r"[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+", self.dkim_domain
        ):
            raise ValueError("dkim_domain must be a domain name")
        if self.dkim_key_file is not None and not self.dkim_key_file.is_file():
            raise ValueError("dkim_key_file does not name a readable file")

    @property
    def reports_enabled(self) -> bool:
        """Any relay webhook endpoint is configured."""
        return bool(
            self.ses_topic_arns
            or self.sendgrid_public_key
            or self.postmark_webhook_password
            or self.mailgun_signing_key
            or self.dsn_secret
        )

    def _check_mobile(self) -> None:
        from couples_nudge.notifier.channels.apns_auth import load_p8
        from couples_nudge.notifier.channels.fcm_auth import load_service_account

        if self.fcm_credentials_file is not None:
            load_service_account(self.fcm_credentials_file)
        if self.fcm_endpoint != "https://fcm.googleapis.com":
            _http_url(self.fcm_endpoint, "fcm_endpoint")
        apns = (self.apns_key_file, self.apns_key_id, self.apns_team_id)
        if any(v is None for v in apns) and any(v is not None for v in apns):
            raise ValueError("apns_key_file, apns_key_id and apns_team_id go together")
        if self.apns_key_file is not None:
            load_p8(self.apns_key_file)
        if self.apns_host is not None:
            _http_url(self.apns_host, "apns_host")
        if self.mobile_ca_file is not None and not self.mobile_ca_file.is_file():
            raise ValueError("mobile_ca_file is not a readable file")

    @property
    def fcm_enabled(self) -> bool:
        return self.fcm_credentials_file is not None

    @property
    def apns_enabled(self) -> bool:
        return self.apns_key_file is not None

    @property
    def unsubscribe_enabled(self) -> bool:
        return self.public_url is not None and bool(self.unsubscribe_secrets)

    @property
    def actions_enabled(self) -> bool:
        return self.action_links and self.unsubscribe_enabled
