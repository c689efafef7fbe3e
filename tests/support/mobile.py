"""A local FCM and a local APNs side by side, with the key files and settings that reach them."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from couples_nudge.notifier.channels.mobile import MobileChannel
from couples_nudge.notifier.channels.mobile_setup import mobile_channel
from couples_nudge.notifier.settings import NotifierSettings
from tests.support.apns_server import ApnsServer, Http2Server
from tests.support.fcm_server import FcmServer, service_account
from tests.support.tls import Certificate, HttpsServer, self_signed

PROJECT = "couples-nudge-test"
KEY_ID, TEAM_ID = "ABC123DEFG", "TEAM123456"
BUNDLE, PACKAGE = "org.example.Couples", "org.example.couples"


@dataclass
class MobileRig:
    fcm: FcmServer
    apns: ApnsServer
    certificate: Certificate
    account_file: Path
    p8_file: Path

    def settings(self) -> dict[str, Any]:
        """NotifierSettings fields that point the mobile channel at these servers."""
        return {
            "fcm_credentials_file": self.account_file,
            "fcm_endpoint": self.fcm.origin,
            "apns_key_file": self.p8_file,
            "apns_key_id": KEY_ID,
            "apns_team_id": TEAM_ID,
            "apns_host": self.apns.origin,
            "mobile_ca_file": self.certificate.cert_file,
            "push_timeout": 5.0,
        }

    def channel(self) -> MobileChannel:
        return mobile_channel(NotifierSettings(**self.settings()))


@asynccontextmanager
async def mobile_rig(
    folder: Path, now: Callable[[], float] = time.time
) -> AsyncIterator[MobileRig]:
    certificate = self_signed(folder)
    google_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    apple_key = ec.generate_private_key(ec.SECP256R1())
    fcm = FcmServer(google_key.public_key(), service_account(google_key, "", PROJECT), now)
    apns = ApnsServer(apple_key.public_key(), KEY_ID, TEAM_ID, {BUNDLE}, now)
    async with (
        HttpsServer(fcm.app(), certificate) as https,
        Http2Server(apns.app(), certificate) as http2,
    ):
        fcm.origin, apns.origin = https.origin, http2.origin
        fcm.account["token_uri"] = f"{https.origin}/token"
        account_file = folder / "service-account.json"
        account_file.write_text(json.dumps(fcm.account))
        p8_file = folder / f"AuthKey_{KEY_ID}.p8"
        p8_file.write_bytes(
            apple_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        yield MobileRig(fcm, apns, certificate, account_file, p8_file)
