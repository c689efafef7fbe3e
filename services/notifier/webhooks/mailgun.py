"""Mailgun's webhooks, signed (https://documentation.mailgun.com/docs/mailgun/user-manual/
tracking-messages/#securing-webhooks).

The JSON body holds {"signature": {"timestamp", "token", "signature"}, "event-data": {...}};
the signature is hex HMAC-SHA256 of timestamp + token with the webhook signing key. A
timestamp outside the replay window and a token seen before are refused (routes.py keeps the
tokens). Events: "failed" (severity permanent -> hard, temporary -> soft; reason
"suppress-complaint", an address Mailgun no longer mails after a spam report -> complaint;
"suppress-unsubscribe", one that unsubscribed -> unsubscribe), "complained" and
"unsubscribed" (Mailgun's own unsubscribe link);
the nudge comes back as the Message-ID in event-data.message.headers["message-id"].
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any, Final, NamedTuple

from couples_nudge.notifier.webhooks.reports import (
    Report,
    WebhookRefused,
    at_epoch,
    field,
    malformed,
    status_code,
)

__all__ = ["MailgunRequest", "mailgun_reports", "parse_mailgun", "verify_mailgun"]

_TOKEN: Final = re.compile(r"^[A-Za-z0-9]{10,128}$")
_HEX: Final = re.compile(r"^[0-9a-f]{64}$")


class MailgunRequest(NamedTuple):
    timestamp: str
    token: str
    signature: str
    event: dict[str, Any]


def parse_mailgun(body: bytes) -> MailgunRequest:
    try:
        data: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        raise malformed("not_json") from None
    signature = field(data, "signature")
    event = field(data, "event-data")
    if not isinstance(signature, dict):
        raise WebhookRefused(401, "no_signature")
    parts = [signature.get(n) for n in ("timestamp", "token", "signature")]
    if not all(isinstance(p, str) for p in parts):
        raise WebhookRefused(401, "no_signature")
    if not isinstance(event, dict):
        raise malformed("no_event_data")
    timestamp, token, mac = (str(p) for p in parts)
    return MailgunRequest(timestamp, token, mac, event)


def verify_mailgun(key: bytes, request: MailgunRequest, *, now: float, window: float) -> None:
    """WebhookRefused(403) unless the HMAC is right and the timestamp recent."""
    if not request.timestamp.isdigit() or len(request.timestamp) > 12:
        raise WebhookRefused(403, "bad_timestamp")
    if not _TOKEN.match(request.token) or not _HEX.match(request.signature):
        raise WebhookRefused(403, "bad_signature")
    expected = hmac.new(key, (request.timestamp + request.token).encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.hexdigest(), request.signature):
        raise WebhookRefused(403, "bad_signature")
    if abs(now - int(request.timestamp)) > window:
        raise WebhookRefused(403, "stale")


def mailgun_reports(request: MailgunRequest) -> list[Report]:
    event = request.event
    key = event.get("id")
    key = key[:100] if isinstance(key, str) and key else request.token
    reference = field(event, "message", "headers", "message-id")
    reference = reference if isinstance(reference, str) else None
    when = at_epoch(event.get("timestamp"))
    match event.get("event"):
        case "failed":
            severity = event.get("severity")
            if severity not in ("permanent", "temporary"):
                return []
            if event.get("reason") == "suppress-complaint":  # a spam report, earlier
                return [Report("mailgun", "complaint", reference, key, when)]
            if event.get("reason") == "suppress-unsubscribe":  # unsubscribed, earlier
                return [Report("mailgun", "unsubscribe", reference, key, when)]
            kind: Any = "hard" if severity == "permanent" else "soft"
            status = status_code(field(event, "delivery-status", "enhanced-code"))
            return [Report("mailgun", kind, reference, key, when, status)]
        case "complained":
            return [Report("mailgun", "complaint", reference, key, when)]
        case "unsubscribed":  # Mailgun's own unsubscribe link
            return [Report("mailgun", "unsubscribe", reference, key, when)]
    return []
