"""SendGrid's Event Webhook, signed (https://www.twilio.com/docs/sendgrid/for-developers/
tracking-events/getting-started-event-webhook-security-features).

SendGrid signs "<timestamp><raw body>" with ECDSA on P-256 and SHA-256, and sends the
base64 DER signature and the timestamp in X-Twilio-Email-Event-Webhook-Signature and
X-Twilio-Email-Event-Webhook-Timestamp; the verification key is the base64 DER public key it
shows in its settings. A request is a JSON array of events: "bounce" (type "blocked" is soft,
the others hard), "spamreport" (a complaint), "unsubscribe" and "group_unsubscribe" (the
partner used SendGrid's own unsubscribe link) and "dropped" for an address on SendGrid's own
bounce, spam or unsubscribe list; everything else is ignored. The nudge comes back in our
unique argument `nudge_ref` (message_ids.provider_headers), else in "smtp-id" (the
Message-ID).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from couples_nudge.notifier.message_ids import SENDGRID_ARG
from couples_nudge.notifier.webhooks.reports import (
    Report,
    ReportKind,
    WebhookRefused,
    at_epoch,
    malformed,
    status_code,
)

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "load_public_key",
    "sendgrid_reports",
    "verify_sendgrid",
]

SIGNATURE_HEADER: Final = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER: Final = "X-Twilio-Email-Event-Webhook-Timestamp"
_MAX_EVENTS: Final = 10_000
_DROPPED: Final[dict[str, ReportKind]] = {
    "Bounced Address": "hard",
    "Spam Reporting Address": "complaint",
    "Unsubscribed Address": "unsubscribe",
}


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's verification key: base64 DER as its settings page shows it, or PEM."""
    try:
        if "BEGIN PUBLIC KEY" in text:
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, TypeError):
        raise ValueError("sendgrid_public_key is not a base64 DER or PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("sendgrid_public_key must be an ECDSA P-256 key")
    return key


def verify_sendgrid(
    key: ec.EllipticCurvePublicKey,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    *,
    now: float,
    window: float,
) -> None:
    """WebhookRefused unless the signature is SendGrid's over timestamp + body, and recent."""
    if not signature or not timestamp:
        raise WebhookRefused(401, "no_signature")
    if not timestamp.isdigit() or len(timestamp) > 12:
        raise WebhookRefused(403, "bad_timestamp")
    if abs(now - int(timestamp)) > window:
        raise WebhookRefused(403, "stale")
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookRefused(403, "bad_signature") from None


def sendgrid_reports(body: bytes) -> list[Report]:
    """Bounces and complaints in a (verified) event batch."""
    try:
        events: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        raise malformed("not_json") from None
    if not isinstance(events, list) or len(events) > _MAX_EVENTS:
        raise malformed("not_event_list")
    reports = []
    for event in events:
        if not isinstance(event, dict):
            continue  # as an event without an id: one odd element must not sink the batch
        kind = _kind(event)
        if kind is None:
            continue
        key = event.get("sg_event_id")
        if not isinstance(key, str) or not key:
            continue
        reference = event.get(SENDGRID_ARG) or event.get("smtp-id")
        reports.append(
            Report(
                "sendgrid",
                kind,
                reference if isinstance(reference, str) else None,
                key[:100],
                at_epoch(event.get("timestamp")),
                status_code(event.get("status")),
            )
        )
    return reports


def _kind(event: dict[str, Any]) -> ReportKind | None:
    match event.get("event"):
        case "bounce":
            return "soft" if event.get("type") == "blocked" else "hard"
        case "spamreport":
            return "complaint"
        case "unsubscribe" | "group_unsubscribe":  # SendGrid's own unsubscribe link
            return "unsubscribe"
        case "dropped":
            return _DROPPED.get(str(event.get("reason", ""))[:40])
    return None
