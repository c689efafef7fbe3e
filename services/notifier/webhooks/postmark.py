"""Postmark's bounce and spam complaint webhooks, behind HTTP basic auth
(https://postmarkapp.com/developer/webhooks/webhooks-overview: put user:password in the
webhook URL).

Postmark signs nothing, so the credentials are the proof, compared in constant time; an event
ID seen before is refused as a replay. One JSON object per request: RecordType "Bounce" (Type
HardBounce, BadEmailAddress, ManuallyDeactivated -> hard; SoftBounce, Transient, DnsError ->
soft; others such as AutoResponder are ignored), "SpamComplaint", or "SubscriptionChange" (a
recipient who unsubscribed through Postmark's own link -> unsubscribe). Postmark replaces the
Message-ID, so the nudge comes back in Metadata["nudge-ref"] (message_ids.provider_headers).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any, Final

from couples_nudge.notifier.message_ids import POSTMARK_FIELD
from couples_nudge.notifier.webhooks.reports import (
    Report,
    ReportKind,
    WebhookRefused,
    at_iso,
    field,
    malformed,
)

__all__ = ["check_basic_auth", "postmark_reports"]

_TYPES: Final[dict[str, ReportKind]] = {
    "HardBounce": "hard",
    "BadEmailAddress": "hard",
    "ManuallyDeactivated": "hard",
    "SoftBounce": "soft",
    "Transient": "soft",
    "DnsError": "soft",
}


def check_basic_auth(header: str | None, expected: bytes) -> None:
    """WebhookRefused(401) unless `header` is "Basic base64(user:password)" with ours."""
    if not header or not header.startswith("Basic "):
        raise WebhookRefused(401, "no_credentials")
    try:
        given = base64.b64decode(header[6:].strip()[:1024], validate=True)
    except (binascii.Error, ValueError):
        raise WebhookRefused(401, "bad_credentials") from None
    if not hmac.compare_digest(given, expected):
        raise WebhookRefused(401, "bad_credentials")


def postmark_reports(body: bytes) -> list[Report]:
    try:
        event: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        raise malformed("not_json") from None
    if not isinstance(event, dict):
        raise malformed("not_event")
    record = event.get("RecordType")
    reference = field(event, "Metadata", POSTMARK_FIELD)
    reference = reference if isinstance(reference, str) else None
    if record == "SubscriptionChange":
        return _subscription_change(event, reference)
    event_id = event.get("ID")
    if not isinstance(event_id, int | str) or isinstance(event_id, bool):
        raise malformed("no_event_id")
    key = f"{record}:{str(event_id)[:80]}"
    when = at_iso(event.get("BouncedAt"))
    if record == "SpamComplaint" or (record == "Bounce" and event.get("Type") == "SpamComplaint"):
        return [Report("postmark", "complaint", reference, key, when)]
    if record == "Bounce":
        kind = _TYPES.get(str(event.get("Type"))[:40])
        return [] if kind is None else [Report("postmark", kind, reference, key, when)]
    return []


def _subscription_change(event: dict[str, Any], reference: str | None) -> list[Report]:
    """A recipient who unsubscribed through Postmark's own link (suppressed, reason
    ManualSuppression, origin Recipient): an unsubscribe. Suppressions for a hard bounce or a
    spam complaint come as their own Bounce and SpamComplaint records; a reactivation, or a
    suppression by the sender's staff (origin Customer or Admin), is not the partner's."""
    if not (
        event.get("SuppressSending") is True
        and event.get("SuppressionReason") == "ManualSuppression"
        and event.get("Origin") == "Recipient"
    ):
        return []
    changed = event.get("ChangedAt")
    if not isinstance(changed, str):
        raise malformed("no_event_id")  # a change has no ID: its message and time name it
    key = f"SubscriptionChange:{str(event.get('MessageID'))[:80]}:{changed[:40]}"
    return [Report("postmark", "unsubscribe", reference, key, at_iso(changed))]
