"""Building an email's wire bytes directly: fast, and exactly what goes over SMTP. Pure.

The standard library's EmailMessage (policy machinery, content managers, header folding) costs
about 2 ms per message, which capped the notifier at a few hundred emails a second. A nudge is
always the same shape (multipart/alternative: text + HTML, UTF-8), so we write it ourselves:
RFC 2047 for non-ASCII header text, a quoted-printable text part and a base64 HTML part,
CRLF line ends, headers on one line (RFC 5322 allows 998 characters; a folded
List-Unsubscribe URL breaks mail clients) but for encoded-words: at most 75 characters
each, on lines of at most 76, as RFC 2047 requires (a long name in Greek is several).
Anything unusual (a non-ASCII address, a header too long for one line) goes through the
standard library instead, so correctness never depends on the fast path.

A part that is ASCII, with no line longer than 998 characters and no NUL or bare CR, is
already valid 7bit content (RFC 2045 2.7, the default encoding): it goes as it is, with CRLF
line ends, and costs no encoding at all (an English appreciation email: ~20 us of base64 and
quoted-printable before; a date night's time has a no-break space, so its parts are encoded).
Any other part is encoded as before. Message-IDs made here (when the sender gives none) and
boundaries are unique by a random token per process and a counter, not by fresh randomness
per message: the boundary cannot occur in an encoded part anyway ("=_" is neither base64 nor
quoted-printable output) nor in a 7bit part (checked).

A text part whose every value ends its line (QpPlan's `_CutLines`: the usual email) is one
str join per email: its static lines and prefixes encoded once, each value written as it
is (cut into 76-character lines when long) when all of them are literal, told at once by
one translate over the values joined by a separator outside ASCII (so in none of the
ASCII values). Invariant: b2a_qp writes such a value unchanged but for soft breaks, as
`_CutLine.encode` does. No cache here holds a name or an address (a quoted To is made per
email); `_qp_line` holds time lines only.

The head is one f-string per email after an opening (Subject and From, RFC 2047 and measured
once per subject and sender: `_opening`). Only the lines with per-message values are measured,
and only when To, Message-ID and the extra headers are longer together than a line may be
(each is then shorter: the usual case); property test: tests/property/test_email_head.py.
"""

from __future__ import annotations

import binascii
import email.policy
import functools
import itertools
import operator
import re
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.header import Header
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any, Final, NamedTuple

__all__ = [
    "AUTO_SUBMITTED",
    "Encoded",
    "PlannedHtml",
    "PlannedText",
    "QpPlan",
    "SevenBitPlan",
    "build_email",
    "picker",
    "qp",
]

_MAX_HEADER_LINE: Final = 998  # and of a 7bit body line (RFC 5322 2.1.1)
_WORDS_LINE: Final = 76  # a header line holding an RFC 2047 encoded-word (RFC 2047 2)
_PROCESS_TOKEN: Final = secrets.token_hex(8)  # see the module docstring
_SERIALS: Final = itertools.count(int(time.time() * 1000) << 20)  # rises across restarts too
_BOUNDARY: Final = "=_nudge_"  # how every boundary starts (then the token and a serial)


def _text(value: str, name: str = "Subject") -> str:
    """Header `name`'s value: as is when ASCII, else RFC 2047 encoded-words (each at most 75
    characters), folded (CRLF SPACE) into lines of at most 76 with the name (RFC 2047 2)."""
    if value.isascii():
        return value
    return Header(value, "utf-8", maxlinelen=_WORDS_LINE, header_name=name).encode(linesep="\r\n")


def _seven_bit(body: str, boundary: str) -> bytes | None:
    """The part's wire bytes when it can go as 7bit (see the module docstring), else None."""
    if not body.isascii() or "\x00" in body or boundary in body:
        return None
    if "\r" in body:  # rare: a CR is allowed only as the start of a CRLF
        body = body.replace("\r\n", "\n")
        if "\r" in body:
            return None
    data = body.encode("ascii")  # ASCII: as cheap as a copy, and bytes find and replace faster
    if _has_long_line(data):
        return None
    return data.replace(b"\n", b"\r\n")


def _has_long_line(data: bytes) -> bool:
    """Whether a line (between LFs) is longer than 998 bytes, measuring only the lines that
    hold every 999th byte: a longer line spans 999 positions in a row, so it holds one of them
    (exact, and ~5x cheaper than splitting an email's ~70 lines to measure them all)."""
    step = _MAX_HEADER_LINE + 1
    for at in range(step - 1, len(data), step):
        start = data.rfind(b"\n", 0, at) + 1  # 0 when the line is the first
        end = data.find(b"\n", at)
        if (len(data) if end < 0 else end) - start > _MAX_HEADER_LINE:
            return True
    return False


def _qp(body: str) -> bytes:
    if "\r" in body:  # a search for one character is cheaper than a replace that finds none
        body = body.replace("\r\n", "\n")
    data = binascii.b2a_qp(body.encode("utf-8"), istext=True)
    return data.replace(b"\n", b"\r\n")


def qp(body: str) -> bytes:
    """A text part as quoted-printable wire bytes (CRLF line ends), as build_email makes it."""
    return _qp(body)


class Encoded(NamedTuple):
    """A part already encoded by the caller (QpPlan.encode): its transfer encoding and bytes.
    Made per email by `_NEW(Encoded, (encoding, data))`: a NamedTuple's own __new__ is a
    Python function (~1.5k instructions more a call)."""

    encoding: str
    data: bytes


# _NEW(Cls, (field, ...)): a NamedTuple without its Python __new__ (~1.5k instructions).
# Invariant: the tuple holds every field, in the class's order (no defaults are filled in);
# each caller's construction is pinned by a test (Encoded, PlannedHtml: the email plan's
# property tests; render.NudgeView: test_render's keyword view). One of four such aliases
# (scheduler ingest's _new_plan, scheduler shapes' _new_arm, notifier state's _new_tuple),
# each owned by its module.
_NEW: Final = tuple.__new__


_CUT: Final = "\x1a"  # a line of it separates the lines with slots in QpPlan's one pass
_CUT_QP: Final = b"=1A\r\n"  # that line quoted-printable, CRLF (a literal "=" is "=3D")
_QP_LINE: Final = 76  # b2a_qp's MAXLINESIZE: a soft break before a line would reach it
# Per byte: 1 where b2a_qp(istext) writes it as it is in a line's middle (space to "~" but
# "="), else 0: one translate and a search for a 0 tell a literal value.
_LITERAL: Final = bytes(int(32 <= b <= 126 and b != 0x3D) for b in range(256))


class _CutLine(NamedTuple):
    """A line that is a static prefix and one value (a URL), encoded without b2a_qp when the
    value is all literal characters (QpPlan.plan)."""

    slot: int  # which value ends the line
    prefix: str  # the static text before it
    encoded_prefix: bytes  # the prefix's quoted-printable (CRLF), with any soft break due
    first: int  # how many characters of the value fit before the first soft break
    # A value that is not literal: `_qp_line` (cached, QpPlan.plan's `cached`) or `_qp_line_of`.
    other: Callable[[str, str], bytes | None]

    @classmethod
    def of(cls, slot: int, prefix: str, cached: bool = False) -> _CutLine:
        # Two literal characters after the prefix stand for any value of two or more: b2a_qp's
        # look-ahead sees the same (not a line end), so the prefix encodes the same.
        head = binascii.b2a_qp((prefix + "xx").encode("utf-8"), istext=True)[:-2]
        column = len(head) - (head.rfind(b"\n") + 1)
        other = _qp_line if cached else _qp_line_of
        return cls(slot, prefix, head.replace(b"\n", b"\r\n"), _QP_LINE - 1 - column, other)

    def encode(self, value: str) -> bytes | None:
        """The line's wire bytes with this value, CRLF; None when the value holds a CR."""
        data = value.encode("ascii") if value.isascii() else b""
        if (
            len(data) < 2
            # A byte b2a_qp would encode, or an LF. `0 in`, not `b"\x00" in`: a bytes needle is
            # first tried as an int, raising and clearing a TypeError (~2k instructions).
            or 0 in data.translate(_LITERAL)
            or data[-1] == 0x20  # a space ending a line is encoded
        ):
            return self.other(self.prefix, value)
        # b2a_qp writes a literal character as it is and breaks ("=" LF) before one that
        # would be the line's 76th, unless it is the last before the line end.
        n, at = len(data), self.first
        if n <= at + 1:
            return b"%s%s\r\n" % (self.encoded_prefix, data)
        pieces = [data[:at]]
        while n - at > _QP_LINE:
            pieces.append(data[at : at + _QP_LINE - 1])
            at += _QP_LINE - 1
        pieces.append(data[at:])
        return b"%s%s\r\n" % (self.encoded_prefix, b"=\r\n".join(pieces))


def _qp_line_of(prefix: str, value: str) -> bytes | None:
    """A cut line whose value is not all literal characters, by b2a_qp (None when the value
    holds a CR)."""
    if "\r" in value:
        return None
    return _qp(f"{prefix}{value}\n")


# The same, cached, for the cut lines the plan's caller names (QpPlan.plan's `cached`): the
# time's line (a no-break space), the same for the couples of one instant, zone and locale
# (as locales.format_when is). Only those: the cache holds no name nor anything a couple
# wrote (a name with an accent is encoded per email, as it is new per couple anyway).
_qp_line: Final = functools.lru_cache(maxsize=1024)(_qp_line_of)


@functools.lru_cache(maxsize=1024)
def _qp_line_str(prefix: str, value: str) -> str | None:
    """`_qp_line` as a str (ASCII), for `_CutLines`' one join: decoded once per line, not per
    email. The same values as `_qp_line` (the time's lines): no personal data."""
    data = _qp_line(prefix, value)
    return None if data is None else data.decode("ascii")


_SEPARATOR: Final = "\x80"  # joins the values of _CutLines: not ASCII, so in none of them
_SPACE_BEFORE_SEPARATOR: Final = " \x80"
# _LITERAL with the separator's byte (latin-1) as literal too.
_LITERAL_OR_SEPARATOR: Final = bytes(int(n == 0x80 or b) for n, b in enumerate(_LITERAL))


def _soft_broken(value: str, first: int) -> str:
    """A literal value cut as b2a_qp cuts it after a prefix (`_CutLine.encode`'s loop): the
    first `first` characters, then lines of 75, "=" CRLF between them."""
    n, at = len(value), first
    if n <= at + 1:
        return value
    pieces = [value[:at]]
    while n - at > _QP_LINE:
        pieces.append(value[at : at + _QP_LINE - 1])
        at += _QP_LINE - 1
    pieces.append(value[at:])
    return "=\r\n".join(pieces)


class _CutLines(NamedTuple):
    """A QpPlan whose segments are all cut lines (no line holds a slot but at its end), as
    one str join per email: the encoded statics and prefixes, each line's CRLF, around the
    values of the cut lines not cached (`pick`), which are written as they are when every one
    of them is literal (checked at once: `QpPlan.encode`), and the cached lines' encodings."""

    parts: tuple[str, ...]  # the encoded text around each segment's value (ASCII)
    pick: Callable[[Sequence[str]], Sequence[str]]  # the values of the lines not cached
    firsts: tuple[int, ...]  # per such line: `_CutLine.first`
    fits: frozenset[int]  # lengths of values written as they are on any such line: 2..first+1
    cached: tuple[tuple[int, _CutLine], ...]  # the cached lines, by place among segments

    @classmethod
    def of(
        cls, statics: Sequence[bytes], segments: Sequence[_CutLine], cached: Collection[int]
    ) -> _CutLines | None:
        """None unless some segment is a cut line whose value is not cached."""
        free = [line for line in segments if line.slot not in cached]
        if not free:
            return None
        parts = [statics[0].decode("ascii")]
        for line, static in zip(segments, statics[1:], strict=True):
            if line.slot in cached:
                parts.append(static.decode("ascii"))
            else:
                parts[-1] += line.encoded_prefix.decode("ascii")
                parts.append("\r\n" + static.decode("ascii"))
        firsts = tuple(line.first for line in free)
        return cls(
            tuple(parts),
            picker(tuple(line.slot for line in free)),
            firsts,
            frozenset(range(2, min(firsts) + 2)),
            tuple((n, line) for n, line in enumerate(segments) if line.slot in cached),
        )


@dataclass(frozen=True, slots=True)
class QpPlan:
    """A text part's quoted-printable made once for its static lines (see `plan`)."""

    statics: tuple[bytes, ...]  # the static lines around the other segments, encoded
    parts: tuple[str, ...]  # the lines with slots (not cut lines) as one text: its pieces
    slots: tuple[int, ...]  # which value goes in each slot of `parts`
    chunks: int  # how many runs of lines `parts` holds (between statics, cut-separated)
    # The cut lines, each with its place among the segments between statics (in order).
    lines: tuple[tuple[int, _CutLine], ...]
    pick: Callable[[Sequence[str]], Sequence[str]]  # the values of `slots`: picker(slots)
    cut_lines: _CutLines | None  # when every segment is a cut line: one join (`encode`)

    @classmethod
    def plan(
        cls,
        parts: Sequence[str],
        slots: Sequence[int],
        cut: Collection[int] = (),
        cached: Collection[int] = (),
    ) -> QpPlan | None:
        """The plan of the text `parts[0] + values[slots[0]] + parts[1] + ...`; None when
        the static text holds a CR or the cut character (\\x1a). A line that is a static
        prefix and then a value in `cut` (URLs) is encoded by `_CutLine` when the value is
        all literal characters: only cut into 76-character lines; else by b2a_qp, through
        a cache for the values in `cached` (no personal data: `_qp_line`).

        The invariant it relies on: b2a_qp(istext) encodes each line apart from the others.
        Its state across a line end is only the line length (back to 0) and whether the
        data uses CRLF (found once, at the first LF: never here, as the values hold no CR:
        `encode` checks); a line's look-ahead (a dot or a space at the end of the data, a
        soft break before the last character) never crosses its LF. So a text cut just
        after LFs encodes as the concatenation of its pieces' encodings: the lines of the
        static text alone are encoded once, here, the cut lines apart, and the other lines
        that hold slots, per message, in one b2a_qp call, a line of the cut character
        between them (encoded "=1A", which nothing else encodes to: `encode` refuses values
        that hold it)."""
        if len(parts) != len(slots) + 1:
            raise ValueError("one more part than slots")
        if any(_CUT in part or "\r" in part for part in parts):
            return None
        # The text's lines, each as [static, slot, static, ..., static] (LF in the last).
        lines: list[list[Any]] = [[""]]
        for n, part in enumerate(parts):
            if n:
                lines[-1] += [slots[n - 1], ""]
            for k, piece in enumerate(part.split("\n")):
                if k:
                    lines[-1][-1] += "\n"
                    lines.append([""])
                lines[-1][-1] += piece
        statics = [""]  # the static lines before each segment, and after the last
        segments: list[_CutLine | None] = []
        chunks, chunk_slots = [""], list[int]()  # the chunks as one text, cut-separated
        open_chunk = False  # the last line read holds slots and is in the last chunk
        for line in lines:
            if len(line) == 1:
                statics[-1] += line[0]
                open_chunk = False
            elif len(line) == 3 and line[1] in cut and line[2] == "\n":
                segments.append(_CutLine.of(line[1], line[0], line[1] in cached))
                statics.append("")
                open_chunk = False
            else:
                if not open_chunk:
                    if chunk_slots:
                        chunks[-1] += _CUT + "\n"
                    segments.append(None)
                    statics.append("")
                    open_chunk = True
                chunks[-1] += line[0]
                for slot, piece in zip(line[1::2], line[2::2], strict=True):
                    chunk_slots.append(slot)
                    chunks.append(piece)
        encoded = tuple(map(_qp, statics))
        cut_lines = [line for line in segments if line is not None]
        return cls(
            encoded,
            tuple(chunks),
            tuple(chunk_slots),
            segments.count(None),
            tuple((n, line) for n, line in enumerate(segments) if line is not None),
            picker(tuple(chunk_slots)),
            _CutLines.of(encoded, cut_lines, cached) if len(cut_lines) == len(segments) else None,
        )

    def encode(self, values: Sequence[str]) -> Encoded | None:
        """The part for these values; None when one holds a CR or the cut character (the
        caller then encodes the whole text)."""
        if len(self.statics) == 1:
            return Encoded("quoted-printable", self.statics[0])
        fast = self.cut_lines
        if fast is not None and all(map(str.isascii, free := fast.pick(values))):
            # Every value literal (printable ASCII but "=": _LITERAL), of two characters or
            # more, not ending with a space: then written as it is (cut when long), as
            # `_CutLine.encode` does. Told for all at once: joined by a non-ASCII separator
            # (so never in a value), one translate, one search.
            joined = _SEPARATOR.join(free)
            lengths = tuple(map(len, free))
            short = fast.fits.issuperset(lengths)  # then none is cut
            if (
                0 not in joined.encode("latin-1").translate(_LITERAL_OR_SEPARATOR)
                and _SPACE_BEFORE_SEPARATOR not in joined
                and not joined.endswith(" ")
                and (short or not (0 in lengths or 1 in lengths))
            ):
                written = list(free) if short else list(map(_soft_broken, free, fast.firsts))
                for at, line in fast.cached:  # in order: each goes where it is in the end
                    value = values[line.slot]
                    if value.isascii():
                        data = line.encode(value)
                        cached = None if data is None else data.decode("ascii")
                    else:  # the usual time line (a no-break space): decoded once
                        cached = _qp_line_str(line.prefix, value)
                    if cached is None:
                        return None
                    written.insert(at, cached)
                data = _joined(fast.parts, written).encode("ascii")
                return _NEW(Encoded, ("quoted-printable", data))
        pieces: list[bytes] = []
        if self.slots:
            slotted = self.pick(values)
            joined = "".join(slotted)
            if "\r" in joined or _CUT in joined:
                return None
            text = _joined(self.parts, slotted)
            data = binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
            pieces = data.split(_CUT_QP)
            if len(pieces) != self.chunks:
                return None  # cannot happen (see `plan`), but a wrong split would be worse
        for at, line in self.lines:  # in order: each goes where it is in the end
            encoded = line.encode(values[line.slot])
            if encoded is None:
                return None
            pieces.insert(at, encoded)
        out = [*self.statics, *pieces]  # then interleaved: static, segment, ..., static
        out[0::2], out[1::2] = self.statics, pieces
        return _NEW(Encoded, ("quoted-printable", b"".join(out)))


class _SlotLine(NamedTuple):
    """A line of a SevenBitPlan that holds slots: which values, and how long they may be."""

    start: int  # its first slot
    stop: int  # after its last
    slack: int  # 998 minus its static characters


@dataclass(frozen=True, slots=True)
class SevenBitPlan:
    """An ASCII part of static text and slots, made 7bit per message without a pass over
    the whole part (see `plan`)."""

    parts: tuple[str, ...]  # the static text, CRLF line ends
    lf_parts: tuple[str, ...]  # the same, as given (LF line ends)
    slack: int  # how many characters of values every line holding a slot can take
    lines: tuple[_SlotLine, ...]  # each line's own slack, when the values are longer
    # The longest a value may be for every line to take its values, however they are spread:
    # each line's slack / its slots, the least of them (one max() of lengths per message in
    # place of a sum per line: a signed URL is longer than `slack` alone allows all values).
    value_slack: int
    # No part holds _BOUNDARY nor ends with the start of it: a boundary of ours can then be
    # in the part only where a value holds its "=" (`encode`).
    boundary_free: bool

    @classmethod
    def plan(cls, parts: Sequence[str]) -> SevenBitPlan | None:
        """None unless the static text is valid 7bit (ASCII, no CR or NUL, lines of at most
        998 characters). The invariant it relies on: values that are ASCII with no CR, LF or
        NUL, in all no longer than `slack` (or each line's within its own slack: `lines`),
        cannot make the part anything but 7bit, except by holding the boundary (searched
        for per message): a line holding slots is its static text plus its values (at most
        all of them), and a CRLF never comes from a value. The
        search is left out when no value holds a "=" and the static text is boundary_free:
        a boundary of ours starts with "=" and holds _BOUNDARY whole, so it could start
        neither in a value nor in a part (it would hold _BOUNDARY or end with a start of
        it)."""
        static = "\x00".join(parts)  # a NUL where each value goes
        if not static.isascii() or "\r" in static or static.count("\x00") != len(parts) - 1:
            return None
        longest_static, longest_slotted = 0, 0
        lines, start = [], 0
        for line in static.split("\n"):
            slots = line.count("\x00")
            if slots:
                longest_slotted = max(longest_slotted, len(line) - slots)
                lines.append(_SlotLine(start, start + slots, _MAX_HEADER_LINE - len(line) + slots))
                start += slots
            else:
                longest_static = max(longest_static, len(line))
        if longest_static > _MAX_HEADER_LINE or longest_slotted > _MAX_HEADER_LINE:
            return None
        crlf = tuple(p.replace("\n", "\r\n") for p in parts)
        starts = tuple(_BOUNDARY[:n] for n in range(1, len(_BOUNDARY)))
        boundary_free = not any(_BOUNDARY in p or p.endswith(starts) for p in crlf)
        slack = _MAX_HEADER_LINE - longest_slotted
        value_slack = min((n.slack // (n.stop - n.start) for n in lines), default=slack)
        return cls(crlf, tuple(parts), slack, tuple(lines), value_slack, boundary_free)

    def encode(self, values: list[str], boundary: str) -> Encoded | None:
        """The part's 7bit wire bytes for these values; None when the rule above does not
        say they stay 7bit (the caller then checks the whole part: _seven_bit)."""
        slotted = "".join(values)
        if (
            not slotted.isascii()
            or "\n" in slotted
            or "\r" in slotted
            or "\x00" in slotted
            or (
                len(slotted) > self.slack
                and max(map(len, values)) > self.value_slack
                and self._overlong(values)
            )
        ):
            return None
        body = _joined(self.parts, values)
        searched = not (self.boundary_free and boundary.startswith(_BOUNDARY))
        if (searched or "=" in slotted) and boundary in body:
            return None
        return _NEW(Encoded, ("7bit", body.encode("ascii")))

    def _overlong(self, values: list[str]) -> bool:
        """Whether a line's values exceed its slack. Apart from `encode`: its generator would
        make `values` a cell, allocated on every call (an email each)."""
        return any(sum(map(len, values[n.start : n.stop])) > n.slack for n in self.lines)


def _base64(body: str) -> bytes:
    """Base64 in 76-character lines (RFC 2045): ~5x cheaper than quoted-printable for HTML."""
    data = binascii.b2a_base64(body.replace("\r\n", "\n").encode("utf-8"), newline=False)
    return b"\r\n".join([data[i : i + 76] for i in range(0, len(data), 76)])


# email.utils' specials: a display name with any of them is quoted by formataddr.
_SPECIALS: Final = re.compile(r'[][\\()<>@,:;".]')


def _to(name: str, address: str) -> str:
    """The To header of a partner: formataddr's, written directly for a plain ASCII name (it
    would neither quote nor escape it)."""
    if name.isascii() and (name.isalnum() or (name and _SPECIALS.search(name) is None)):
        return f"{name} <{address}>"  # isalnum: letters and digits only, no regex needed
    return _to_quoted(name, address)


def _to_quoted(name: str, address: str) -> str:
    """formataddr's To for a name it quotes or encodes: per email, not cached (a partner's
    name and address are personal data; only such names come here). A name whose one
    encoded-word would make the line longer than RFC 2047 allows (a long name in Greek or
    Japanese, say) is `_text`'s words instead, the address on a line of its own if need be."""
    quoted = formataddr((name, address), charset="utf-8")
    if name.isascii() or len(quoted) <= _WORDS_LINE - len("To: "):
        return quoted
    words = _text(name, "To")
    newline = words.rfind("\n")  # the last line's length; the first one's starts with "To: "
    last = len(words) - (newline + 1) + (len("To: ") if newline < 0 else 0)
    fold = " " if last + len(address) + 3 <= _WORDS_LINE else "\r\n "
    return f"{words}{fold}<{address}>"


def _date(when: datetime) -> str:
    """The Date header: whole seconds, so every message of the same second shares one entry
    (a service's clock gives each message its own microseconds: a miss per message). The
    offset is part of the key: the same instant in two zones is equal, written differently.

    The last instant's header is kept with that very object (`_LAST_DATE`): both emails of
    a nudge are sent with the delivery's one `now`, so the second is an identity check (an
    aware datetime's utcoffset() alone is ~1.7k instructions, callgrind). Invariant: a
    datetime is immutable, so the same object gives the same header. An instant only: no
    personal data."""
    last = _LAST_DATE[0]
    if last.when is when:
        return last.text
    text = _date_of(when.replace(microsecond=0) if when.microsecond else when, when.utcoffset())
    _LAST_DATE[0] = _NEW(_DateText, (when, text))
    return text


class _DateText(NamedTuple):
    """An instant and its Date header (`_date`)."""

    when: datetime
    text: str


_LAST_DATE: Final[list[_DateText]] = [_DateText(datetime.min, format_datetime(datetime.min))]


@functools.lru_cache(maxsize=256)
def _date_of(when: datetime, _offset: timedelta | None) -> str:
    return format_datetime(when)


class PlannedHtml(NamedTuple):
    """An HTML part as a SevenBitPlan and its values (build_email); made per email by
    `_NEW(PlannedHtml, (plan, values))` (see Encoded)."""

    plan: SevenBitPlan
    values: list[str]

    def text(self) -> str:
        """The part as a str (LF line ends, as rendered)."""
        return _joined(self.plan.lf_parts, self.values)


class PlannedText(NamedTuple):
    """A text part as its static parts and values (build_email's `plain_text` beside an
    Encoded part): joined only for the standard library's path. Made per email by
    `_NEW(PlannedText, (parts, values))` (see Encoded)."""

    parts: Sequence[str]
    values: Sequence[str]

    def text(self) -> str:
        return _joined(self.parts, self.values)


def picker(slots: tuple[int, ...]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """`lambda values: [values[i] for i in slots]`, as one operator.itemgetter call (a tuple)
    when there are two slots or more (with one, itemgetter gives the value alone): no
    comprehension frame per message."""
    if len(slots) >= 2:
        return operator.itemgetter(*slots)
    return lambda values: [values[i] for i in slots]


def _joined(parts: Sequence[str], values: Sequence[str]) -> str:
    out = [*parts, *values]  # then interleaved: part, value, part, ..., part
    out[0::2], out[1::2] = parts, values
    return "".join(out)


# The header every email has (render.py: RFC 3834), and its line as build_email writes it
# (ASCII, one line): passed alone, by this very object, its line is not joined per email.
AUTO_SUBMITTED: Final[tuple[tuple[str, str], ...]] = (("Auto-Submitted", "auto-generated"),)
_AUTO_SUBMITTED_LINE: Final = "Auto-Submitted: auto-generated\r\n"


def build_email(
    subject: str,
    sender: str,
    to_name: str,
    to_address: str,
    when: datetime,
    text: str | Encoded,
    html: str | PlannedHtml,
    extra_headers: Sequence[tuple[str, str]] = (),
    message_domain: str = "localhost",
    message_id: str | None = None,
    plain_text: str | PlannedText | None = None,
) -> bytes:
    """multipart/alternative (text, then HTML) as wire bytes, CRLF line ends.

    `message_id` (with its <>) names the message; without it one unique to this process and
    message is made (see the module docstring). `text` may come encoded already: Encoded,
    what this function makes of the text `plain_text` when that is not ASCII (so not 7bit),
    which the standard library's path still needs: a str, or PlannedText (joined only on
    that path, rare). `html` may come planned (PlannedHtml):
    7bit when its plan says so, else checked whole as a str is.

    Positional or keyword: render's call per email passes its arguments by position (eleven
    keywords cost ~1k instructions a call more to bind); other callers name them."""
    serial = next(_SERIALS)
    message_id = message_id or f"<{serial}.{_PROCESS_TOKEN}@{message_domain}>"
    encoded: Encoded | None = None
    if isinstance(text, Encoded):
        encoded, text = text, plain_text if isinstance(plain_text, str) else ""
    opening = _opening(subject, sender) if to_address.isascii() and sender.isascii() else None
    to = "" if opening is None else _to(to_name, to_address)  # formataddr: ASCII addresses
    # The extra headers' lines by C joins; _text leaves a value as it is when all are ASCII.
    if extra_headers is AUTO_SUBMITTED:  # that header alone (the usual email): its line
        extra = _AUTO_SUBMITTED_LINE
    elif not (extra := "\r\n".join(map(": ".join, extra_headers))).isascii():
        extra = "".join([f"{name}: {_text(value, name)}\r\n" for name, value in extra_headers])
    elif extra:
        extra += "\r\n"
    if (
        opening is None
        # Each line with per-message values is short when all of them are (the usual case).
        or (
            len(to) + len(message_id) + len(extra) > _MAX_HEADER_LINE - len("Message-ID: ")
            and _longest_line(to, message_id, extra_headers) > _MAX_HEADER_LINE
        )
    ):
        if isinstance(plain_text, PlannedText) and encoded is not None:
            text = plain_text.text()
        return _slow(
            subject, sender, to_name, to_address, when, text, _lf(html), extra_headers, message_id
        )
    boundary = f"{_BOUNDARY}{_PROCESS_TOKEN}_{serial:x}"
    # The text part stays quoted-printable (readable as is); HTML is long and goes as base64.
    if encoded is None:
        text_7bit = _seven_bit(text, boundary)
        encoded = (
            _NEW(Encoded, ("7bit", text_7bit))
            if text_7bit
            else _NEW(Encoded, ("quoted-printable", _qp(text)))
        )
    html_encoded = None
    if isinstance(html, PlannedHtml):
        html_encoded = html.plan.encode(html.values, boundary)
        html = html.text() if html_encoded is None else html
    if html_encoded is None:
        assert isinstance(html, str)
        html_7bit = _seven_bit(html, boundary)
        html_encoded = (
            _NEW(Encoded, ("7bit", html_7bit))
            if html_7bit
            else _NEW(Encoded, ("base64", _base64(html)))
        )
    head = (
        f"{opening}{to}\r\nDate: {_date(when)}\r\nMessage-ID: {message_id}\r\n{extra}"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary="{boundary}"\r\n'
        f'\r\n--{boundary}\r\nContent-Type: text/plain; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoded.encoding}\r\n\r\n"
    )
    middle = (
        f'\r\n--{boundary}\r\nContent-Type: text/html; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {html_encoded.encoding}\r\n\r\n"
    )
    end = f"\r\n--{boundary}--\r\n"
    return b"".join([head.encode(), encoded.data, middle.encode(), html_encoded.data, end.encode()])


@functools.lru_cache(maxsize=1024)
def _opening(subject: str, sender: str) -> str | None:
    """The head's lines that are the same for every email of a subject and sender, up to the
    To header's value; None when one is longer than a header line may be."""
    subject_line, from_line = f"Subject: {_text(subject)}", f"From: {sender}"
    if max(len(subject_line), len(from_line)) > _MAX_HEADER_LINE:
        return None
    return f"{subject_line}\r\n{from_line}\r\nTo: "


def _longest_line(to: str, message_id: str, extra_headers: Sequence[tuple[str, str]]) -> int:
    """The longest of the head's lines with per-message values (the Date line is short)."""
    lines = [f"To: {to}", f"Message-ID: {message_id}"]
    lines += [f"{name}: {_text(value, name)}" for name, value in extra_headers]
    return max(map(len, lines))


def _lf(html: str | PlannedHtml) -> str:
    return html if isinstance(html, str) else html.text()


def _slow(
    subject: str,
    sender: str,
    to_name: str,
    to_address: str,
    when: datetime,
    text: str,
    html: str,
    extra_headers: Sequence[tuple[str, str]],
    message_id: str,
) -> bytes:
    utf8 = not (to_address.isascii() and sender.isascii())
    base = email.policy.SMTPUTF8 if utf8 else email.policy.SMTP
    policy = base.clone(max_line_length=_MAX_HEADER_LINE)
    message = EmailMessage(policy=policy)
    message["Subject"] = subject
    message["From"] = sender
    # A string, not headerregistry.Address: that refuses non-ASCII local parts outright.
    quoted = to_name.replace("\\", "\\\\").replace('"', '\\"')
    message["To"] = f'"{quoted}" <{to_address}>'
    message["Date"] = format_datetime(when)
    message["Message-ID"] = message_id
    for name, value in extra_headers:
        message[name] = value
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message.as_bytes(policy=policy)
