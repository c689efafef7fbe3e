"""Delivery's `_SharedPick` (h/notify11): a nudge's partners get the items they got when the
catalog chose for each of them, for any couple, kind, sequence and sightings.

Each partner's item with one `_SharedPick` for the delivery (the catalog asked once for
date nights and check-ins) equals `_choose` without it (the catalog asked per partner), for
the benchmarks' couples (realistic and burst mixes: locales, love languages, focus areas,
contexts, check-in formats, daily questions) and sightings drawn from the catalog's ids.
Checked to fail with the pick shared for appreciation too.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, get_args

from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.burst import START
from benchmarks.harness import couple_event
from couples_nudge.common.clock import epoch_ms
from couples_nudge.common.couple_state import encode_profile, parse_couple
from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.notifier.content import Pool
from couples_nudge.notifier.delivery import Delivery, _Nudge, _SharedPick
from couples_nudge_schemas import NudgeKind, PreferencesSetData, parse_preference
from tests.support.notifier import due

CATALOG = load_catalog()
KINDS: tuple[NudgeKind, ...] = get_args(NudgeKind)
IDS = sorted({item.id for kind in KINDS for item in CATALOG.items(kind)})
AT = datetime(2026, 12, 4, 18, 0, tzinfo=UTC)


def _delivery() -> Delivery:
    delivery = Delivery.__new__(Delivery)
    delivery.catalog = CATALOG
    delivery._pools = {kind: Pool(kind, CATALOG.items(kind)) for kind in KINDS}
    delivery._gap_ms = int(timedelta(weeks=4).total_seconds() * 1000)
    return delivery


DELIVERY = _delivery()


@settings(max_examples=300)
@given(
    st.integers(0, 400),
    st.sampled_from(["realistic", "burst"]),
    st.sampled_from(KINDS),
    st.integers(0, 60),
    st.dictionaries(
        st.sampled_from(IDS), st.integers(epoch_ms(AT) - 200 * 86_400_000, epoch_ms(AT))
    ),
    st.booleans(),
)
def test_a_shared_pick_gives_each_partner_their_own_choice(
    i: int,
    mix: Literal["realistic", "burst"],
    kind: NudgeKind,
    sequence: int,
    seen: dict[str, int],
    daily: bool,
) -> None:
    data = parse_preference(couple_event(i, mix=mix, occurred=START)).data
    assert isinstance(data, PreferencesSetData)
    fields = {"rev": str(data.revision), **encode_profile(data)}
    if daily:
        fields["ci"] = "daily"
    couple = parse_couple({k.encode(): v.encode() for k, v in fields.items()})
    assert couple.profile is not None
    a, b = couple.profile.partners
    event = due(data.couple_id, f"{data.couple_id}/x/both", kind, [a.partner_id, b.partner_id], AT)
    event.data.__dict__["sequence"] = sequence  # a frozen model: its field set as validated
    nudge = _Nudge.of(event)
    shared = _SharedPick()
    with_pick = [
        DELIVERY._choose(nudge, couple, one, other, seen, None, shared)
        for one, other in ((a, b), (b, a))
    ]
    alone = [  # each partner's choice made on its own: a pick of its own
        DELIVERY._choose(nudge, couple, one, other, seen, None, _SharedPick())
        for one, other in ((a, b), (b, a))
    ]
    assert [item.id for item in with_pick] == [item.id for item in alone]
    assert with_pick == alone
