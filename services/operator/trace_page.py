"""The status page's couple search: the trace of one couple as a plain HTML page. Pure.

Rendered on the server with Jinja (autoescape on), styled by the status page's own CSS, with
no script: the search is a GET form (`/status/trace?couple=<id>`), so it works without
JavaScript and under the page's strict Content-Security-Policy. Shows what `nudge trace`
shows: ids, kinds, zones, channels and reasons, never personal data.
"""

from __future__ import annotations

from typing import Final

from jinja2 import Environment
from markupsafe import Markup

from couples_nudge.operator.trace import CoupleTrace

__all__ = ["render_trace_page", "search_form"]

_ENV: Final = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)

_TEMPLATE: Final = _ENV.from_string(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Nudges · trace{% if trace %} {{ trace.couple_id }}{% endif %}</title>
<link rel="stylesheet" href="/status/app.css">
</head>
<body data-state="ready">
<header>
  <h1><a href="/status">Nudges</a> <span class="sub">couple trace</span></h1>
  {{ form }}
</header>
<main>
{% if error %}
  <p class="banner" role="alert">{{ error }}</p>
{% elif trace %}
  {% set t = trace %}
  <section>
    <h2>{{ t.couple_id }}</h2>
    {% if not t.found %}
    <p class="banner" role="alert">No couple with this id in Redis{% if t.erased_at %}: erased at
      {{ when(t.erased_at) }}{% endif %}.</p>
    {% else %}
    <p class="muted">revision {{ t.revision }} · date nights from {{ t.date_nights_from }}
      {%- if t.daily_question %} · daily question{% endif %} · jar: {{ t.jar_size }} ideas ·
      at {{ when(t.at) }}</p>
    {% endif %}
  </section>
  {% if t.partners %}
  <section>
    <h2>Partners</h2>
    <div class="scroll"><table><thead><tr><th>partner</th><th>zone</th><th>locale</th>
      <th>channels</th><th>quiet hours</th></tr></thead><tbody>
    {% for p in t.partners %}
      <tr><td>{{ p.partner_id }}</td><td>{{ p.timezone }}</td><td>{{ p.locale }}</td>
        <td>{{ p.channels | join(", ") or "-" }}</td><td>{{ p.quiet_hours or "-" }}</td></tr>
    {% endfor %}
    </tbody></table></div>
  </section>
  {% endif %}
  {% if t.pauses or t.unsubscribes or t.dead_channels %}
  <section>
    <h2>Pauses, unsubscribes, dead channels</h2>
    <div class="scroll"><table><thead><tr><th>what</th><th>who</th><th>since</th><th>detail</th>
      </tr></thead><tbody>
    {% for p in t.pauses %}
      <tr><td><span class="pill suppressed">pause</span></td><td>{{ p.scope }}</td>
        <td>{{ when(p.since) }}</td><td>{% if p.until %}until {{ when(p.until) }}{% else
        %}until resumed{% endif %} ({{ "active" if p.active else "over" }})</td></tr>
    {% endfor %}
    {% for u in t.unsubscribes %}
      <tr><td><span class="pill suppressed">unsubscribed</span></td><td>{{ u.partner_id }}</td>
        <td>{{ when(u.since) }}</td><td>{{ u.kind }} / {{ u.channel }}</td></tr>
    {% endfor %}
    {% for d in t.dead_channels %}
      <tr><td><span class="pill failed">channel dead</span></td><td>{{ d.partner_id }}</td>
        <td>{{ when(d.since) }}</td><td>{{ d.channel }}</td></tr>
    {% endfor %}
    </tbody></table></div>
  </section>
  {% endif %}
  {% if t.found %}
  <section>
    <h2>Schedules</h2>
    <div class="scroll"><table id="trace-schedules"><thead><tr><th>schedule</th><th>rule</th>
      <th>zone</th><th>to</th><th class="n">sent</th><th>armed for</th></tr></thead><tbody>
    {% for s in t.schedules %}
      <tr><td>{{ s.schedule_id }}</td><td>{{ s.rule }}</td><td>{{ s.timezone }}</td>
        <td>{% if s.takes_turns %}turns: {% endif %}{{ s.recipients | join(", ") }}</td>
        <td class="n">{{ s.sequence }}</td><td>{{ when(s.armed_at) }}</td></tr>
    {% endfor %}
    </tbody></table></div>
  </section>
  <section>
    <h2>Next fires</h2>
    <div class="scroll"><table id="trace-fires"><thead><tr><th>at (UTC)</th><th>kind</th>
      <th>partner</th><th>local time</th><th>would</th><th>note</th></tr></thead><tbody>
    {% for f in t.next_fires %}{% for r in f.recipients %}
      <tr><td>{{ when(f.at) }}</td><td>{{ f.kind }}</td><td>{{ r.partner_id }}</td>
        <td>{{ r.at_local }} {{ r.timezone }}</td>
        <td>{% if r.blocked %}<span class="pill suppressed">{{ r.blocked }}</span>{% else
        %}send: {{ r.channels | join(", ") }}{% endif %}</td><td>{{ f.note or "" }}</td></tr>
    {% endfor %}{% endfor %}
    </tbody></table></div>
  </section>
  {% endif %}
  <section>
    <h2>Last outcomes</h2>
    <p class="muted">Newest first, found among the newest {{ t.outcomes_scanned }} entries of
      the outcomes stream (a bounded scan).</p>
    <div class="scroll"><table id="trace-outcomes"><thead><tr><th>at</th><th>outcome</th>
      <th>kind</th><th>partner</th><th>channel</th><th>reason / content</th><th>occurrence</th>
      </tr></thead><tbody>
    {% for o in t.outcomes %}
      <tr><td>{{ when(o.at) }}</td>
        <td><span class="pill {{ o.outcome }}">{{ o.outcome }}</span></td>
        <td>{{ o.kind }}</td><td>{{ o.partner_id or "-" }}</td><td>{{ o.channel or "-" }}</td>
        <td>{{ o.reason or o.content_id or "-" }}</td><td>{{ o.occurrence_id }}</td></tr>
    {% else %}
      <tr><td colspan="7" class="muted">No outcomes of this couple among them.</td></tr>
    {% endfor %}
    </tbody></table></div>
  </section>
  {% if t.retries or t.dead_letters %}
  <section>
    <h2>Retries and dead letters</h2>
    <div class="scroll"><table><thead><tr><th>what</th><th>at</th><th>attempt(s)</th>
      <th>occurrence / reason</th></tr></thead><tbody>
    {% for r in t.retries %}
      <tr><td>retry {{ r.kind }}</td><td>{{ when(r.at) }}</td><td>{{ r.attempt }}</td>
        <td>{{ r.occurrence_id }}</td></tr>
    {% endfor %}
    {% for d in t.dead_letters %}
      <tr><td><span class="pill failed">dead letter</span></td><td>{{ d.at }}</td>
        <td>{{ d.attempts }}</td><td class="reason">{{ d.reason }}</td></tr>
    {% endfor %}
    </tbody></table></div>
  </section>
  {% endif %}
{% endif %}
</main>
</body>
</html>
"""
)

SEARCH_FORM: Final = _ENV.from_string(
    """<form class="search" action="/status/trace" method="get" role="search">
    <label for="couple">couple</label>
    <input id="couple" name="couple" value="{{ couple }}" maxlength="64" required
      pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" placeholder="couple id" autocomplete="off">
    <button type="submit">Trace</button>
  </form>"""
)
_ENV.globals["when"] = lambda instant: "-" if instant is None else f"{instant:%Y-%m-%d %H:%M}Z"


def search_form(couple: str = "") -> Markup:
    """The search form (a GET to /status/trace), with `couple` filled in (escaped)."""
    return Markup(SEARCH_FORM.render(couple=couple))  # noqa: S704 (rendered with autoescape)


def render_trace_page(
    trace: CoupleTrace | None, *, error: str | None = None, couple: str = ""
) -> str:
    """The page: the trace of one couple, or an error (never quoting the input), with the
    search form filled in with `couple` (escaped; a valid id only)."""
    return _TEMPLATE.render(trace=trace, error=error, form=search_form(couple))
