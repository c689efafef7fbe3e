"""DKIM signing: an email sent through the SMTP channel with a DKIM key arrives at a real SMTP
server with a signature that dkimpy verifies against the public key (served by a DNS stub)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from couples_nudge.embedded.mailcatcher import MailCatcher
from couples_nudge.notifier.channels.base import Outgoing
from couples_nudge.notifier.channels.dkim import DkimSigner
from couples_nudge.notifier.channels.email import SmtpChannel
from couples_nudge.notifier.mime import build_email
from couples_nudge.notifier.settings import NotifierSettings

SELECTOR, DOMAIN = "nudge2026", "example.org"


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _dns(key: rsa.RSAPrivateKey) -> dict[bytes, bytes]:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)
    return {f"{SELECTOR}._domainkey.{DOMAIN}.".encode(): record}


def _message() -> bytes:
    return build_email(
        subject="Date night: a picnic at sunset",
        sender="Nudges <nudges@example.org>",
        to_name="Maya",
        to_address="maya@example.test",
        when=datetime(2026, 12, 4, 18, 0, tzinfo=UTC),
        text="Plan a picnic for Friday.\n",
        html="<p>Plan a picnic for Friday.</p>",
        extra_headers=[
            ("List-Unsubscribe", "<https://nudges.example.org/unsubscribe/t>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ],
        message_domain=DOMAIN,
    )


def _settings(tmp_path: Path, key: rsa.RSAPrivateKey) -> NotifierSettings:
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return NotifierSettings(
        redis_url=SecretStr("redis://127.0.0.1:1/0"),
        dkim_key_file=key_file,
        dkim_selector=SELECTOR,
        dkim_domain=DOMAIN,
    )


class TestDkim:
    async def test_received_message_verifies(
        self, mail: MailCatcher, tmp_path: Path, key: rsa.RSAPrivateKey
    ) -> None:
        """The message as received verifies; the same message with its subject changed in
        transit does not."""
        signer = DkimSigner.from_settings(_settings(tmp_path, key))
        assert signer is not None
        channel = SmtpChannel(host="127.0.0.1", port=mail.port, dkim=signer)
        try:
            await channel.send(
                Outgoing(
                    "email",
                    "occ|maya|email",
                    mime=_message(),
                    sender="nudges@example.org",
                    address="maya@example.test",
                )
            )
        finally:
            await channel.close()
        [received] = mail.received
        records = _dns(key)

        def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
            return records.get(name)

        assert received.startswith(b"DKIM-Signature: ")
        assert dkim.verify(received, dnsfunc=dnsfunc)
        tampered = received.replace(b"a picnic at sunset", b"a picnic at dawn!!")
        assert not dkim.verify(tampered, dnsfunc=dnsfunc)

    def test_the_one_click_headers_are_signed(self, tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
        """List-Unsubscribe and List-Unsubscribe-Post are covered (h=): a relay cannot swap
        the one-click link."""
        signer = DkimSigner.from_settings(_settings(tmp_path, key))
        assert signer is not None
        header = signer.sign_now(_message()).decode().replace("\r\n", "").replace(" ", "")
        signed = header.split("h=")[1].split(";")[0].lower().split(":")
        assert {"list-unsubscribe", "list-unsubscribe-post", "from", "message-id"} <= set(signed)

    def test_settings_go_together(self, tmp_path: Path) -> None:
        """A key file without selector and domain is a configuration error."""
        with pytest.raises(ValueError, match="go together"):
            NotifierSettings(
                redis_url=SecretStr("redis://127.0.0.1:1/0"), dkim_key_file=tmp_path / "k.pem"
            )
