"""Specification of the Web Push building blocks: payload encryption and VAPID keys.

The encryption is checked against the worked example in RFC 8291 appendix A.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr, ValidationError

from couples_nudge.notifier.channels.webpush import (
    check_subject,
    encrypt_payload,
    load_vapid_key,
    public_key_b64,
)
from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge_schemas import PushSubscription


def b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# RFC 8291, appendix A.
PLAINTEXT = b"When I grow up, I want to be a watermelon"
AS_PRIVATE = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
AS_PUBLIC = (
    "BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8"
)
UA_PUBLIC = (
    "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
)
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
SALT = "DGv6ra1nlYgDCS1FRnbzlw"
MESSAGE = (
    "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmY"
    "WAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexS"
    "gSxsj_Qulcy4a-fN"
)
SUBSCRIPTION = PushSubscription(
    endpoint="https://push.example.net/s/1", p256dh=UA_PUBLIC, auth=AUTH
)


class TestEncryptPayload:
    def test_rfc_8291_example(self) -> None:
        """With the RFC's sender key and salt, the body is byte for byte the RFC's message."""
        sender = load_vapid_key(SecretStr(AS_PRIVATE))
        body = encrypt_payload(PLAINTEXT, SUBSCRIPTION, salt=b64d(SALT), sender_key=sender)
        assert b64e(body) == MESSAGE

    def test_header_names_the_sender_key(self) -> None:
        """The aes128gcm header carries salt, record size 4096 and the sender's public key."""
        body = encrypt_payload(PLAINTEXT, SUBSCRIPTION)
        assert int.from_bytes(body[16:20], "big") == 4096
        assert body[20] == 65
        assert body[21] == 4  # an uncompressed P-256 point

    @pytest.mark.parametrize(
        ("p256dh", "auth"),
        [
            (UA_PUBLIC[:40], AUTH),  # a truncated key
            (UA_PUBLIC, AUTH[:10]),  # a short auth secret
            ("B" + "A" * 86, AUTH),  # 65 bytes, 0x04 then zeros: no point on the curve
        ],
    )
    def test_unusable_subscription_keys(self, p256dh: str, auth: str) -> None:
        """Keys of the wrong shape, or not on the curve, are a ValueError."""
        bad = PushSubscription(endpoint=SUBSCRIPTION.endpoint, p256dh=p256dh, auth=auth)
        with pytest.raises(ValueError):  # noqa: PT011 (any ValueError: the channel maps it)
            encrypt_payload(PLAINTEXT, bad)


class TestVapidKey:
    KEY = ec.generate_private_key(ec.SECP256R1())

    def test_raw_base64url(self) -> None:
        """The raw form (base64url of the 32-byte private value) loads; its public key is the
        RFC's application server key."""
        assert public_key_b64(load_vapid_key(SecretStr(AS_PRIVATE))) == AS_PUBLIC

    @pytest.mark.parametrize(
        "fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL]
    )
    def test_pem(self, fmt: serialization.PrivateFormat) -> None:
        """PKCS#8 and SEC1 ("EC PRIVATE KEY") PEM files load."""
        pem = self.KEY.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
        loaded = load_vapid_key(SecretStr(pem.decode()))
        assert public_key_b64(loaded) == public_key_b64(self.KEY)

    @pytest.mark.parametrize(
        "text",
        [
            "not a key",
            b64e(b"\x01" * 31),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ],
    )
    def test_refused(self, text: str) -> None:
        """Anything else is refused without echoing the input."""
        with pytest.raises(ValueError, match="vapid_private_key") as info:
            load_vapid_key(SecretStr(text))
        assert text not in str(info.value)

    def test_other_curve_refused(self) -> None:
        """A P-384 key is not a VAPID key."""
        pem = ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(ValueError, match="P-256"):
            load_vapid_key(SecretStr(pem.decode()))


class TestSubject:
    @pytest.mark.parametrize("subject", ["mailto:ops@example.org", "https://example.org/contact"])
    def test_accepted(self, subject: str) -> None:
        """A mailto: address or an https URL is a contact push services accept."""
        assert check_subject(subject) == subject

    @pytest.mark.parametrize("subject", ["ops@example.org", "mailto:nobody", "http://x.org"])
    def test_refused(self, subject: str) -> None:
        """Anything else is refused."""
        with pytest.raises(ValueError, match="vapid_subject"):
            check_subject(subject)


class TestSettings:
    def test_key_and_subject_go_together(self) -> None:
        """A VAPID key without a subject is a configuration error."""
        with pytest.raises(ValidationError, match="go together"):
            NotifierSettings(vapid_private_key=SecretStr(AS_PRIVATE))

    def test_bad_key_is_a_configuration_error(self) -> None:
        """An unreadable key fails at start-up, without its value in the message."""
        with pytest.raises(ValidationError, match="vapid_private_key") as info:
            NotifierSettings(
                vapid_private_key=SecretStr("zzzz-not-a-key"), vapid_subject="mailto:a@b.org"
            )
        assert "zzzz-not-a-key" not in str(info.value)

    def test_webhook_url_and_secret_go_together(self) -> None:
        """A webhook URL without a signing secret is a configuration error."""
        with pytest.raises(ValidationError, match="go together"):
            NotifierSettings(webhook_url="https://app.example.org/hooks/nudges")

    @pytest.mark.parametrize("link", ["https://app.example.org/{nope}", "app://x/{kind}"])
    def test_push_link_template(self, link: str) -> None:
        """The deep link is an http(s) URL using only the known placeholders."""
        with pytest.raises(ValidationError, match="push_link"):
            NotifierSettings(push_link=link)
