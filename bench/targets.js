'use strict';
// The targets, checked against the figures of this run, each labelled by what
// it measures. Each: { measures, target, strategy, measured, pass: true |
// false | null (not measured), cause: why it was missed, from this run's figures }.

const CLUSTERED = ['defaults', 'round-robin', 'shared', 'reuseport', 'reuseport-node'];

function fx(x, d = 2) {
  return x == null ? 'n/a' : Number(x).toFixed(d);
}

/** "1.23x (1.1-1.4)" of a ratio summary. */
function ratio(r, unit = 'x') {
  return r ? `${fx(r.median)}${unit} (${fx(r.min)}-${fx(r.max)})` : 'n/a';
}

function ms(s) {
  return s ? `${fx(s.median, 0)} ms (${fx(s.min, 0)}-${fx(s.max, 0)})` : 'n/a';
}

/** A virtual machine whose hypervisor steals this share of the CPU time (%) gives noisy figures. */
const STEAL_NOISY_PCT = 2;

/** What, in the steady figures of a row, explains a shortfall against the reference. */
function steadyCause(o, mode, busy) {
  const m = o[mode];
  const why = [];
  if (m.replaced) why.push(`${m.replaced} worker(s) replaced during the load (recycling)`);
  if (m.masterCpu && m.masterCpu.median > 0.05) why.push(`the master used ${fx(m.masterCpu.median)} of a core`);
  if (m.cpuVsReference && m.cpuVsReference.median > 1.05)
    why.push(`the server spent ${fx(m.cpuVsReference.median)}x the reference's CPU per request`);
  if (m.loaderCpu && m.loaderCpu.median > 0.8) why.push(`the load generator took ${fx(m.loaderCpu.median)} of a core`);
  if (busy) why.push(busy);
  return why.length
    ? why.join('; ')
    : 'no cause in the figures: noise between runs (repeat, or run on a quiet machine)';
}

function check(S, meta = {}) {
  const out = [];
  const busy = [
    meta.loadavgAtStart && meta.cores && meta.loadavgAtStart[0] > meta.cores
      ? `the machine was busy (load average ${meta.loadavgAtStart[0]} on ${meta.cores} cores)`
      : '',
    meta.stealPct >= STEAL_NOISY_PCT
      ? `the hypervisor took ${meta.stealPct}% of the CPU time during the run (steal): figures vary from run to run`
      : '',
  ]
    .filter(Boolean)
    .join('; ');
  const add = (measures, target, strategy, measured, pass, cause) =>
    out.push({ measures, target, strategy, measured, pass, cause: pass === false ? cause() : '' });
  const st = S.steady;
  if (st) {
    const d = st.defaults;
    if (d) {
      const ref = d.close.vsReference;
      add(
        'accept path, default options',
        'req/s >= 0.9x the no-master reference',
        'defaults',
        ratio(ref),
        ref ? ref.median >= 0.9 : null,
        () => steadyCause(d, 'close', busy),
      );
      const p99 = d.close.p99VsReference;
      add(
        'accept path, default options',
        "p99 <= 1.5x the no-master reference's",
        'defaults',
        ratio(p99),
        p99 ? p99.median <= 1.5 : null,
        () => steadyCause(d, 'close', busy),
      );
      const cpu = d.keepalive.cpuVsReference;
      add(
        'keep-alive hot path',
        'server CPU per request within 5% of the no-master reference',
        'defaults',
        ratio(cpu),
        cpu ? cpu.median <= 1.05 : null,
        () => steadyCause(d, 'keepalive', busy),
      );
    }
    const th = st['threshold-10000'];
    if (th) {
      const r = th.close.vsDefaults;
      add(
        'accept path, connThreshold: 10000',
        'req/s >= 0.8x the same with the threshold off (defaults)',
        'threshold-10000',
        ratio(r),
        r ? r.median >= 0.8 : null,
        () =>
          `${th.close.replaced} worker(s) recycled during the loads; each recycle forks and boots a replacement on the cores that serve`,
      );
    }
    for (const s of ['reuseport', 'reuseport-node']) {
      if (!st[s]) continue;
      const rr = st[s].close.vsRoundRobin;
      add('accept path', 'req/s >= 2x round-robin', s, ratio(rr), rr ? rr.median >= 2 : null, () =>
        steadyCause(st[s], 'close', busy),
      );
      const ref = st[s].close.vsReference;
      add(
        'accept path',
        'req/s within 10% of the no-master reference',
        s,
        ratio(ref),
        ref ? ref.median >= 0.9 : null,
        () => steadyCause(st[s], 'close', busy),
      );
    }
    // Among the multi-worker strategies: one process (single) cannot use a second core.
    for (const [s, o] of Object.entries(st)) {
      if (!CLUSTERED.includes(s)) continue;
      const b = o.keepalive.vsBest;
      add('keep-alive', 'req/s within 10% of the best strategy', s, ratio(b), b ? b.median >= 0.9 : null, () =>
        steadyCause(o, 'keepalive', busy),
      );
    }
    for (const [s, o] of Object.entries(st)) {
      const n = o.keepalive.errorCount + o.close.errorCount;
      add('lose nothing', '0 failed requests: steady load', s, `${n}`, o.failedRuns.length ? false : n === 0, () =>
        o.failedRuns.length
          ? `a run broke: ${o.failedRuns[0]}`
          : `errors: ${JSON.stringify({ ...o.keepalive.errors, ...o.close.errors })}`,
      );
    }
  }
  for (const [name, label] of [
    ['recycle', 'recycle'],
    ['reload', 'rolling reload'],
    ['shutdown', 'shutdown (in-flight requests)'],
  ]) {
    if (!S[name]) continue;
    for (const [s, o] of Object.entries(S[name])) {
      if (s === 'reference') continue; // the reload's control: it replaces nothing
      add(
        'lose nothing',
        `0 failed requests: ${label}`,
        s,
        `${o.failedTotal}${o.failedRuns.length ? ` (+${o.failedRuns.length} run(s) that broke)` : ''}`,
        o.failedRuns.length ? false : o.failedTotal === 0,
        () => (o.failedRuns.length ? `a run broke: ${o.failedRuns[0]}` : `errors: ${JSON.stringify(o.errors)}`),
      );
    }
  }
  if (S['shutdown-burst']) {
    for (const [s, o] of Object.entries(S['shutdown-burst'])) {
      add(
        'lose nothing',
        '0 connections reset: shutdown with a burst of new connections',
        s,
        `${o.failedTotal}${o.failedRuns.length ? ` (+${o.failedRuns.length} run(s) that broke)` : ''}`,
        o.failedRuns.length ? false : o.failedTotal === 0,
        () => (o.failedRuns.length ? `a run broke: ${o.failedRuns[0]}` : `errors: ${JSON.stringify(o.errors)}`),
      );
    }
  }
  if (S.reload) {
    // The control (reconnect only, bench/reload.js) has no target: it is the floor of the others.
    const control = S.reload.reference;
    const back = (o) =>
      `${o.recoverMedian == null ? 'not back' : `${Math.round(o.recoverMedian)} ms`}` +
      `${o.notRecovered ? `, ${o.notRecovered} of ${o.outcomes.length} run(s) not back within the window` : ''}`;
    const floor = control ? `; the control (every connection made anew, no reload): ${back(control)}` : '';
    for (const [s, o] of Object.entries(S.reload)) {
      if (s === 'reference') continue;
      add(
        'reload',
        'full reload under 400 ms',
        s,
        ms(o.wall),
        o.wall ? o.wall.median < 400 : null,
        () => `each replacement boots the app; ${busy || 'the cores were shared with the load'}`,
      );
      add(
        'reload',
        'throughput back to 90% of its level before within 1 s (2 workers)',
        s,
        `median ${back(o)}`,
        o.outcomes.length ? o.recoverMedian != null && o.recoverMedian <= 1000 : null,
        () =>
          `lowest slot ${fx(o.low && o.low.median, 0)} of a baseline of ${fx(o.baseline && o.baseline.median, 0)} req/100ms; the last old worker was gone at ${ms(o.allOldGone)}${floor}`,
      );
    }
  }
  if (S.recycle) {
    for (const [s, o] of Object.entries(S.recycle)) {
      add(
        'recycle',
        'trigger to listening within 20 ms of a bare fork',
        s,
        o.overBare
          ? `${signed(o.overBare.median)} ms (${signed(o.overBare.min)} to ${signed(o.overBare.max)}); bare fork ${fx(o.bareFork.median, 0)} ms` +
              `${o.replacements && o.replacements.length ? `; replacement: ${o.replacements.join(',')}` : ''}`
          : 'n/a',
        o.overBare ? o.overBare.median <= 20 : null,
        () =>
          `forked to listening took ${ms(o.forkedToListening)}; replacement: ${(o.replacements || []).join(',') || 'n/a'}`,
      );
    }
  }
  if (S.sizes) {
    for (const [s, o] of Object.entries(S.sizes)) {
      for (const [n, limit] of [
        [8, 2000],
        [32, 5000],
      ]) {
        const z = o.bySize[n];
        if (!z) continue;
        add(
          'reload at size',
          `${n} workers reload in <= ${limit / 1000} s, 0 failed`,
          s,
          `${ms(z.reload)}, ${z.failedTotal} failed, ${z.concurrency} at a time`,
          z.reload ? z.reload.median <= limit && z.failedTotal === 0 : null,
          () =>
            `${z.failedTotal} failed; each of ${n} replacements boots Node and the app on ${meta.cores || '?'} cores, ${z.concurrency} at a time; ${busy || 'the load shares the cores'}`,
        );
      }
    }
  }
  return out;
}

/** +12, -40: a difference, with its sign. */
function signed(v) {
  return `${v >= 0 ? '+' : ''}${fx(v, 0)}`;
}

module.exports = { check, CLUSTERED };
