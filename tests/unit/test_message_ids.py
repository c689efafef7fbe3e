"""Message-IDs that name their nudge: made and read back without a lookup, signed so that a
report cannot name a nudge we never sent, and free of personal data."""

from __future__ import annotations

import email.utils
import re
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from couples_nudge.notifier.message_ids import MessageIds, MessageRef, provider_headers

OLD = ("k1", b"o" * 40)
NEW = ("k2", b"n" * 40)
REF = MessageRef("maya-sam", "maya", "maya-sam/d/both@1796407200")


class TestMessageIds:
    def test_round_trip(self) -> None:
        """A Message-ID reads back as the couple, partner and occurrence it was made for."""
        ids = MessageIds([NEW], "example.org")
        made = ids.message_id(REF)
        assert ids.read(made) == REF
        assert ids.read(f"Message-ID: {made}") == REF  # inside a header line too
        assert ids.read(made.strip("<>")) == REF  # Mailgun drops the brackets

    def test_is_a_valid_msg_id_without_names_or_addresses(self) -> None:
        """The id is <dot-atom@domain>, holds no '@' but the domain's, and no plain text."""
        made = MessageIds([NEW], "example.org").message_id(REF)
        assert re.fullmatch(r"<[A-Za-z0-9._-]+@example\.org>", made)
        assert email.utils.parseaddr(made)[1] == made.strip("<>")
        assert "maya" not in made

    def test_forged_or_tampered_ids_read_as_nothing(self) -> None:
        """A changed payload or MAC, an unknown key, or a random id name no nudge."""
        ids = MessageIds([NEW], "example.org")
        token = ids.token(REF)
        version, kid, _payload, mac = token.split(".")
        other = MessageIds([NEW], "x").token(MessageRef("c2", "sam", "c2/d/both@1"))
        forged_payload = other.split(".")[2]
        assert ids.read(f"<{version}.{kid}.{forged_payload}.{mac}@example.org>") is None
        assert ids.read(f"<{token[:-2]}AA@example.org>") is None
        assert MessageIds([("k3", b"z" * 40)], "example.org").read(token) is None
        assert ids.read("<20261204.abc@mail.example>") is None
        assert ids.read(None) is None
        assert ids.read("x" * 100_000) is None

    def test_rotation_verifies_old_ids(self) -> None:
        """With a new key first, ids made with the old key still read; new ones use the new."""
        old = MessageIds([OLD], "example.org").message_id(REF)
        rotated = MessageIds([NEW, OLD], "example.org")
        assert rotated.read(old) == REF
        assert ".k2." in rotated.message_id(REF)

    @given(
        st.lists(
            st.tuples(
                st.sampled_from([REF, MessageRef("c2", "sam", "c2/d/both@1")]),
                st.sampled_from(["token", "message_id"]),
                st.booleans(),
            ),
            max_size=8,
        )
    )
    def test_the_last_token_kept_is_the_ref_s_own(
        self, calls: list[tuple[MessageRef, str, bool]]
    ) -> None:
        """Tokens and Message-IDs asked for in any order, of the same ref object or an equal
        copy: each is what a MessageIds that never made another token gives."""
        ids = MessageIds([NEW], "example.org")
        for ref, method, copied in calls:
            asked = replace(ref) if copied else ref
            assert getattr(ids, method)(asked) == getattr(MessageIds([NEW], "example.org"), method)(
                ref
            )

    def test_same_send_same_id(self) -> None:
        """A retry of one send carries the same Message-ID."""
        ids = MessageIds([NEW], "example.org")
        assert ids.message_id(REF) == ids.message_id(REF)

    @pytest.mark.parametrize("header", ["X-SMTPAPI", "X-PM-Metadata-nudge-ref"])
    def test_provider_headers_carry_the_token(self, header: str) -> None:
        """SendGrid's and Postmark's echo headers hold the token, which reads back."""
        ids = MessageIds([NEW], "example.org")
        value = dict(provider_headers(ids.token(REF)))[header]
        assert ids.read(value) == REF
