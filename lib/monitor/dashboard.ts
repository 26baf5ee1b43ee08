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
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart { margin: 0; border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
figure.chart figcaption { font-weight: 600; }
figure.chart figcaption span { font-weight: 400; margin-left: 10px; font-size: 12px; }
svg text { font: 10px system-ui, sans-serif; }
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
  $('impl').textContent = 'implementation: ' + s.implementation +
    ' · ECV ' + (s.ecv.enabled ? 'enabled' : 'disabled') + ' since ' + new Date(s.ecv.since).toLocaleString();
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
    tr.append(el('td', new Date(e.time).toLocaleTimeString(), 'muted'), el('td', e.event),
      el('td', e.args.map(arg).join(' ')));
    return tr;
  });
  $('events').replaceChildren(...evs);
  $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
}
// Charts: inline SVG drawn through the DOM (no markup strings), the last five minutes from /history.
const NS = 'http://www.w3.org/2000/svg';
const COLORS = ['#0969da', '#cf222e', '#1a7f37', '#8250df', '#b35900', '#1b7c83', '#bf3989', '#6e7781'];
function svg(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const k of Object.keys(attrs || {})) e.setAttribute(k, String(attrs[k]));
  if (text !== undefined) e.textContent = String(text);
  return e;
}
function chart(name, title, series, marks, from, to, fmt) {
  const W = 560, H = 170, L = 60, R = 10, T = 10, B = 22;
  let max = 0;
  for (const x of series) for (const p of x.points) if (p[1] > max) max = p[1];
  if (!(max > 0)) max = 1;
  const X = (t) => L + ((t - from) / (to - from)) * (W - L - R);
  const Y = (v) => H - B - (v / max) * (H - T - B);
  const s = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, width: W, height: H, role: 'img', 'aria-label': title });
  for (const f of [0, 0.5, 1]) {
    s.append(svg('line', { x1: L, x2: W - R, y1: Y(max * f), y2: Y(max * f), stroke: '#d0d7de' }));
    s.append(svg('text', { x: L - 4, y: Y(max * f) + 3, 'text-anchor': 'end', fill: '#6e7781' },
      f ? fmt(max * f) : '0'));
  }
  for (let m = 0; m <= 5; m++)
    s.append(svg('text', { x: X(to - m * 60000), y: H - 6, 'text-anchor': 'middle', fill: '#6e7781' },
      m ? '-' + m + 'm' : 'now'));
  for (const mk of marks) {
    const g = svg('g', { 'data-marker': mk.kind });
    const x = X(mk.t);
    g.append(svg('line', { x1: x, x2: x, y1: T, y2: H - B, stroke: mk.kind === 'reloaded' ? '#8250df' : '#b35900',
      'stroke-dasharray': '4 3', 'stroke-width': 1.5 }));
    g.append(svg('title', {}, mk.kind + ' at ' + new Date(mk.t).toLocaleTimeString() + ': ' + mk.label));
    s.append(g);
  }
  const cap = el('figcaption', title);
  series.forEach((x, i) => {
    const color = COLORS[i % COLORS.length];
    if (x.points.length)
      s.append(svg('polyline', { fill: 'none', stroke: color, 'stroke-width': 1.5, 'data-series': x.name,
        points: x.points.map((p) => X(p[0]).toFixed(1) + ',' + Y(p[1]).toFixed(1)).join(' ') }));
    const key = el('span', '— ' + x.name);
    key.style.color = color;
    cap.append(key);
  });
  const fig = el('figure', undefined, 'chart');
  fig.dataset.chart = name;
  fig.append(cap, s);
  return fig;
}
function bySlot(samples, value) {
  const slots = new Map();
  for (const x of samples) for (const w of x.workers) {
    const v = value(w);
    if (v === null || v === undefined) continue;
    if (!slots.has(w.slot)) slots.set(w.slot, []);
    slots.get(w.slot).push([x.t, v]);
  }
  return [...slots.keys()].sort((a, b) => a - b).map((k) => ({ name: 'slot ' + k, points: slots.get(k) }));
}
function renderCharts(h) {
  const to = h.now, from = to - h.span, xs = h.samples;
  const rate = [];
  for (let i = 1; i < xs.length; i++) {
    const dt = (xs[i].t - xs[i - 1].t) / 1000;
    if (dt > 0) rate.push([xs[i].t, Math.max(0, (xs[i].requests - xs[i - 1].requests) / dt)]);
  }
  const num = (v) => (v >= 100 ? v.toFixed(0) : v.toFixed(1));
  const charts = [
    chart('rate', 'Requests per second', [{ name: 'all workers', points: rate }], h.marks, from, to, num),
  ];
  const p99 = xs.filter((x) => x.p99 !== undefined && x.p99 !== null).map((x) => [x.t, x.p99 * 1000]);
  if (xs.some((x) => x.p99 !== undefined))
    charts.push(chart('p99', 'Request duration p99', [{ name: 'all workers', points: p99 }], h.marks, from, to,
      (v) => num(v) + ' ms'));
  charts.push(
    chart('rss', 'RSS per worker', bySlot(xs, (w) => w.rss || null), h.marks, from, to, bytes),
    chart('delay', 'Event-loop delay p99 per worker',
      bySlot(xs, (w) => (w.delayP99 === null ? null : w.delayP99 * 1000)), h.marks, from, to, (v) => num(v) + ' ms'),
  );
  $('charts').replaceChildren(...charts);
}
let timer = 0;
async function poll() {
  try {
    const [r, hr] = await Promise.all([
      fetch('status', { cache: 'no-store' }),
      fetch('history', { cache: 'no-store' })
    ]);
    if (!r.ok) throw new Error('HTTP ' + r.status);
    if (!hr.ok) throw new Error('HTTP ' + hr.status);
    render(await r.json());
    renderCharts(await hr.json());
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
<nav><a href="status">status (JSON)</a><a href="metrics">metrics</a><a href="logs/">logs</a><a
href="deps">dependencies</a>
<span class="muted" id="updated"></span></nav>
<div id="error"></div>
<div class="cards" id="cards"></div>
<div class="muted" id="impl"></div>
<h2>Last 5 minutes</h2>
<div class="charts" id="charts"></div>
<h2>Workers</h2>
<table>
<thead><tr>
<th>pid</th><th>slot</th><th class="l">state</th><th>uptime</th><th>connections</th>
<th>open</th><th>requests</th><th>RSS</th><th>heap</th><th>restarts</th>
</tr></thead>
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
