"""The daily question: one check-in question a day, the same for both partners. Pure: no I/O.

A couple whose check-in cadence is `daily` gets a question of the catalog (format "question")
every day instead of a scored choice. The couple's questions stand in an order of its own (the
questions sorted by a hash of couple id and item id), and the day's question is the one at
(the day's ordinal mod the number of questions): consecutive days walk the order, so a
question comes back only after every other one has been asked, N days later (N: the number of
questions, 125 in the English catalog: more than the 90-day repeat window, and a year of
daily questions repeats none inside it). Both partners get the question of the same day
(occurrence_day.py), at their own local time. A question added to the catalog takes its place
in every couple's order, which moves the later ones by one day.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date

from couples_nudge.notifier.catalog import Item

__all__ = ["question_for", "questions_in_order"]


def _rank(couple_id: str, item_id: str) -> bytes:
    return hashlib.blake2b(f"{couple_id}|{item_id}".encode(), digest_size=8).digest()


def questions_in_order(items: Sequence[Item], couple_id: str) -> list[Item]:
    """The catalog's check-in questions in the couple's own order."""
    questions = [i for i in items if i.kind == "check_in" and i.format == "question"]
    return sorted(questions, key=lambda i: (_rank(couple_id, i.id), i.id))


def question_for(items: Sequence[Item], *, couple_id: str, day: date) -> Item | None:
    """The couple's question of `day` (None when the catalog has no question)."""
    ordered = questions_in_order(items, couple_id)
    return ordered[day.toordinal() % len(ordered)] if ordered else None
