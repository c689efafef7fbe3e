"""The couple hash: what the scheduler writes and the notifier reads at send time. Pure codec.

Fields of nudges:couple:{sNN}:<couple>:
    rev                      revision of the last applied preferences.set
    profile                  PreferencesSetData JSON (names, zones, channels, love languages)
    sids                     comma-separated schedule ids (what erasure and re-planning remove)
    pause                    "<occurred_ms>|<until_ms|inf|off>", last writer wins
    pause:<partner>          the same for one partner
    unsub:<partner>:<kind>:<channel>   occurred_ms; kind, channel may be "all"
    dead:<partner>:<channel> occurred_ms; a channel that answered "gone" (bad address, 410)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from schemas import PreferencesSetData

__all__ = ["CoupleState", "parse_couple", "pause_value"]

OFF: Final = "off"
FOREVER: Final = "inf"


def pause_value(occurred_ms: int, until_ms: int | None, *, resume: bool = False) -> str:
    state = OFF if resume else (FOREVER if until_ms is None else str(until_ms))
    return f"{occurred_ms}|{state}"


def _paused(raw: str | None, now_ms: int) -> bool:
    if not raw:
        return False
    _, _, state = raw.partition("|")
    if state == OFF:
        return False
    return state == FOREVER or now_ms < int(state)


@dataclass(frozen=True, slots=True)
class CoupleState:
    profile: PreferencesSetData | None
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.profile is not None

    def paused(self, partner_id: str, now_ms: int) -> bool:
        return _paused(self.fields.get("pause"), now_ms) or _paused(
            self.fields.get(f"pause:{partner_id}"), now_ms
        )

    def unsubscribed(self, partner_id: str, kind: str, channel: str) -> bool:
        if not any(name.startswith("unsub:") for name in self.fields):
            return False  # the common case, checked once per call without building keys
        return any(
            f"unsub:{partner_id}:{k}:{c}" in self.fields
            for k in (kind, "all")
            for c in (channel, "all")
        )

    def channel_dead(self, partner_id: str, channel: str) -> bool:
        return f"dead:{partner_id}:{channel}" in self.fields


def parse_couple(raw: dict[bytes, bytes]) -> CoupleState:
    fields = {k.decode(): v.decode() for k, v in raw.items()}
    profile_json = fields.pop("profile", None)
    profile = PreferencesSetData.model_validate_json(profile_json) if profile_json else None
    return CoupleState(profile=profile, fields=fields)
