'use strict';
// A self-contained HTML page: the run's facts, inline SVG charts (throughput by
// strategy; requests per 100 ms across a reload) and every table.
const { num } = require('./report');

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#17becf'];

/** The axis top: 1, 2 or 5 times a power of ten, at or above v. */
function niceMax(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
}

/** Grouped bars: per strategy, keep-alive and new-connection req/s, with min-max whiskers. */
function throughputChart(st) {
  const names = Object.keys(st);
  if (!names.length) return '';
  const modes = [
    ['keepalive', 'keep-alive', '#1f77b4'],
    ['close', 'new connection per request', '#ff7f0e'],
  ];
  const max = niceMax(Math.max(1, ...names.flatMap((s) => modes.map(([m]) => (st[s][m].rps ? st[s][m].rps.max : 0)))));
  const W = 760,
    H = 320,
    left = 70,
    bottom = 60,
    top = 30;
  const plotH = H - bottom - top;
  const group = (W - left - 20) / names.length;
  const bar = Math.min(40, group / 3);
  const y = (v) => top + plotH - (v / max) * plotH;
  const parts = [];
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    parts.push(`<line x1="${left}" x2="${W - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    parts.push(`<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${num(v)}</text>`);
  }
  names.forEach((s, gi) => {
    const gx = left + gi * group + group / 2;
    modes.forEach(([m, , color], mi) => {
      const r = st[s][m].rps;
      if (!r) return;
      const x = gx + (mi - 1) * bar + 2;
      parts.push(
        `<rect x="${x}" y="${y(r.median)}" width="${bar - 4}" height="${top + plotH - y(r.median)}" fill="${color}"><title>${esc(s)} ${m}: ${num(r.median)} req/s</title></rect>`,
      );
      if (r.n > 1) {
        const cx = x + (bar - 4) / 2;
        parts.push(`<line x1="${cx}" x2="${cx}" y1="${y(r.min)}" y2="${y(r.max)}" stroke="#000"/>`);
      }
      parts.push(
        `<text x="${x + (bar - 4) / 2}" y="${y(r.max) - 4}" text-anchor="middle" font-size="10">${num(r.median / 1000, 1)}k</text>`,
      );
    });
    parts.push(`<text x="${gx}" y="${H - bottom + 16}" text-anchor="middle" font-size="12">${esc(s)}</text>`);
  });
  modes.forEach(([, label, color], i) => {
    parts.push(
      `<rect x="${left + i * 220}" y="${H - 22}" width="12" height="12" fill="${color}"/><text x="${left + i * 220 + 16}" y="${H - 12}" font-size="12">${esc(label)}</text>`,
    );
  });
  parts.push(
    `<text x="12" y="${top + plotH / 2}" font-size="12" transform="rotate(-90 12 ${top + plotH / 2})" text-anchor="middle">requests/s (median, min-max)</text>`,
  );
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${parts.join('')}</svg>`;
}

/** Requests per 100 ms across a reload, one line per strategy, aligned on the reload's start. */
function reloadChart(r) {
  const series = Object.entries(r).filter(([, o]) => o.chart && o.chart.timeline.length);
  if (!series.length) return '';
  const W = 760,
    H = 320,
    left = 60,
    bottom = 50,
    top = 20;
  const plotW = W - left - 20,
    plotH = H - top - bottom;
  const pts = series.map(([s, o]) => {
    const startSlot = o.chart.mark.start / 100;
    return {
      s,
      o,
      xs: o.chart.timeline.map((v, i) => ({ t: (i + 0.5 - startSlot) / 10, v })),
      fails: (o.chart.failTimeline || []).map((v, i) => ({ t: (i + 0.5 - startSlot) / 10, v })).filter((p) => p.v),
    };
  });
  const tMin = Math.min(...pts.map((p) => p.xs[0].t));
  const tMax = Math.max(...pts.map((p) => p.xs[p.xs.length - 1].t));
  const vMax = niceMax(Math.max(1, ...pts.flatMap((p) => p.xs.map((q) => q.v))));
  const x = (t) => left + ((t - tMin) / (tMax - tMin || 1)) * plotW;
  const y = (v) => top + plotH - (v / vMax) * plotH;
  const parts = [];
  for (let i = 0; i <= 4; i++) {
    const v = (vMax * i) / 4;
    parts.push(
      `<line x1="${left}" x2="${W - 20}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="${left - 6}" y="${y(v) + 4}" text-anchor="end" font-size="11">${num(v)}</text>`,
    );
  }
  for (let t = Math.ceil(tMin * 2) / 2; t <= tMax; t += 0.5) {
    parts.push(`<text x="${x(t)}" y="${H - bottom + 16}" text-anchor="middle" font-size="11">${t.toFixed(1)}s</text>`);
  }
  parts.push(
    `<line x1="${x(0)}" x2="${x(0)}" y1="${top}" y2="${top + plotH}" stroke="#000" stroke-dasharray="4 3"/><text x="${x(0) + 4}" y="${top + 12}" font-size="11">reload</text>`,
  );
  pts.forEach((p, i) => {
    const c = COLORS[i % COLORS.length];
    parts.push(
      `<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${p.xs.map((q) => `${x(q.t).toFixed(1)},${y(q.v).toFixed(1)}`).join(' ')}"><title>${esc(p.s)}</title></polyline>`,
    );
    const gone = (p.o.chart.mark.gone - p.o.chart.mark.start) / 1000;
    parts.push(
      `<line x1="${x(gone)}" x2="${x(gone)}" y1="${top + plotH - 8}" y2="${top + plotH}" stroke="${c}" stroke-width="2"><title>${esc(p.s)}: last old worker gone</title></line>`,
    );
    for (const f of p.fails)
      parts.push(
        `<circle cx="${x(f.t)}" cy="${y(0) - 4}" r="3" fill="red"><title>${esc(p.s)}: ${f.v} failed</title></circle>`,
      );
    parts.push(
      `<rect x="${left + i * 150}" y="${H - 22}" width="12" height="12" fill="${c}"/><text x="${left + i * 150 + 16}" y="${H - 12}" font-size="12">${esc(p.s)}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">${parts.join('')}</svg>`;
}

function table(t) {
  const head = t.columns.map((c) => `<th>${esc(c)}</th>`).join('');
  const rows = t.rows
    .map(
      (r) =>
        `<tr>${r.map((c) => `<td${/^MISSED$/.test(c) ? ' class="miss"' : /^MET$/.test(c) ? ' class="met"' : ''}>${esc(c)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<h2>${esc(t.title)}</h2><table><thead><tr>${head}</tr></thead><tbody>${rows}</tbody></table>${t.note ? `<p class="note">${esc(t.note)}</p>` : ''}`;
}

function page(report, tables) {
  const m = report.meta;
  const facts = Object.entries(m)
    .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(typeof v === 'object' ? JSON.stringify(v) : v)}</td></tr>`)
    .join('');
  const notes = report.notes.map((n) => `<li>${esc(n)}</li>`).join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>cluster2 bench ${esc(m.date)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.note{color:#555;font-size:12px}.miss{background:#fdd}.met{background:#dfd}
</style></head><body>
<h1>cluster2 bench</h1>
<table>${facts}</table>
${notes ? `<h2>Notes</h2><ul>${notes}</ul>` : ''}
${report.summary.steady ? `<h2>Throughput by strategy</h2>${throughputChart(report.summary.steady)}` : ''}
${report.summary.reload ? `<h2>Requests per 100 ms across a rolling reload</h2>${reloadChart(report.summary.reload)}<p class="note">Aligned on the reload's start (dashed); a short tick on the axis marks when the last old worker was gone; red dots are failed requests.</p>` : ''}
${tables.map(table).join('\n')}
</body></html>
`;
}

module.exports = { page };
