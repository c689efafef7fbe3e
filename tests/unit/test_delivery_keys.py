"""`Keys.delivery_keys` names a couple's four keys exactly as their own methods do."""

from __future__ import annotations

import pytest

from couples_nudge.common import keys as keys_module
from couples_nudge.common.keys import Keys
from couples_nudge.notifier.state import CoupleKeys, NotifierState


class TestDeliveryKeys:
    @pytest.mark.parametrize("prefix", ["nudges", "bench:x", "p"])
    @pytest.mark.parametrize("shards", [1, 8, 16, 99, 100, 101, 250])
    def test_equal_to_each_keys_own_method(self, prefix: str, shards: int) -> None:
        """couple, sent, seen, outbox: the same strings, in LOAD's KEYS order."""
        keys = Keys(prefix=prefix, shards=shards)
        for n in range(300):
            couple_id = f"c{n}-{'x' * (n % 7)}"
            assert keys.delivery_keys(couple_id) == (
                keys.couple(couple_id),
                keys.sent(couple_id),
                keys.seen(couple_id),
                keys.outbox(couple_id),
            )

    def test_the_prebuilt_tags_are_the_tags(self) -> None:
        """`_TAGS`: the tag "{sNN}" of each shard it holds, as `_tag` formats the others."""
        expected = [f"{{s{shard:02d}}}" for shard in range(keys_module._TAGGED)]
        assert list(keys_module._TAGS) == expected
        keys = Keys(shards=1)
        assert keys._tag(keys_module._TAGGED) == f"{{s{keys_module._TAGGED}}}"
        assert keys._tag(7) == "{s07}"

    def test_the_notifier_keeps_them_as_couple_keys(self) -> None:
        """NotifierState.couple_keys: a CoupleKeys with the four, by name."""
        keys = Keys(prefix="nudges", shards=8)
        state = NotifierState.__new__(NotifierState)
        state.keys, state._couple_keys = keys, {}
        found = state.couple_keys("abc")
        assert type(found) is CoupleKeys
        assert found == CoupleKeys(
            keys.couple("abc"), keys.sent("abc"), keys.seen("abc"), keys.outbox("abc")
        )
        assert found.outbox == keys.outbox("abc")
        assert state.couple_keys("abc") is found
