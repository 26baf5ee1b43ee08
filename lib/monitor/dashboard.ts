/**
 * The monitor's live page: one self-contained HTML document (inline style and
 * script, no external asset) that polls /status every second and redraws.
 * Every value reaches the page through textContent, never as HTML: warning
 * messages and event arguments may carry text from the network.
 */

import { createHash } from 'node:crypto';

const STYLE = `
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #b35900; --bad: #cf222e; --muted: #6e7781; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; padding: 16px 24px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 15px; margin: 20px 0 6px; }
nav a { margin-right: 12px; }
.muted { color: var(--muted); }
.cards { display: flex; flex-wrap: wrap; gap: 8px; margin: 12px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 6px 12px; min-width: 110px; }
.card b { display: block; font-size: 18px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: right; padding: 4px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th:first-child, td:first-child, td.l, th.l { text-align: left; }
td { font-variant-numeric: tabular-nums; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; color: #fff; font-weight: 600; }
.AVAILABLE, .listening, .running { background: var(--ok); }
.DISABLED, .draining, .stopping { background: var(--bad); }
.starting { background: var(--warn); }
#error { display: none; background: var(--bad); color: #fff; padding: 6px 12px; border-radius: 6px; margin: 8px 0; }
table.events { width: auto; }
#events td { text-align: left; }
`;

const SCRIPT = `
'use strict';
const $ = (id) => document.getElementById(id);
function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function bytes(n) {
  if (!n) return '-';
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + ' ' + u[i];
}
function ago(ms) {
  if (!(ms >= 0)) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
  return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
}
function badge(text) { return el('span', text, 'badge ' + text); }
function card(label, value) {
  const c = el('div', undefined, 'card');
  c.append(el('span', label, 'muted'));
  const b = el('b');
  if (value instanceof Node) b.append(value); else b.textContent = String(value);
  c.append(b);
  return c;
}
function arg(a) {
  if (a === null || a === undefined) return String(a);
  if (typeof a === 'object') {
    if (a.port === undefined) return JSON.stringify(a);
    const h = a.address || '';
    return (h.includes(':') ? '[' + h + ']' : h) + ':' + a.port;
  }
  return String(a);
}
function render(s) {
  const now = s.now || Date.now();
  const sum = (k) => s.workers.reduce((t, w) => t + (w[k] || 0), 0);
  $('title').textContent = 'cluster2 · ' + (s.hostname || '') + ' · master ' + s.pid;
  const cards = $('cards');
  cards.replaceChildren(
    card('state', badge(s.state)),
    card('ECV', badge(s.ecv.enabled ? 'AVAILABLE' : 'DISABLED')),
    card('strategy', s.strategy || '-'),
    card('port', s.port),
    card('workers', s.workers.filter((w) => w.state === 'listening').length + ' / ' + s.size),
    card('restarts', s.restarts),
    card('spare', s.spare ? s.spare.pid + (s.spare.booted ? '' : ' (starting)') : 'none'),
    card('open connections', sum('open')),
    card('requests', sum('requests') + ((s.retired && s.retired.requests) || 0)),
    card('RSS (workers)', bytes(sum('rss'))),
    card('uptime', ago(now - s.started)),
  );
  $('impl').textContent = 'implementation: ' + s.implementation + ' · ECV ' + (s.ecv.enabled ? 'enabled' : 'disabled') +
    ' since ' + new Date(s.ecv.since).toLocaleString();
  const rows = s.workers.slice().sort((a, b) => a.slot - b.slot || a.started - b.started).map((w) => {
    const tr = el('tr');
    tr.dataset.pid = String(w.pid);
    tr.dataset.state = w.state;
    tr.append(el('td', w.pid, 'pid'), el('td', w.slot));
    const st = el('td', undefined, 'l');
    st.append(badge(w.state));
    tr.append(st, el('td', ago(now - w.started)), el('td', w.connections), el('td', w.open), el('td', w.requests),
      el('td', bytes(w.rss)), el('td', bytes(w.heapUsed)), el('td', w.restarts || 0));
    return tr;
  });
  $('workers').replaceChildren(...rows);
  const evs = s.events.slice(-30).reverse().map((e) => {
    const tr = el('tr');
    tr.append(el('td', new Date(e.time).toLocaleTimeString(), 'muted'), el('td', e.event), el('td', e.args.map(arg).join(' ')));
    return tr;
  });
  $('events').replaceChildren(...evs);
  $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}
let timer = 0;
async function poll() {
  try {
    const r = await fetch('status', { cache: 'no-store' });
    if (!r.ok) throw new Error('HTTP ' + r.status);
    render(await r.json());
    $('error').style.display = 'none';
  } catch (e) {
    $('error').textContent = 'cannot reach the master: ' + e.message;
    $('error').style.display = 'block';
  }
  timer = setTimeout(poll, 1000);
}
poll();
`;

export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cluster2 monitor</title>
<style>${STYLE}</style>
</head>
<body>
<h1 id="title">cluster2</h1>
<nav><a href="status">status (JSON)</a><a href="metrics">metrics</a><a href="logs/">logs</a><a href="deps">dependencies</a>
<span class="muted" id="updated"></span></nav>
<div id="error"></div>
<div class="cards" id="cards"></div>
<div class="muted" id="impl"></div>
<h2>Workers</h2>
<table>
<thead><tr><th>pid</th><th>slot</th><th class="l">state</th><th>uptime</th><th>connections</th><th>open</th><th>requests</th><th>RSS</th><th>heap</th><th>restarts</th></tr></thead>
<tbody id="workers"></tbody>
</table>
<h2>Recent events</h2>
<table class="events"><tbody id="events"></tbody></table>
<script>${SCRIPT}</script>
</body>
</html>
`;

const hash = (s: string) => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/** Allows the inline style and script above (by hash) and nothing from anywhere else. */
export const DASHBOARD_CSP =
  `default-src 'none'; script-src ${hash(SCRIPT)}; style-src ${hash(STYLE)}; connect-src 'self'; img-src data:; ` +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
