"""The demo's calendar page (outbox/index.html): the simulated month, per couple. Pure.

`build_calendars` joins what the demo ran (the couples' preferences, every outcome event, and
which email file went to whom) into one calendar per couple; `render_calendar` writes it as a
small static page: Jinja with autoescape, inline CSS, no script, nothing loaded from
elsewhere. Each nudge sits on its recipient's local day, at its local time in each partner's
zone, with its kind, partner and channel, a link to its `.eml` file, and the preview's notes
(quiet hours, DST gaps; services/scheduler/preview.py); suppressed ones show their reason.
Days on which a partner's clocks change are marked.

The page shows the sample couples' names (it is the user's own local demo), never an email
address: the model below has no field for one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from jinja2 import Environment

from couples_nudge.notifier.catalog import load_catalog
from couples_nudge.scheduler.preview import preview_lines
from couples_nudge_schemas import (
    NudgeFailed,
    NudgeSent,
    NudgeSuppressed,
    OutcomeEvent,
    PreferencesSetData,
)

__all__ = [
    "CoupleCalendar",
    "Day",
    "Entry",
    "SentEmail",
    "build_calendars",
    "render_calendar",
]

KIND_NAMES: Final = {
    "date_night": "date night",
    "check_in": "check-in",
    "appreciation": "appreciation",
}


@dataclass(frozen=True, slots=True)
class SentEmail:
    """One email file the demo's mail catcher wrote, and whose nudge it was."""

    file: str  # "00012.eml"
    couple_id: str
    partner_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class LocalTime:
    name: str  # the partner's display name (sample couples only)
    zone: str
    time: str  # "19:00"
    day_shift: str  # "", "+1 day" or "-1 day" against the recipient's local day


@dataclass(frozen=True, slots=True)
class Entry:
    at: datetime  # UTC: when it was sent (or would have been)
    kind: str
    partner: str  # the recipient's display name ("both" never: one entry per partner)
    outcome: str  # sent, suppressed, failed
    channel: str | None
    reason: str | None
    note: str | None  # the preview's note (quiet hours, DST), or the outcome's
    local: tuple[LocalTime, ...]  # the recipient first, then the other partner
    email: str | None  # the .eml file name
    item: str | None = None  # what the partner got: the item's title in their language


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    entries: tuple[Entry, ...]
    clock_changes: tuple[str, ...]  # "Europe/London: clocks change (+01:00 -> +00:00)"
    in_month: bool  # False: padding before the first or after the last simulated day


@dataclass(frozen=True, slots=True)
class CoupleCalendar:
    couple_id: str
    names: str  # "Maya & Sam"
    zones: str  # "Maya: Europe/Berlin · Sam: Europe/Berlin"
    weeks: tuple[tuple[Day, ...], ...]  # Monday to Sunday
    sent: int
    suppressed: int


def build_calendars(
    couples: list[PreferencesSetData],
    outcomes: list[OutcomeEvent],
    emails: list[SentEmail],
    start: datetime,
    days: int,
) -> list[CoupleCalendar]:
    """One calendar per couple, from what the demo ran (see the module docstring)."""
    end = start + timedelta(days=days)
    files: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for mail in emails:  # in arrival order
        files[(mail.couple_id, mail.partner_id, mail.kind)].append(mail.file)
    taken: dict[tuple[str, str, str], int] = defaultdict(int)
    by_couple: dict[str, list[OutcomeEvent]] = defaultdict(list)
    ordered = sorted(outcomes, key=lambda e: (e.occurred_at, e.data.occurrence_id))
    for event in ordered:
        by_couple[event.data.couple_id].append(event)
    calendars = []
    for prefs in sorted(couples, key=lambda c: c.couple_id):
        notes = {
            (line.partner_id, line.kind, line.at_utc): line.note
            for line in preview_lines(prefs, start, end)
            if line.note
        }
        entries: list[Entry] = []
        for event in by_couple.get(prefs.couple_id, []):
            email: str | None = None
            if isinstance(event, NudgeSent) and event.data.channel == "email":
                key = (prefs.couple_id, event.data.partner_id, event.data.kind)
                index = taken[key]
                taken[key] += 1
                email = files[key][index] if index < len(files[key]) else None
            entries += _entries(prefs, event, notes, email)
        calendars.append(_calendar(prefs, entries, start, days))
    return calendars


def _entries(
    prefs: PreferencesSetData,
    event: OutcomeEvent,
    notes: dict[tuple[str, str, datetime], str],
    email: str | None,
) -> list[Entry]:
    if not isinstance(event, NudgeSent | NudgeSuppressed | NudgeFailed):
        return []
    d = event.data
    recipients = [d.partner_id] if d.partner_id else [p.partner_id for p in prefs.partners]
    reason: str | None = None
    outcome_note: str | None = None
    if isinstance(event, NudgeSuppressed):
        reason = event.data.reason
    elif isinstance(event, NudgeFailed):
        reason = "failed for good" if event.data.permanent else "failed after retries"
    elif event.data.note != "late":  # on the demo's fast clock every send is "late"
        outcome_note = event.data.note
    at = d.scheduled_at  # its instant as planned (the demo's clock makes sends minutes late)
    item = _item_title(prefs, event) if isinstance(event, NudgeSent) else None
    found = []
    for partner_id in recipients:
        note = notes.get((partner_id, d.kind, d.scheduled_at)) or outcome_note
        found.append(
            Entry(
                at=at,
                kind=KIND_NAMES.get(d.kind, d.kind),
                partner=_name(prefs, partner_id),
                outcome=event.type.split(".")[1],
                channel=d.channel,
                reason=reason,
                note=note,
                local=_local_times(prefs, partner_id, at),
                email=email,
                item=item,
            )
        )
    return found


def _item_title(prefs: PreferencesSetData, event: NudgeSent) -> str:
    """The title of the item a partner got, in their language; a jar draw says so (the idea
    itself is the couple's: it stays in the email)."""
    d = event.data
    if d.content_id.startswith("jar:"):
        return "an idea from their own date jar"
    locale = next((p.locale for p in prefs.partners if p.partner_id == d.partner_id), "en")
    for item in load_catalog().items(d.kind, locale):
        if item.id == d.content_id:
            return item.title
    return d.content_id


def _name(prefs: PreferencesSetData, partner_id: str) -> str:
    return next((p.name for p in prefs.partners if p.partner_id == partner_id), partner_id)


def _zone(prefs: PreferencesSetData, partner_id: str) -> str:
    return next((p.timezone for p in prefs.partners if p.partner_id == partner_id), "UTC")


def _local_times(prefs: PreferencesSetData, partner_id: str, at: datetime) -> tuple[LocalTime, ...]:
    """The instant in the recipient's zone, then in the other partner's (if it differs)."""
    partners = sorted(prefs.partners, key=lambda p: p.partner_id != partner_id)
    if partners[0].timezone == partners[1].timezone:
        partners = partners[:1]
    home = at.astimezone(ZoneInfo(_zone(prefs, partner_id))).date()
    times = []
    for p in partners:
        local = at.astimezone(ZoneInfo(p.timezone))
        shift = (local.date() - home).days
        times.append(
            LocalTime(p.name, p.timezone, f"{local:%H:%M}", f"{shift:+d} day" if shift else "")
        )
    return tuple(times)


def _calendar(
    prefs: PreferencesSetData, entries: list[Entry], start: datetime, days: int
) -> CoupleCalendar:
    zones = sorted({p.timezone for p in prefs.partners})
    per_day: dict[date, list[Entry]] = defaultdict(list)
    for entry in entries:
        per_day[_local_day(entry)].append(entry)
    first = start.date()
    last = first + timedelta(days=days - 1)
    # A nudge of the month's first or last UTC hours may fall on the day before or after it in
    # a partner's zone: the grid grows to show it.
    first = min([first, *per_day])
    last = max([last, *per_day])
    grid_start = first - timedelta(days=first.weekday())
    grid_end = last + timedelta(days=6 - last.weekday())
    cells = []
    day = grid_start
    while day <= grid_end:
        cells.append(
            Day(
                day,
                tuple(sorted(per_day.get(day, []), key=lambda e: (e.at, e.partner))),
                tuple(_clock_change(zone, day) for zone in zones if _clock_change(zone, day)),
                start.date() <= day < start.date() + timedelta(days=days),
            )
        )
        day += timedelta(days=1)
    weeks = tuple(tuple(cells[i : i + 7]) for i in range(0, len(cells), 7))
    a, b = prefs.partners
    return CoupleCalendar(
        couple_id=prefs.couple_id,
        names=f"{a.name} & {b.name}",
        zones=" · ".join(f"{p.name}: {p.timezone}" for p in prefs.partners),
        weeks=weeks,
        sent=sum(1 for e in entries if e.outcome == "sent"),
        suppressed=sum(1 for e in entries if e.outcome == "suppressed"),
    )


def _local_day(entry: Entry) -> date:
    """The recipient's local calendar day of the entry."""
    return entry.at.astimezone(ZoneInfo(entry.local[0].zone)).date()


def _clock_change(zone: str, day: date) -> str:
    """ "<zone>: clocks change (+01:00 -> +00:00)" when the zone's UTC offset changes that day."""
    tz = ZoneInfo(zone)
    before = datetime(day.year, day.month, day.day, tzinfo=tz).utcoffset()
    after_day = day + timedelta(days=1)
    after = datetime(after_day.year, after_day.month, after_day.day, tzinfo=tz).utcoffset()
    if before is None or after is None or before == after:
        return ""
    return f"{zone}: clocks change ({_offset(before)} -> {_offset(after)})"


def _offset(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


_ENV: Final = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
_PAGE: Final = _ENV.from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>Nudges demo · {{ title }}</title>
<style>
:root { --bg:#f7f5f2; --card:#fff; --ink:#222; --muted:#777; --line:#e4e0da;
        --ok:#2f7d4f; --warn:#b7791f; --bad:#c0392b; --accent:#7a4bb5; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       background:var(--bg); color:var(--ink); }
header, main { padding:16px 24px; max-width:1400px; }
header { background:var(--card); border-bottom:1px solid var(--line); max-width:none; }
h1 { margin:0 0 4px; font-size:20px; } h1 span { color:var(--accent); font-weight:500; }
h2 { margin:28px 0 2px; font-size:17px; }
.muted { color:var(--muted); margin:0; }
.legend { display:flex; flex-wrap:wrap; gap:6px 14px; margin-top:8px; font-size:12px; }
.key { border-left:3px solid var(--ok); padding-left:5px; }
.key.suppressed { border-color:var(--warn); } .key.failed { border-color:var(--bad); }
.grid { display:grid; grid-template-columns:repeat(7, minmax(0, 1fr)); gap:4px; margin-top:8px; }
.head { font-size:12px; color:var(--muted); text-transform:uppercase; padding:2px 6px; }
.day { background:var(--card); border:1px solid var(--line); border-radius:6px; padding:4px 6px;
       min-height:64px; min-width:0; }
.day.pad { background:transparent; border-style:dashed; }
.date { font-size:12px; color:var(--muted); }
.date b { color:var(--ink); }
.dst { font-size:11px; color:var(--accent); font-weight:600; }
.nudge { margin-top:4px; padding:3px 5px; border-radius:4px; font-size:12px;
         border-left:3px solid var(--ok); background:#eef7f1; overflow-wrap:anywhere; }
.nudge.suppressed { border-color:var(--warn); background:#faf5ea; }
.nudge.failed { border-color:var(--bad); background:#fbeeec; }
.nudge .what { font-weight:600; }
.nudge .times, .nudge .note { color:var(--muted); font-size:11px; }
.nudge .note { color:var(--accent); }
.nudge .item { font-style:italic; overflow-wrap:anywhere; }
a { color:var(--accent); }
@media (max-width: 700px) {
  header, main { padding:12px 14px; }
  .key { border-left:3px solid var(--ok); padding-left:5px; }
.key.suppressed { border-color:var(--warn); } .key.failed { border-color:var(--bad); }
.grid { display:block; }
  .head, .day.pad, .day.empty { display:none; }
  .day { margin-top:6px; min-height:0; }
}
</style>
</head>
<body>
<header>
  <h1>Nudges demo <span>{{ title }}</span></h1>
  <p class="muted">Every nudge of the simulated month, on its recipient's local day, at its local
    time in each partner's zone. Open a nudge's <em>email</em> link to see the message that was
    sent.</p>
  <div class="legend"><span class="key">sent</span>
    <span class="key suppressed">suppressed (with the reason)</span>
    <span class="key failed">failed</span></div>
</header>
<main>
{% for c in calendars %}
<section id="{{ c.couple_id }}">
  <h2>{{ c.names }}</h2>
  <p class="muted">{{ c.zones }} · {{ c.sent }} sent · {{ c.suppressed }} suppressed</p>
  <div class="grid">
    {% for name in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] %}
    <div class="head">{{ name }}</div>
    {% endfor %}
    {% for week in c.weeks %}{% for d in week %}
    {% set empty = not d.entries and not d.clock_changes %}
    <div class="day{% if not d.in_month and empty %} pad{% elif empty %} empty{% endif %}">
      <div class="date"><b>{{ d.day.strftime("%a %d") }}</b> {{ d.day.strftime("%b") }}</div>
      {% for change in d.clock_changes %}<div class="dst">{{ change }}</div>{% endfor %}
      {% for e in d.entries %}
      <div class="nudge {{ e.outcome }}">
        <span class="what">{{ e.kind }}</span> &rarr; {{ e.partner }}
        {%- if e.channel %} · {{ e.channel }}{% endif %}
        {%- if e.outcome != "sent" %} · <b>{{ e.outcome }}
          {%- if e.reason %}: {{ e.reason }}{% endif %}</b>{% endif %}
        <div class="times">
        {% for t in e.local %}
          {{ t.time }}{% if t.day_shift %} ({{ t.day_shift }}){% endif %} {{ t.name }}
          ({{ t.zone }}){% if not loop.last %} ·{% endif %}
        {% endfor %}
        </div>
        {% if e.item %}<div class="item">&ldquo;{{ e.item }}&rdquo;</div>{% endif %}
        {% if e.note %}<div class="note">{{ e.note }}</div>{% endif %}
        {% if e.email %}<a href="{{ e.email }}">email</a>{% endif %}
      </div>
      {% endfor %}
    </div>
    {% endfor %}{% endfor %}
  </div>
</section>
{% endfor %}
</main>
</body>
</html>
"""
)


def render_calendar(calendars: list[CoupleCalendar], start: datetime, days: int) -> str:
    """The page (HTML, escaped; inline CSS; nothing loaded from elsewhere)."""
    last = start + timedelta(days=days - 1)
    title = f"{start:%d %b} to {last:%d %b %Y}"
    return _PAGE.render(calendars=calendars, title=title)
