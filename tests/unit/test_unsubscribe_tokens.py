"""Specification of couples_nudge.notifier.unsubscribe: signed, rotatable one-click tokens.

A token is "<kid>.<payload64>.<mac64>", payload "v1|couple|partner|scope|issued_at", MAC an
HMAC-SHA256 over "<kid>.<payload64>". The first key signs; every configured key verifies.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import re
import string

import pytest
from pydantic import SecretStr, ValidationError

from couples_nudge.notifier.settings import NotifierSettings
from couples_nudge.notifier.unsubscribe import (
    MAX_TOKEN_LENGTH,
    InvalidToken,
    UnsubscribeClaim,
    UnsubscribeTokens,
    parse_keys,
)

SECRET_A = "a" * 32
SECRET_B = "correct-horse-battery-staple-0123456789"
BASE = "https://nudges.example.org"
CLAIM = UnsubscribeClaim(
    couple_id="maya-sam", partner_id="maya", scope="date_night", issued_at=1_796_000_000
)


def tokens(*entries: str, base: str = BASE) -> UnsubscribeTokens:
    return UnsubscribeTokens.from_secrets([SecretStr(e) for e in entries], base)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def forge(kid: str, secret: str, payload: str) -> str:
    """A token built by hand, the way the module documents it."""
    payload64 = b64(payload.encode())
    mac = hmac.new(secret.encode(), f"{kid}.{payload64}".encode(), hashlib.sha256).digest()
    return f"{kid}.{payload64}.{b64(mac)}"


class TestSignAndVerify:
    def test_round_trip(self) -> None:
        """A signed token verifies to the same claim."""
        signer = tokens(f"k1:{SECRET_A}")
        assert signer.verify(signer.sign(CLAIM)) == CLAIM

    @pytest.mark.parametrize("scope", ["date_night", "check_in", "appreciation", "all"])
    def test_every_scope(self, scope: str) -> None:
        """Each nudge kind and "all" is a scope a token can carry."""
        signer = tokens(f"k1:{SECRET_A}")
        claim = CLAIM.model_copy(update={"scope": scope})
        assert signer.verify(signer.sign(claim)).scope == scope

    def test_documented_format(self) -> None:
        """The token is exactly the documented construction (other languages can verify it)."""
        token = tokens(f"k1:{SECRET_A}").sign(CLAIM)
        assert token == forge("k1", SECRET_A, "v1|maya-sam|maya|date_night|1796000000")

    def test_url_safe(self) -> None:
        """Tokens use only URL-safe characters and fit comfortably in a header line."""
        token = tokens(f"k1:{SECRET_A}").sign(
            CLAIM.model_copy(update={"couple_id": "c" * 64, "partner_id": "p" * 64})
        )
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)
        assert len(token) <= MAX_TOKEN_LENGTH

    def test_link(self) -> None:
        """Links are <public_url>/unsubscribe/<token>; a trailing slash in the base is dropped."""
        signer = tokens(f"k1:{SECRET_A}", base=BASE + "/")
        token = signer.sign(CLAIM)
        assert signer.link(CLAIM) == f"{BASE}/unsubscribe/{token}"


class TestRotation:
    def test_first_key_signs(self) -> None:
        """With several keys, the first one signs."""
        assert tokens(f"new:{SECRET_B}", f"old:{SECRET_A}").sign(CLAIM).startswith("new.")

    def test_older_keys_still_verify(self) -> None:
        """A link signed before a rotation keeps working while its key is configured."""
        before = tokens(f"old:{SECRET_A}").sign(CLAIM)
        assert tokens(f"new:{SECRET_B}", f"old:{SECRET_A}").verify(before) == CLAIM

    def test_dropped_key_no_longer_verifies(self) -> None:
        """Removing a key revokes every link it signed."""
        before = tokens(f"old:{SECRET_A}").sign(CLAIM)
        with pytest.raises(InvalidToken):
            tokens(f"new:{SECRET_B}").verify(before)


class TestRefusals:
    SIGNER = tokens(f"k1:{SECRET_A}")

    def test_tampered_payload(self) -> None:
        """Changing the payload (another partner) breaks the signature."""
        kid, _, mac = self.SIGNER.sign(CLAIM).split(".")
        other = b64(b"v1|maya-sam|sam|date_night|1796000000")
        with pytest.raises(InvalidToken):
            self.SIGNER.verify(f"{kid}.{other}.{mac}")

    def test_tampered_signature(self) -> None:
        """A changed signature character is refused."""
        token = self.SIGNER.sign(CLAIM)
        flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
        with pytest.raises(InvalidToken):
            self.SIGNER.verify(flipped)

    def test_forged_with_another_secret(self) -> None:
        """A well-formed token signed with a secret we do not hold is refused."""
        with pytest.raises(InvalidToken):
            self.SIGNER.verify(forge("k1", "x" * 32, "v1|maya-sam|maya|all|1"))

    def test_unknown_key_id(self) -> None:
        """A kid we do not know is refused, even with our own secret behind it."""
        with pytest.raises(InvalidToken):
            self.SIGNER.verify(forge("k9", SECRET_A, "v1|maya-sam|maya|all|1"))

    @pytest.mark.parametrize(
        "payload",
        [
            "v2|maya-sam|maya|all|1",  # another version
            "v1|maya-sam|maya|everything|1",  # unknown scope
            "v1|maya sam|maya|all|1",  # not a valid id
            "v1|maya-sam|maya|all|-1",  # not a time
            "v1|maya-sam|maya|all",  # a field missing
            "v1|maya-sam|maya|all|1|extra",  # a field too many
        ],
    )
    def test_signed_but_unreadable(self, payload: str) -> None:
        """Even correctly signed, a payload outside the format is refused."""
        with pytest.raises(InvalidToken):
            self.SIGNER.verify(forge("k1", SECRET_A, payload))

    @pytest.mark.parametrize(
        "token",
        ["", "k1", "k1.abc", "k1.a.b.c", "k1.!!!.abc", "k1.abc.%%%", "k1." + "A" * 600 + ".x"],
    )
    def test_malformed(self, token: str) -> None:
        """Garbage of any shape is refused without an exception other than InvalidToken."""
        with pytest.raises(InvalidToken):
            self.SIGNER.verify(token)


class TestOneSpelling:
    SIGNER = tokens(f"k1:{SECRET_A}")

    def test_a_token_verifies_only_as_it_was_signed(self) -> None:
        """A 32-byte MAC is 43 base64url characters, the last carrying 2 unused bits: the
        decoder ignored them, so four spellings of every token verified (and a trailing
        newline, which the pattern's `$` let through). Only the signed spelling does now."""
        token = self.SIGNER.sign(CLAIM)
        assert self.SIGNER.verify(token) == CLAIM
        alphabet = string.ascii_letters + string.digits + "-_"
        others = [token[:-1] + c for c in alphabet if c != token[-1]] + [token + "\n"]
        accepted = []
        for other in others:
            with contextlib.suppress(InvalidToken):
                accepted.append(self.SIGNER.verify(other))
        assert accepted == []


class TestKeys:
    @pytest.mark.parametrize(
        ("entry", "message"),
        [
            (SECRET_A, "must be 'kid:secret'"),
            (f"bad kid:{SECRET_A}", "must be 'kid:secret'"),
            ("k1:short-secret", "shorter than 32"),
        ],
    )
    def test_bad_entries(self, entry: str, message: str) -> None:
        """Entries without a proper kid or with a short secret are refused, naming the rule."""
        with pytest.raises(ValueError, match=message) as info:
            parse_keys([SecretStr(entry)])
        assert "short-secret" not in str(info.value)
        assert SECRET_A not in str(info.value)

    def test_duplicate_kid(self) -> None:
        """A key id may appear once."""
        with pytest.raises(ValueError, match="appears twice"):
            parse_keys([SecretStr(f"k1:{SECRET_A}"), SecretStr(f"k1:{SECRET_B}")])


class TestSettings:
    def test_comma_separated_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """NUDGE_UNSUBSCRIBE_SECRETS takes comma-separated entries, first one first."""
        monkeypatch.setenv("NUDGE_UNSUBSCRIBE_SECRETS", f"new:{SECRET_B}, old:{SECRET_A}")
        monkeypatch.setenv("NUDGE_PUBLIC_URL", "https://nudges.example.org/")
        settings = NotifierSettings()
        assert [s.get_secret_value() for s in settings.unsubscribe_secrets] == [
            f"new:{SECRET_B}",
            f"old:{SECRET_A}",
        ]
        assert settings.public_url == "https://nudges.example.org"
        assert settings.unsubscribe_enabled

    def test_off_by_default(self) -> None:
        """Without configuration there are no unsubscribe links."""
        assert not NotifierSettings().unsubscribe_enabled

    @pytest.mark.parametrize(
        "overrides",
        [
            {"public_url": BASE},
            {"unsubscribe_secrets": [f"k1:{SECRET_A}"]},
        ],
    )
    def test_both_or_neither(self, overrides: dict[str, object]) -> None:
        """A base URL without keys, or keys without a base URL, is a configuration error."""
        with pytest.raises(ValidationError, match="go together"):
            NotifierSettings(**overrides)  # type: ignore[arg-type]

    def test_errors_do_not_echo_secrets(self) -> None:
        """A bad secret is reported without its value."""
        with pytest.raises(ValidationError) as info:
            NotifierSettings(
                public_url=BASE,
                unsubscribe_secrets=[SecretStr("k1:too-short-to-be-safe")],
            )
        assert "too-short-to-be-safe" not in str(info.value)

    @pytest.mark.parametrize("url", ["ftp://x.example", "nudges.example.org", f"{BASE}?a=1"])
    def test_public_url_is_http(self, url: str) -> None:
        """The base of links is an http(s) URL without a query."""
        with pytest.raises(ValidationError, match="public_url"):
            NotifierSettings(public_url=url, unsubscribe_secrets=[SecretStr(f"k1:{SECRET_A}")])
