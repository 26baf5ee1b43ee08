'use strict';
// The targets of issues 6 and 4, checked against the figures of this run.
// Each: { issue, target, strategy, measured, pass: true | false | null (not measured) }.

const CLUSTERED = ['round-robin', 'shared', 'reuseport', 'reuseport-node'];

function fx(x, d = 2) {
  return x == null ? 'n/a' : Number(x).toFixed(d);
}

function check(S) {
  const out = [];
  const add = (issue, target, strategy, measured, pass) => out.push({ issue, target, strategy, measured, pass });
  const st = S.steady;
  if (st) {
    for (const s of ['reuseport', 'reuseport-node']) {
      if (!st[s]) continue;
      const rr = st[s].close.vsRoundRobin;
      add(6, 'accept path (new connection per request): >= 2x round-robin', s, rr ? `${fx(rr.median)}x (${fx(rr.min)}-${fx(rr.max)})` : 'n/a', rr ? rr.median >= 2 : null);
      const ref = st[s].close.vsReference;
      add(6, 'accept path: within 10% of the no-master reference', s, ref ? `${fx(ref.median * 100, 0)}% of it (${fx(ref.min * 100, 0)}-${fx(ref.max * 100, 0)})` : 'n/a', ref ? ref.median >= 0.9 : null);
    }
    // Among the multi-worker strategies: one process (single) cannot use a second core.
    for (const [s, o] of Object.entries(st)) {
      if (!CLUSTERED.includes(s)) continue;
      const b = o.keepalive.vsBest;
      add(6, 'keep-alive: within 10% of the best strategy', s, b ? `${fx(b.median * 100, 0)}% of the best (${fx(b.min * 100, 0)}-${fx(b.max * 100, 0)})` : 'n/a', b ? b.median >= 0.9 : null);
    }
    for (const [s, o] of Object.entries(st)) {
      const n = o.keepalive.errorCount + o.close.errorCount;
      add(4, '0 failed requests: steady load', s, `${n}`, o.failedRuns.length ? false : n === 0);
    }
  }
  for (const [name, label] of [['recycle', 'recycle'], ['reload', 'rolling reload'], ['shutdown', 'shutdown (in-flight requests)']]) {
    if (!S[name]) continue;
    for (const [s, o] of Object.entries(S[name])) {
      add(4, `0 failed requests: ${label}`, s, `${o.failedTotal}${o.failedRuns.length ? ` (+${o.failedRuns.length} run(s) that broke)` : ''}`, o.failedRuns.length ? false : o.failedTotal === 0);
    }
  }
  if (S['shutdown-burst']) {
    for (const [s, o] of Object.entries(S['shutdown-burst'])) {
      add(19, '0 connections reset: shutdown with a burst of new connections', s, `${o.failedTotal}${o.failedRuns.length ? ` (+${o.failedRuns.length} run(s) that broke)` : ''}`, o.failedRuns.length ? false : o.failedTotal === 0);
    }
  }
  if (S.reload) {
    for (const [s, o] of Object.entries(S.reload)) {
      add(4, 'full reload under 400 ms', s, o.wall ? `${fx(o.wall.median, 0)} ms (${fx(o.wall.min, 0)}-${fx(o.wall.max, 0)})` : 'n/a', o.wall ? o.wall.median < 400 : null);
    }
  }
  if (S.recycle) {
    for (const [s, o] of Object.entries(S.recycle)) {
      add(4, 'recycle: trigger to listening within 20 ms of a bare fork', s,
        o.overBare ? `${signed(o.overBare.median)} ms (${signed(o.overBare.min)} to ${signed(o.overBare.max)}); bare fork ${fx(o.bareFork.median, 0)} ms`
          + `${o.replacements && o.replacements.length ? `; replacement: ${o.replacements.join(',')}` : ''}` : 'n/a',
        o.overBare ? o.overBare.median <= 20 : null);
    }
  }
  return out;
}

/** +12, -40: a difference, with its sign. */
function signed(v) {
  return `${v >= 0 ? '+' : ''}${fx(v, 0)}`;
}

module.exports = { check, CLUSTERED };
