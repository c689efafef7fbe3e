"""Amazon SES bounce and complaint notifications, delivered by SNS over HTTPS.

Every SNS message is believed only after (https://docs.aws.amazon.com/sns/latest/dg/
sns-verify-signature-of-message.html):
  1. its TopicArn is one of ours (anyone can run an SNS topic: a valid signature alone proves
     only that AWS sent it);
  2. SigningCertURL is https on a host that matches the allowed pattern (by default
     sns.<region>.amazonaws.com), and the path ends in .pem; the certificate is fetched over
     verified TLS with a timeout, cached per URL, and must be valid now;
  3. the signature verifies: SignatureVersion 1 is RSA PKCS#1 v1.5 with SHA-1, version 2 with
     SHA-256, over the canonical string of the message type's fields ("Name\\nvalue\\n" in a
     fixed order; Subject only when present);
  4. its Timestamp is inside the replay window, and its MessageId was not seen before
     (routes.py, replay.py).
A SubscriptionConfirmation is confirmed by GETting its SubscribeURL (same host rule).
Notification messages carry the SES event as JSON: Bounce (Permanent -> hard; Transient,
Undetermined -> soft) and Complaint (except feedback type not-spam); others are ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import ssl
from collections import OrderedDict
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from couples_nudge.notifier.webhooks.reports import (
    Report,
    WebhookRefused,
    at_iso,
    field,
    malformed,
    status_code,
)

__all__ = [
    "DEFAULT_CERT_HOST",
    "CertificateFetcher",
    "SnsMessage",
    "allowed_url",
    "canonical_string",
    "parse_sns",
    "ses_reports",
    "sns_timestamp",
    "verify_signature",
]

DEFAULT_CERT_HOST: Final = r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"
_TYPES: Final = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
    "UnsubscribeConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
_HASHES: Final = {"1": hashes.SHA1, "2": hashes.SHA256}
_MAX_CERT_BYTES: Final = 16 * 1024
_CACHE_SIZE: Final = 16
_MESSAGE_ID: Final = re.compile(r"^[A-Za-z0-9-]{1,100}$")
_HARD: Final = frozenset({"Permanent"})
_SOFT: Final = frozenset({"Transient", "Undetermined"})


class SnsMessage:
    """The fields of one SNS message (all strings), read from its JSON body."""

    def __init__(self, fields: dict[str, str]) -> None:
        self.fields = fields

    def __getitem__(self, name: str) -> str:
        return self.fields[name]

    @property
    def type(self) -> str:
        return self.fields["Type"]


def parse_sns(body: bytes) -> SnsMessage:
    """The SNS message of a request body; WebhookRefused(400) when it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: deep nesting
        raise malformed("not_json") from None
    if not isinstance(data, dict) or not isinstance(data.get("Type"), str):
        raise malformed("not_sns")
    if data["Type"] not in _TYPES:
        raise malformed("not_sns")
    needed = [n for n in _TYPES[data["Type"]] if n != "Subject"]
    needed += ["SignatureVersion", "Signature", "SigningCertURL"]
    if any(not isinstance(data.get(n), str) for n in needed):
        raise malformed("sns_fields")
    if "Subject" in data and not isinstance(data["Subject"], str):
        raise malformed("sns_fields")
    if not _MESSAGE_ID.match(data["MessageId"]):
        raise malformed("sns_fields")
    return SnsMessage({k: v for k, v in data.items() if isinstance(v, str)})


def canonical_string(message: SnsMessage) -> bytes:
    """What SNS signs: "Name\\nvalue\\n" for the type's fields, in order."""
    names = _TYPES[message.type]
    return "".join(
        f"{name}\n{message.fields[name]}\n" for name in names if name in message.fields
    ).encode()


def allowed_url(url: str, host_pattern: re.Pattern[str]) -> bool:
    """An https URL on an allowed host (no user info), in printable ASCII (what AWS sends;
    httpx refuses anything else, after the host check would have passed it)."""
    if not (url.isascii() and url.isprintable()):
        return False
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return False
    return (
        parts.scheme == "https"
        and hostname is not None
        and "@" not in parts.netloc
        and host_pattern.fullmatch(hostname) is not None
    )


def verify_signature(message: SnsMessage, certificate: x509.Certificate, now: datetime) -> None:
    """WebhookRefused(403) unless `certificate` signed the message and is valid at `now`."""
    algorithm = _HASHES.get(message["SignatureVersion"])
    if algorithm is None:
        raise WebhookRefused(403, "sns_signature_version")
    if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
        raise WebhookRefused(403, "sns_certificate_expired")
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise WebhookRefused(403, "sns_certificate_key")
    try:
        signature = base64.b64decode(message["Signature"], validate=True)
        key.verify(signature, canonical_string(message), padding.PKCS1v15(), algorithm())
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookRefused(403, "bad_signature") from None


class CertificateFetcher:
    """Fetches SNS signing certificates over verified HTTPS, from allowed hosts only; keeps
    the last few by URL (SNS signs with one certificate for months)."""

    def __init__(
        self,
        host_pattern: str,
        *,
        timeout: float = 5.0,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.host_pattern = re.compile(host_pattern)
        self._timeout = timeout
        self._verify = verify
        self._cache: OrderedDict[str, x509.Certificate] = OrderedDict()

    def allowed(self, url: str) -> bool:
        return allowed_url(url, self.host_pattern)

    async def certificate(self, url: str) -> x509.Certificate:
        if not self.allowed(url) or not urlsplit(url).path.endswith(".pem"):
            raise WebhookRefused(403, "sns_certificate_host")
        cached = self._cache.get(url)
        if cached is not None:
            self._cache.move_to_end(url)
            return cached
        try:
            async with httpx.AsyncClient(timeout=self._timeout, verify=self._verify) as client:
                answer = await client.get(url, follow_redirects=False)
        except (httpx.HTTPError, httpx.InvalidURL):  # InvalidURL: not an HTTPError
            raise WebhookRefused(403, "sns_certificate_unavailable") from None
        if answer.status_code != 200 or len(answer.content) > _MAX_CERT_BYTES:
            raise WebhookRefused(403, "sns_certificate_unavailable")
        try:
            certificate = x509.load_pem_x509_certificate(answer.content)
        except ValueError:
            raise WebhookRefused(403, "sns_certificate_invalid") from None
        self._cache[url] = certificate
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return certificate

    async def confirm(self, subscribe_url: str) -> None:
        """GET a SubscriptionConfirmation's SubscribeURL (allowed hosts only)."""
        if not self.allowed(subscribe_url):
            raise WebhookRefused(403, "sns_subscribe_host")
        try:
            async with httpx.AsyncClient(timeout=self._timeout, verify=self._verify) as client:
                answer = await client.get(subscribe_url, follow_redirects=False)
        except (httpx.HTTPError, httpx.InvalidURL):  # InvalidURL: not an HTTPError
            raise WebhookRefused(503, "sns_confirm_unavailable") from None
        if answer.status_code != 200:
            raise WebhookRefused(503, "sns_confirm_refused")


def sns_timestamp(message: SnsMessage) -> datetime:
    when = at_iso(message["Timestamp"])
    if when is None:
        raise malformed("sns_timestamp")
    return when.astimezone(UTC)


def ses_reports(message: SnsMessage) -> list[Report]:
    """The bounce or complaint an SES notification carries (none for other event types)."""
    try:
        event: Any = json.loads(message["Message"])
    except (ValueError, RecursionError):
        raise malformed("ses_not_json") from None
    kind = field(event, "notificationType") or field(event, "eventType")
    reference = field(event, "mail", "commonHeaders", "messageId")
    key = message["MessageId"]
    if kind == "Bounce":
        bounce_type = field(event, "bounce", "bounceType")
        if bounce_type in _HARD:
            what: Any = "hard"
        elif bounce_type in _SOFT:
            what = "soft"
        else:
            raise malformed("ses_bounce_type")
        recipients = field(event, "bounce", "bouncedRecipients")
        status = None
        if isinstance(recipients, list) and recipients:
            status = status_code(field(recipients[0], "status"))
        when = at_iso(field(event, "bounce", "timestamp"))
        return [Report("ses", what, _text(reference), key, when, status)]
    if kind == "Complaint":
        if field(event, "complaint", "complaintFeedbackType") == "not-spam":
            return []
        when = at_iso(field(event, "complaint", "timestamp"))
        return [Report("ses", "complaint", _text(reference), key, when)]
    return []


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
