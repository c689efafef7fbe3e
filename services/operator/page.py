"""The status page's HTML, CSS and JavaScript: plain files kept as strings, no build, no CDN.

The script polls /status/data.json every few seconds and fills the page with textContent only
(never innerHTML), so nothing read from a stream can inject markup.
"""

from __future__ import annotations

from typing import Final

__all__ = ["CSS", "HTML", "JS", "POLL_MS"]

POLL_MS: Final = 3000

HTML: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Nudges · live status</title>
<link rel="stylesheet" href="/status/app.css">
<script src="/status/app.js" defer></script>
</head>
<body data-state="loading">
<header>
  <h1>Nudges <span class="sub">live status</span></h1>
  <form class="search" action="/status/trace" method="get" role="search">
    <label for="couple">couple</label>
    <input id="couple" name="couple" maxlength="64" required
      pattern="[A-Za-z0-9][A-Za-z0-9_.\\-]{0,63}" placeholder="couple id" autocomplete="off">
    <button type="submit">Trace</button>
  </form>
  <p id="updated" class="muted">loading&hellip;</p>
</header>
<main>
  <p id="state-lost" class="banner" role="alert" hidden></p>
  <section class="cards" aria-label="Key figures">
    <div class="card"><span class="label">timers</span>
      <span class="value" id="timers-total">-</span></div>
    <div class="card"><span class="label">due now</span>
      <span class="value" id="timers-due">-</span></div>
    <div class="card"><span class="label">overdue &gt; 1 min</span>
      <span class="value" id="timers-overdue">-</span></div>
    <div class="card"><span class="label">next fire</span>
      <span class="value small" id="next-fire">-</span></div>
    <div class="card"><span class="label">dead letters</span>
      <span class="value" id="dead-count">-</span></div>
    <div class="card"><span class="label">rejected, last hour</span>
      <span class="value" id="rejected-count">-</span></div>
  </section>
  <section>
    <h2>Streams</h2>
    <div class="scroll"><table id="streams"><thead><tr>
      <th>stream</th><th class="n">length</th><th>group</th><th class="n">consumers</th>
      <th class="n">pending</th><th class="n">lag</th><th class="n">oldest pending</th>
    </tr></thead><tbody></tbody></table></div>
  </section>
  <section>
    <h2>Recent outcomes</h2>
    <div class="scroll"><table id="outcomes"><thead><tr>
      <th>at</th><th>outcome</th><th>kind</th><th>reason</th><th>channel</th>
      <th>occurrence</th><th>partner</th>
    </tr></thead><tbody></tbody></table></div>
    <p class="muted empty" id="outcomes-empty" hidden>No outcomes yet.</p>
  </section>
  <section>
    <h2>Dead letters</h2>
    <form id="replay-form" autocomplete="off">
      <label for="token">operator token</label>
      <input id="token" type="password" placeholder="NUDGE_OPERATOR_TOKEN">
      <button type="button" id="replay-all">Replay all</button>
      <span id="replay-result" class="muted" role="status"></span>
    </form>
    <div class="scroll"><table id="dead"><thead><tr>
      <th>entry</th><th>source</th><th>event</th><th class="n">attempts</th><th>at</th>
      <th>reason</th><th></th>
    </tr></thead><tbody></tbody></table></div>
    <p class="muted empty" id="dead-empty" hidden>No dead letters.</p>
  </section>
</main>
</body>
</html>
"""

CSS: Final = """
:root { --bg:#f7f5f2; --card:#fff; --ink:#222; --muted:#777; --line:#e4e0da;
        --ok:#2f7d4f; --warn:#b7791f; --bad:#c0392b; --accent:#7a4bb5; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
       background:var(--bg); color:var(--ink); }
header { padding:16px 28px; border-bottom:1px solid var(--line); background:var(--card);
         display:flex; flex-wrap:wrap; gap:8px 16px; align-items:center;
         justify-content:space-between; }
header #updated { margin:0; }
h1 a { color:inherit; text-decoration:none; }
h1 { margin:0; font-size:20px; } h1 .sub { color:var(--accent); font-weight:500; }
h2 { font-size:15px; margin:24px 0 8px; }
main { padding:8px 28px 40px; max-width:1280px; }
.muted { color:var(--muted); }
.cards { display:grid; grid-template-columns:repeat(auto-fit, minmax(150px, 1fr)); gap:12px;
         margin-top:16px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px;
        padding:12px 14px; }
.card .label { display:block; color:var(--muted); font-size:12px; text-transform:uppercase;
               letter-spacing:.04em; }
.card .value { display:block; font-size:26px; font-weight:600; margin-top:4px; }
.card .value.small { font-size:14px; font-weight:500; margin-top:10px; }
.card.bad .value { color:var(--bad); } .card.warn .value { color:var(--warn); }
.card.ok .value { color:var(--ok); }
/* A wide table scrolls sideways inside its own box; the page itself never does. */
.scroll { overflow-x:auto; -webkit-overflow-scrolling:touch; max-width:100%;
          border:1px solid var(--line); border-radius:8px; background:var(--card); }
table { width:100%; border-collapse:collapse; background:var(--card); }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line);
         white-space:nowrap; }
th { font-size:12px; color:var(--muted); font-weight:600; background:#fbfaf8; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; }
td.reason { white-space:normal; max-width:420px; }
tr:last-child td { border-bottom:none; }
.pill { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; }
.pill.sent { background:#e3f4ea; color:var(--ok); }
.pill.suppressed { background:#f3efe6; color:var(--warn); }
.pill.failed, .pill.state_lost { background:#f9e4e1; color:var(--bad); }
.banner { margin:16px 0 0; padding:10px 14px; border:1px solid var(--bad); border-radius:8px;
          background:#f9e4e1; color:var(--bad); font-weight:600; }
form { display:flex; flex-wrap:wrap; gap:8px; align-items:center; margin-bottom:8px; }
form.search { margin:0; }
input { padding:5px 8px; border:1px solid var(--line); border-radius:6px; min-width:0;
        max-width:100%; }
.card .value.small { overflow-wrap:anywhere; }
@media (max-width: 600px) {
  header { padding:12px 14px; }
  main { padding:4px 14px 28px; }
  .card { padding:10px 12px; }
  .card .value { font-size:22px; }
  td.reason { max-width:260px; }
  form.search { width:100%; }
  form.search input { flex:1; }
}
button { padding:5px 12px; border:1px solid var(--accent); background:var(--accent);
         color:#fff; border-radius:6px; cursor:pointer; }
button:disabled { opacity:.4; cursor:not-allowed; }
body[data-state="error"] #updated { color:var(--bad); }
"""

JS: Final = """
"use strict";
const POLL_MS = __POLL_MS__;
const $ = (id) => document.getElementById(id);

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text === null || text === undefined ? "-" : String(text);
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function age(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 120) return seconds.toFixed(1) + "s";
  if (seconds < 7200) return (seconds / 60).toFixed(1) + "m";
  return (seconds / 3600).toFixed(1) + "h";
}

function shortTime(iso) {
  return iso ? iso.replace("T", " ").replace(/\\.\\d+/, "").replace("+00:00", "Z") : "-";
}

function setCard(id, value, level) {
  $(id).textContent = String(value);
  const card = $(id).parentElement;
  card.classList.remove("ok", "warn", "bad");
  if (level) card.classList.add(level);
}

function fill(tbody, rows, build) {
  tbody.replaceChildren();
  for (const item of rows) {
    const tr = document.createElement("tr");
    build(tr, item);
    tbody.appendChild(tr);
  }
}

function stateLost(s) {
  const banner = $("state-lost");
  banner.hidden = !s.state_lost_recently;
  if (!s.state_lost_recently) return;
  const st = s.state;
  let text = "Redis lost the services' state: noticed " + shortTime(st.lost_at) + " by " +
    st.detected_by + ". Publishers were asked (service.state_lost.v1) to republish preferences.";
  if (st.lost_epoch_began_at) {
    text += " The lost state had begun " + shortTime(st.lost_epoch_began_at) + ".";
  }
  banner.textContent = text;
}

function render(data) {
  const s = data.status;
  stateLost(s);
  setCard("timers-total", s.totals.timers);
  setCard("timers-due", s.totals.due);
  setCard("timers-overdue", s.totals.overdue, s.totals.overdue > 0 ? "bad" : "ok");
  $("next-fire").textContent = shortTime(s.totals.next_fire);
  setCard("dead-count", s.dead_letters, s.dead_letters > 0 ? "bad" : "ok");
  setCard("rejected-count", s.rejected_last_hour, s.rejected_last_hour > 0 ? "warn" : "ok");

  const streamRows = [];
  for (const st of s.streams) {
    if (st.groups.length === 0) streamRows.push([st, null]);
    for (const g of st.groups) streamRows.push([st, g]);
  }
  fill($("streams").tBodies[0], streamRows, (tr, [st, g]) => {
    cell(tr, st.label);
    cell(tr, st.length, "n");
    cell(tr, g && g.name);
    cell(tr, g && g.consumers, "n");
    cell(tr, g && g.pending, "n");
    cell(tr, g ? (g.lag === null ? "?" : g.lag) : null, "n");
    cell(tr, g ? age(g.oldest_pending_age_s) : null, "n");
  });

  fill($("outcomes").tBodies[0], data.outcomes, (tr, o) => {
    cell(tr, shortTime(o.at));
    const pill = document.createElement("span");
    pill.className = "pill " + o.type;
    pill.textContent = o.type;
    cell(tr, "").replaceChildren(pill);
    cell(tr, o.kind);
    cell(tr, o.reason);
    cell(tr, o.channel);
    cell(tr, o.occurrence_id);
    cell(tr, o.partner_id);
  });
  $("outcomes-empty").hidden = data.outcomes.length > 0;

  fill($("dead").tBodies[0], data.dead_letters, (tr, d) => {
    cell(tr, d.id);
    cell(tr, d.source);
    cell(tr, d.event_type);
    cell(tr, d.attempts, "n");
    cell(tr, shortTime(d.at));
    cell(tr, d.reason, "reason");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = "Replay";
    button.disabled = !data.replay_enabled;
    button.addEventListener("click", () => replay({ ids: [d.id] }));
    cell(tr, "").replaceChildren(button);
  });
  $("dead-empty").hidden = data.dead_letters.length > 0;
  $("replay-all").disabled = !data.replay_enabled || data.dead_letters.length === 0;
  if (!data.replay_enabled) $("token").placeholder = "replay disabled (no operator token)";

  $("updated").textContent = "updated " + shortTime(s.at);
  document.body.dataset.state = "ready";
}

async function refresh() {
  try {
    const response = await fetch("/status/data.json", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
  } catch (err) {
    document.body.dataset.state = "error";
    $("updated").textContent = "cannot reach the notifier (" + err.message + "), retrying";
  }
}

async function replay(body) {
  const result = $("replay-result");
  try {
    const response = await fetch("/status/dead-letters/replay", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Operator-Token": $("token").value },
      body: JSON.stringify(body),
    });
    const answer = await response.json();
    result.textContent = response.ok ? "replayed " + answer.replayed : answer.error;
  } catch (err) {
    result.textContent = "replay failed: " + err.message;
  }
  refresh();
}

document.addEventListener("DOMContentLoaded", () => {
  $("replay-all").addEventListener("click", () => replay({ all: true }));
  refresh();
  setInterval(refresh, POLL_MS);
});
""".replace("__POLL_MS__", str(POLL_MS))
