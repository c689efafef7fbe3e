"""collections_held: no cyclic collection inside, collection as it was after (nestable)."""

from __future__ import annotations

import gc

import pytest

from couples_nudge.common.runtime import collections_held


class TestCollectionsHeld:
    def test_nested_blocks_resume_collection_after_the_outermost(self) -> None:
        """Collection is off inside every block and back on only after the outermost."""
        assert gc.isenabled()
        with collections_held():
            assert not gc.isenabled()
            with collections_held():
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert gc.isenabled()

    def test_collection_off_before_stays_off(self) -> None:
        """A caller that had turned collection off finds it off afterwards."""
        gc.disable()
        try:
            with collections_held():
                pass
            assert not gc.isenabled()
        finally:
            gc.enable()

    def test_resumes_after_an_error(self) -> None:
        """An exception leaving the block still resumes collection."""
        with pytest.raises(RuntimeError), collections_held():
            raise RuntimeError("boom")
        assert gc.isenabled()
