"""Requests as email relays make them, signed by the test: SNS (an RSA signing certificate the
test makes and serves over HTTPS on loopback), SendGrid (ECDSA P-256), Mailgun (HMAC), Postmark
(basic auth), and RFC 3464 DSNs built with the standard library."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage, Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from couples_nudge.notifier.webhooks.sns import SnsMessage, canonical_string

TOPIC = "arn:aws:sns:eu-west-1:123456789012:nudge-ses"


def _rsa_certificate(key: rsa.RSAPrivateKey) -> bytes:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class FakeSns:
    """Signs SNS messages like SNS; its ASGI app serves the certificate and SubscribeURL."""

    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    confirmed: list[str] = field(default_factory=list)

    @property
    def pem(self) -> bytes:
        return _rsa_certificate(self.key)

    def app(self) -> Starlette:
        pem = self.pem

        async def cert(_: Request) -> Response:
            return Response(pem, media_type="application/x-pem-file")

        async def confirm(request: Request) -> Response:
            self.confirmed.append(request.query_params.get("Token", ""))
            return Response("<ConfirmSubscriptionResponse/>", media_type="text/xml")

        return Starlette(
            routes=[Route("/SimpleNotificationService.pem", cert), Route("/", confirm)]
        )

    def message(
        self,
        origin: str,
        message: str,
        *,
        type_: str = "Notification",
        version: str = "1",
        topic: str = TOPIC,
        at: datetime | None = None,
        message_id: str | None = None,
    ) -> dict[str, str]:
        fields = {
            "Type": type_,
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": message,
            "Timestamp": (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "SignatureVersion": version,
            "SigningCertURL": f"{origin}/SimpleNotificationService.pem",
        }
        if type_ == "Notification":
            fields["Subject"] = "Amazon SES Email Event Notification"
        else:
            token = secrets.token_hex(16)
            fields["Token"] = token
            fields["SubscribeURL"] = f"{origin}/?Action=ConfirmSubscription&Token={token}"
        # SNS signature version 1 is SHA-1 by AWS's definition.
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
        signed = canonical_string(SnsMessage(fields))
        signature = self.key.sign(signed, padding.PKCS1v15(), algorithm)
        fields["Signature"] = base64.b64encode(signature).decode()
        return fields


def ses_bounce(message_id: str, bounce_type: str = "Permanent") -> str:
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {"emailAddress": "maya@example.test", "status": "5.1.1", "action": "failed"}
                ],
                "timestamp": datetime.now(UTC).isoformat(),
            },
            "mail": {"messageId": "ses-123", "commonHeaders": {"messageId": message_id}},
        }
    )


def ses_complaint(message_id: str) -> str:
    return json.dumps(
        {
            "notificationType": "Complaint",
            "complaint": {
                "complainedRecipients": [{"emailAddress": "maya@example.test"}],
                "complaintFeedbackType": "abuse",
                "timestamp": datetime.now(UTC).isoformat(),
            },
            "mail": {"messageId": "ses-124", "commonHeaders": {"messageId": message_id}},
        }
    )


@dataclass
class FakeSendGrid:
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def public_key(self) -> str:
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    def headers(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
            "Content-Type": "application/json",
        }


def sendgrid_events(ref: str, *events: tuple[str, dict[str, Any]]) -> bytes:
    return json.dumps(
        [
            {
                "email": "maya@example.test",
                "timestamp": int(time.time()),
                "event": name,
                "sg_event_id": secrets.token_hex(8),
                "nudge_ref": ref,
                **extra,
            }
            for name, extra in events
        ]
    ).encode()


def mailgun_body(
    key: str,
    message_id: str,
    *,
    event: str = "failed",
    severity: str = "permanent",
    timestamp: int | None = None,
    token: str | None = None,
    reason: str = "bounce",
) -> bytes:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    token = token or secrets.token_hex(25)
    mac = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return json.dumps(
        {
            "signature": {"timestamp": stamp, "token": token, "signature": mac},
            "event-data": {
                "event": event,
                "severity": severity,
                "reason": reason,
                "id": secrets.token_hex(8),
                "timestamp": float(stamp),
                "recipient": "maya@example.test",
                "message": {"headers": {"message-id": message_id.strip("<>")}},
                "delivery-status": {"code": 550, "enhanced-code": "5.1.1"},
            },
        }
    ).encode()


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def postmark_bounce(ref: str, type_: str = "HardBounce", record: str = "Bounce") -> bytes:
    return json.dumps(
        {
            "RecordType": record,
            "Type": type_,
            "ID": secrets.randbelow(10**12),
            "MessageID": str(uuid.uuid4()),
            "Email": "maya@example.test",
            "BouncedAt": datetime.now(UTC).isoformat(),
            "Metadata": {"nudge-ref": ref},
        }
    ).encode()


def postmark_subscription_change(ref: str, *, origin: str, suppress: bool) -> bytes:
    """Postmark's SubscriptionChange record (it has no ID): the message's address suppressed
    (or reactivated) by the recipient, the sender's staff or Postmark."""
    return json.dumps(
        {
            "RecordType": "SubscriptionChange",
            "MessageID": str(uuid.uuid4()),
            "ServerID": 23,
            "MessageStream": "outbound",
            "ChangedAt": datetime.now(UTC).isoformat(),
            "Recipient": "maya@example.test",
            "Origin": origin,
            "SuppressSending": suppress,
            "SuppressionReason": "ManualSuppression",
            "Metadata": {"nudge-ref": ref},
        }
    ).encode()


def dsn(message_id: str, status: str = "5.1.1", action: str = "failed") -> bytes:
    """An RFC 3464 report about the message `message_id`, as an MTA sends it."""
    report = MIMEMultipart("report", report_type="delivery-status")
    report["From"] = "MAILER-DAEMON@mx.example.test"
    report["To"] = "bounces@example.org"
    report["Subject"] = "Undelivered Mail Returned to Sender"
    report.attach(MIMEText("The mail system could not deliver your message.\n"))
    status_part = MIMEBase("message", "delivery-status")
    per_message, per_recipient = Message(), Message()
    per_message["Reporting-MTA"] = "dns; mx.example.test"
    per_recipient["Final-Recipient"] = "rfc822; maya@example.test"
    per_recipient["Action"] = action
    per_recipient["Status"] = status
    per_recipient["Diagnostic-Code"] = "smtp; 550 5.1.1 user unknown"
    status_part.set_payload([per_message, per_recipient])
    report.attach(status_part)
    headers = MIMEText(
        f"From: nudges@example.org\nTo: maya@example.test\nMessage-ID: {message_id}\n"
        "Subject: Date night\n",
        "rfc822-headers",
    )
    report.attach(headers)
    return report.as_bytes()


def abuse_report(message_id: str) -> bytes:
    """An RFC 5965 abuse report (a spam complaint forwarded by a mailbox provider)."""
    report = MIMEMultipart("report", report_type="feedback-report")
    report.attach(MIMEText("This is an abuse report.\n"))
    feedback = MIMEText(
        "Feedback-Type: abuse\nUser-Agent: FBL/1.0\nVersion: 1\n", "feedback-report"
    )
    feedback.replace_header("Content-Type", "message/feedback-report")
    report.attach(feedback)
    original = EmailMessage()
    original["Message-ID"] = message_id
    original["Subject"] = "Date night"
    original.set_content("the nudge")
    wrapper = MIMEBase("message", "rfc822")
    wrapper.set_payload([original])
    report.attach(wrapper)
    return report.as_bytes()
