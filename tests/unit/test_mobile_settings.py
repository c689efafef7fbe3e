"""Settings of the mobile channel: switched on by key files, checked at start, and never echoing
key material in an error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import ValidationError

from couples_nudge.notifier.channels.apns import ApnsChannel
from couples_nudge.notifier.channels.fcm import FcmChannel
from couples_nudge.notifier.channels.mobile import MobileChannel
from couples_nudge.notifier.service import default_channels
from couples_nudge.notifier.settings import NotifierSettings
from tests.support.fcm_server import service_account


def pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture
def p8(tmp_path: Path) -> Path:
    path = tmp_path / "AuthKey_ABC123DEFG.p8"
    path.write_bytes(pem(ec.generate_private_key(ec.SECP256R1())))
    return path


@pytest.fixture
def account(tmp_path: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(service_account(key, "https://oauth2.example/token", "proj-1")))
    return path


class TestMobileWiring:
    async def test_both_providers_when_configured(self, p8: Path, account: Path) -> None:
        """A service-account key and a .p8 key with its ids add the mobile channel with both
        providers; either alone adds it with one."""
        both = default_channels(
            NotifierSettings(
                fcm_credentials_file=account,
                apns_key_file=p8,
                apns_key_id="ABC123DEFG",
                apns_team_id="TEAM123456",
            )
        )
        only_fcm = default_channels(NotifierSettings(fcm_credentials_file=account))
        try:
            mobile = both["mobile"]
            assert isinstance(mobile, MobileChannel)
            assert isinstance(mobile.fcm, FcmChannel)
            assert isinstance(mobile.apns, ApnsChannel)
            fcm_only = only_fcm["mobile"]
            assert isinstance(fcm_only, MobileChannel)
            assert fcm_only.serves("android")
            assert not fcm_only.serves("ios")
        finally:
            for channels in (both, only_fcm):
                for channel in channels.values():
                    await channel.close()

    async def test_not_wired_by_default(self) -> None:
        """Without key files there is no mobile channel (its nudges become no_channel)."""
        channels = default_channels(NotifierSettings())
        try:
            assert "mobile" not in channels
        finally:
            for channel in channels.values():
                await channel.close()


class TestMobileSettingsChecked:
    def test_apns_key_id_and_team_go_with_the_key(self, p8: Path) -> None:
        """A .p8 without its key id and team id is refused at start."""
        with pytest.raises(ValidationError, match="go together"):
            NotifierSettings(apns_key_file=p8)

    def test_a_key_file_of_the_wrong_kind_is_refused_without_its_content(
        self, tmp_path: Path
    ) -> None:
        """An RSA key where the .p8 belongs, or a key that is no PEM: refused, and the error
        never quotes the file."""
        rsa_file = tmp_path / "rsa.p8"
        rsa_file.write_bytes(pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
        garbage = tmp_path / "garbage.p8"
        garbage.write_text("SECRET-MATERIAL")
        for path, reason in ((rsa_file, "EC P-256"), (garbage, "not a PEM private key")):
            with pytest.raises(ValidationError, match=reason) as info:
                NotifierSettings(
                    apns_key_file=path, apns_key_id="ABC123DEFG", apns_team_id="T" * 10
                )
            assert "SECRET" not in str(info.value)
            assert "PRIVATE KEY" not in str(info.value)

    def test_a_service_account_file_is_checked(self, tmp_path: Path) -> None:
        """A key file that is not a service account (or missing) is refused at start."""
        path = tmp_path / "sa.json"
        path.write_text(json.dumps({"type": "authorized_user", "private_key": "SECRET"}))
        with pytest.raises(ValidationError, match="not a service-account key") as info:
            NotifierSettings(fcm_credentials_file=path)
        assert "SECRET" not in str(info.value)
        with pytest.raises(ValidationError, match="cannot be read"):
            NotifierSettings(fcm_credentials_file=tmp_path / "missing.json")

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("apns_key_id", "abc"),
            ("apns_team_id", "TEAM 12345"),
            ("apns_environment", "staging"),
            ("apns_topic", "nodots"),
            ("fcm_project_id", "Bad_Project"),
            ("apns_host", "ftp://apns.example"),
        ],
    )
    def test_ids_and_hosts_are_validated(self, field: str, value: str) -> None:
        """Apple ids are 10 upper-case letters or digits, topics are bundle ids, hosts URLs."""
        with pytest.raises(ValidationError):
            NotifierSettings(**{field: value})  # type: ignore[arg-type]

    @pytest.mark.parametrize("ttl", ["P29D", "P60D", "-PT1H"])
    def test_a_push_ttl_fcm_would_refuse_is_refused_at_start(self, ttl: str) -> None:
        """FCM takes an android.ttl of 0 to 28 days and answers anything longer 400
        INVALID_ARGUMENT: NUDGE_PUSH_TTL past 28 days made every Android nudge a permanent
        failure, and a negative one became 0 unnoticed. Both are refused at start."""
        with pytest.raises(ValidationError, match="push_ttl"):
            NotifierSettings(push_ttl=ttl)  # type: ignore[arg-type]
        assert NotifierSettings(push_ttl="P28D").push_ttl.days == 28  # type: ignore[arg-type]
