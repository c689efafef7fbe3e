"""Specification of couples_nudge.notifier.actions: signed one-tap links, rotation, expiry."""

from __future__ import annotations

import contextlib
import string

import pytest

from couples_nudge.notifier.actions import ActionClaim, ActionTokens, ExpiredToken, InvalidToken
from couples_nudge.notifier.unsubscribe import UnsubscribeClaim, UnsubscribeTokens

OLD = ("k0", b"o" * 40)
NEW = ("k1", b"n" * 40)
DAY = 86_400
CLAIM = ActionClaim(
    couple_id="maya-sam",
    partner_id="maya",
    kind="date_night",
    occurrence_id="maya-sam/d/both@1796407200",
    action="skip",
    sequence=4,
    issued_at=1_796_407_201,
)


def tokens(*keys: tuple[str, bytes]) -> ActionTokens:
    return ActionTokens(list(keys), "https://nudges.example.org/", max_age_s=30 * DAY)


class TestActionTokens:
    def test_a_signed_claim_verifies_to_itself(self) -> None:
        """What is signed comes back, field for field."""
        t = tokens(NEW)
        assert t.verify(t.sign(CLAIM), now_s=CLAIM.issued_at) == CLAIM

    def test_rotation_old_links_keep_working_until_their_key_is_dropped(self) -> None:
        """A new key first signs; the old key still verifies; dropping it revokes its links."""
        old_link = tokens(OLD).sign(CLAIM)
        assert tokens(NEW, OLD).verify(old_link, now_s=CLAIM.issued_at) == CLAIM
        assert tokens(NEW, OLD).sign(CLAIM).startswith("k1.")
        with pytest.raises(InvalidToken):
            tokens(NEW).verify(old_link, now_s=CLAIM.issued_at)

    @pytest.mark.parametrize("where", [0, 5, -3])
    def test_a_tampered_token_is_refused(self, where: int) -> None:
        """Any changed character (key id, payload, MAC) makes the token invalid."""
        token = tokens(NEW).sign(CLAIM)
        flipped = "A" if token[where] != "A" else "B"
        with pytest.raises(InvalidToken):
            tokens(NEW).verify(token[:where] + flipped + token[where + 1 :], now_s=0)

    def test_a_token_verifies_only_as_it_was_signed(self) -> None:
        """The MAC's last base64url character carries 2 unused bits, which the decoder
        ignored: four spellings of every link verified. Only the signed one does now."""
        t = tokens(NEW)
        token = t.sign(CLAIM)
        alphabet = string.ascii_letters + string.digits + "-_"
        accepted = []
        for c in alphabet.replace(token[-1], ""):
            with contextlib.suppress(InvalidToken):
                accepted.append(t.verify(token[:-1] + c, now_s=CLAIM.issued_at))
        assert accepted == []

    def test_an_unsubscribe_token_is_not_an_action_token(self) -> None:
        """Same secret, different derived key: one kind of link cannot act as the other."""
        unsubscribe = UnsubscribeTokens([NEW], "https://n.example").sign(
            UnsubscribeClaim(couple_id="c", partner_id="p", scope="all", issued_at=1)
        )
        with pytest.raises(InvalidToken):
            tokens(NEW).verify(unsubscribe, now_s=1)

    def test_one_tap_links_expire_and_manage_links_do_not(self) -> None:
        """An answer to a nudge of long ago is refused; the manage page keeps working."""
        t = tokens(NEW)
        later = CLAIM.issued_at + 31 * DAY
        with pytest.raises(ExpiredToken):
            t.verify(t.sign(CLAIM), now_s=later)
        manage = CLAIM.model_copy(update={"action": "manage"})
        assert t.verify(t.sign(manage), now_s=later).action == "manage"

    def test_links_are_pages_of_this_service_not_redirects(self) -> None:
        """One-tap links open /a/<token>, the manage link /manage/<token>, nothing else."""
        t = tokens(NEW)
        assert t.link(CLAIM).startswith("https://nudges.example.org/a/k1.")
        manage = CLAIM.model_copy(update={"action": "manage"})
        assert t.link(manage).startswith("https://nudges.example.org/manage/k1.")
