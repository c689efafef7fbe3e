"""Bounces and complaints that come back by email: RFC 3464 delivery status notifications
(multipart/report; report-type=delivery-status) and RFC 5965 abuse reports
(report-type=feedback-report), for relays that report only by mail. Pure: the stdlib parser.

A DSN names each recipient's Action and Status: "failed" with 5.x.x is a hard bounce, with
4.x.x a soft one; "delayed", "delivered", "relayed" and "expanded" report nothing to act on.
An abuse report (Feedback-Type abuse) is a complaint. The nudge is found from the returned
message's headers (Message-ID, in a message/rfc822 or text/rfc822-headers part) or from an
Original-Message-ID field.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
from email.message import Message
from email.parser import HeaderParser
from typing import Final

from couples_nudge.notifier.webhooks.reports import Report, ReportKind, malformed, status_code

__all__ = ["dsn_reports"]

_MAX_PARTS: Final = 50
_MAX_RECIPIENTS: Final = 50


def dsn_reports(body: bytes) -> list[Report]:
    """The reports in one DSN or abuse report (raw RFC 5322 bytes)."""
    message = email.message_from_bytes(body, policy=email.policy.compat32)
    if message.get_content_type() != "multipart/report":
        raise malformed("not_a_report")
    parts = list(message.walk())[:_MAX_PARTS]
    reference = _returned_message_id(parts)
    key = hashlib.sha256(body).hexdigest()[:32]
    reports: list[Report] = []
    for part in parts:
        match part.get_content_type():
            case "message/delivery-status":
                payload = part.get_payload()
                if not isinstance(payload, list) or not payload:
                    raise malformed("no_status")
                blocks: list[Message] = [b for b in payload if isinstance(b, Message)]
                if blocks:
                    reference = reference or _header(blocks[0], "Original-Message-ID")
                for n, block in enumerate(blocks[1 : _MAX_RECIPIENTS + 1]):
                    kind = _bounce(block)
                    if kind is not None:
                        status = status_code(_header(block, "Status"))
                        reports.append(Report("dsn", kind, reference, f"{key}.{n}", None, status))
            case "message/feedback-report":
                fields = _feedback_fields(part)
                if fields is not None and (fields.get("Feedback-Type") or "").lower() == "abuse":
                    reference = reference or fields.get("Original-Message-ID")
                    reports.append(Report("dsn", "complaint", reference, key))
    return reports


def _bounce(block: Message) -> ReportKind | None:
    action = (_header(block, "Action") or "").strip().lower()
    status = status_code(_header(block, "Status"))
    if action != "failed" or status is None:
        return None
    return "hard" if status.startswith("5") else "soft"


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else str(value)[:1000]


def _returned_message_id(parts: list[Message]) -> str | None:
    """The Message-ID of the returned message (its headers or the whole of it)."""
    for part in parts:
        match part.get_content_type():
            case "message/rfc822":
                inner = part.get_payload()
                first = inner[0] if isinstance(inner, list) and inner else None
                if isinstance(first, Message) and (found := _header(first, "Message-ID")):
                    return found
            case "text/rfc822-headers":
                text = part.get_payload(decode=True)
                if isinstance(text, bytes):
                    headers = HeaderParser().parsestr(text.decode("ascii", "replace"))
                    if found := _header(headers, "Message-ID"):
                        return found
    return None


def _feedback_fields(part: Message) -> dict[str, str] | None:
    """The fields of a message/feedback-report part (the parser may give them as text or as a
    message)."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return {k: str(v)[:1000] for k, v in payload[0].items()}
    raw = part.get_payload(decode=True)
    if isinstance(raw, bytes):
        headers = HeaderParser().parsestr(raw.decode("ascii", "replace"))
        return {k: str(v)[:1000] for k, v in headers.items()}
    return None
