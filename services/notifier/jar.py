"""The couple's own date jar at send time: whether an occurrence draws from it, what names the
draw, and the drawn idea as a nudge's content. Pure: no I/O (the draw: jar_store.py).

- source "jar": every date night draws from the jar; "mixed": the jar on even occurrences of
  the schedule (NudgeDue.sequence 0, 2, 4, ...) and the catalog on odd ones. An empty jar
  gives the catalog's idea instead.
- One draw per nudge, whoever gets it: a shared occurrence is named by its occurrence id, a
  per-partner one by the recipient's local day (occurrence_day.py). The draw is recorded under
  that name, so both partners and every redelivery get the same idea.
- The idea's text is personal data: it goes into the view (escaped by the templates), never
  into an outcome (content_id "jar:<idea id>") or a log line.
"""

from __future__ import annotations

import hashlib
import json
from typing import Final, NamedTuple

from couples_nudge.notifier.catalog import Item
from couples_nudge.notifier.occurrence_day import content_day, is_shared
from couples_nudge.notifier.render import jar_texts
from couples_nudge_schemas import NudgeDueData

__all__ = ["JarIdea", "draw_key", "draw_pick", "draws_from_jar", "jar_item", "parse_draw"]

CONTENT_PREFIX: Final = "jar:"


class JarIdea(NamedTuple):
    idea_id: str
    text: str
    added_by: str


def draws_from_jar(source: str, sequence: int) -> bool:
    """Whether a date night with this source and schedule sequence draws from the jar."""
    return source == "jar" or (source == "mixed" and sequence % 2 == 0)


def draw_key(data: NudgeDueData, *, recipient_zone: str, couple_zone: str) -> str:
    """What the draw of an occurrence is recorded under (see the module docstring)."""
    if is_shared(data.schedule_id):
        return data.occurrence_id
    day = content_day(data, recipient_zone=recipient_zone, couple_zone=couple_zone)
    return f"{data.kind}@{day.isoformat()}"


def draw_pick(key: str) -> int:
    """A number from the draw's name (31 bits: exact in Lua), picking among the undrawn."""
    digest = hashlib.blake2b(key.encode(), digest_size=4, person=b"nudge-jar").digest()
    return int.from_bytes(digest, "big") >> 1


def parse_draw(idea_id: bytes, entry: bytes) -> JarIdea:
    """An idea as the jar hash stores it (JSON written by the scheduler from a valid event)."""
    values = json.loads(entry)
    return JarIdea(idea_id.decode(), str(values["text"]), str(values["added_by"]))


def jar_item(idea: JarIdea, locale: str) -> Item:
    """The content of a date night drawn from the jar: the interface's words around the idea,
    which the view carries apart (NudgeView.jar_idea), never in a text that is formatted."""
    title, body = jar_texts(locale)
    return Item(
        id=f"{CONTENT_PREFIX}{idea.idea_id}",
        kind="date_night",
        title=title,
        body=body,
        detail="",
        focus=frozenset(),
        love_languages=frozenset(),
    )
