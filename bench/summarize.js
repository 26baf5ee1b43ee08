'use strict';
// Runs -> figures: each figure the median of the repeated runs with min and
// max; ratios against round-robin (and the best, and the no-master reference)
// taken within each repeat, so they hold on a noisy machine; errors added up.
const { summary, median, addCounts, total } = require('./stats');

/** Rows that are other tools (--peer), not cluster2 strategies. */
const PEERS = ['pm2'];

const ok = (runs) => runs.filter((r) => r && !r.error);
const pick = (runs, f) => ok(runs).map(f);

/** Per repeat: value(strategy) / value(other) when both ran in that repeat. */
function ratioRuns(byStrategy, strategy, other, f) {
  const a = byStrategy[strategy] || [];
  const b = byStrategy[other] || [];
  const out = [];
  for (let i = 0; i < a.length; i++) {
    if (!a[i] || a[i].error || !b[i] || b[i].error) continue;
    const x = f(a[i]);
    const y = f(b[i]);
    if (x != null && y) out.push(x / y);
  }
  return summary(out);
}

function shareSummary(runs, mode) {
  const lists = pick(runs, (r) => r[mode].shares);
  if (!lists.length) return [];
  const n = Math.max(...lists.map((l) => l.length));
  const out = [];
  for (let i = 0; i < n; i++) out.push(summary(lists.map((l) => l[i] ?? 0)).median);
  return out;
}

function steady(byStrategy) {
  const out = {};
  for (const [s, runs] of Object.entries(byStrategy)) {
    const o = {
      active: ok(runs)[0]?.active,
      runs: runs.length,
      failedRuns: runs.filter((r) => r && r.error).map((r) => r.error),
    };
    for (const mode of ['keepalive', 'close']) {
      const f = (k) => summary(pick(runs, (r) => r[mode][k]));
      const errors = addCounts(pick(runs, (r) => r[mode].errors));
      o[mode] = {
        rps: f('rps'),
        p50: f('p50'),
        p99: f('p99'),
        loaderCpu: f('loaderCpu'),
        masterCpu: f('masterCpu'),
        workersCpu: f('workersCpu'),
        cpuPerRequest: f('cpuPerRequest'),
        requests: summary(pick(runs, (r) => r[mode].requests)),
        errors,
        errorCount: total(errors),
        shares: shareSummary(runs, mode),
        replaced: pick(runs, (r) => r[mode].replaced || 0).reduce((a, b) => a + b, 0),
        vsRoundRobin: ratioRuns(byStrategy, s, 'round-robin', (r) => r[mode].rps),
      };
    }
    o.close.vsReference = ratioRuns(byStrategy, s, 'reference', (r) => r.close.rps);
    o.close.vsDefaults = ratioRuns(byStrategy, s, 'defaults', (r) => r.close.rps);
    for (const mode of ['keepalive', 'close']) {
      o[mode].p99VsReference = ratioRuns(byStrategy, s, 'reference', (r) => r[mode].p99);
      o[mode].cpuVsReference = ratioRuns(byStrategy, s, 'reference', (r) => r[mode].cpuPerRequest);
    }
    out[s] = o;
  }
  // Keep-alive: each strategy against the best cluster2 strategy of the same repeat (a peer is not one).
  const names = Object.keys(byStrategy).filter((n) => !PEERS.includes(n));
  for (const s of Object.keys(byStrategy)) {
    const rs = [];
    byStrategy[s].forEach((r, i) => {
      if (!r || r.error) return;
      const best = Math.max(
        ...names
          .map((n) => byStrategy[n][i])
          .filter((x) => x && !x.error)
          .map((x) => x.keepalive.rps),
      );
      if (best > 0) rs.push(r.keepalive.rps / best);
    });
    out[s].keepalive.vsBest = summary(rs);
  }
  return out;
}

function events(byStrategy, keys) {
  const out = {};
  for (const [s, runs] of Object.entries(byStrategy)) {
    const o = {
      active: ok(runs)[0]?.active,
      runs: runs.length,
      failedRuns: runs.filter((r) => r && r.error).map((r) => r.error),
    };
    for (const k of keys) o[k] = summary(pick(runs, (r) => r[k]));
    o.failedTotal = pick(runs, (r) => r.failed).reduce((a, b) => a + b, 0);
    o.errors = addCounts(pick(runs, (r) => r.errors));
    out[s] = o;
  }
  return out;
}

function recycle(byStrategy) {
  const out = events(byStrategy, [
    'triggerToForked',
    'forkedToListening',
    'triggerToListening',
    'triggerToGone',
    'bareFork',
    'overBare',
    'bootLoaded',
    'bootListening',
    'bareLoaded',
    'bareListening',
    'spareAhead',
    'latP50',
    'latP99',
    'latMax',
    'failed',
    'ok',
  ]);
  // Where the replacements came from: spare, fork (a run may differ: no spare was ready).
  for (const [s, runs] of Object.entries(byStrategy))
    out[s].replacements = [
      ...new Set(
        ok(runs)
          .map((r) => r.replacement)
          .filter(Boolean),
      ),
    ];
  return out;
}

function reload(byStrategy) {
  const out = events(byStrategy, [
    'wall',
    'allOldGone',
    'dipPct',
    'low',
    'baseline',
    'lost',
    'recoverMs',
    'latP50',
    'latP99',
    'latMax',
    'failed',
    'ok',
    'opened',
  ]);
  for (const [s, runs] of Object.entries(byStrategy)) {
    const good = ok(runs);
    // Runs whose throughput was still under 90% at the end of the window (recoverMs null).
    out[s].notRecovered = good.filter((r) => r.recoverMs == null).length;
    out[s].recoverMedian = medianNotBackLast(good.map((r) => r.recoverMs));
    out[s].outcomes = good.map((r) => r.outcome);
    out[s].replaced = good.map((r) => `${r.replaced}/${r.workers}`);
    // The run with the median wall time, for the chart.
    const sorted = [...good].sort((a, b) => a.wall - b.wall);
    const mid = sorted[(sorted.length - 1) >> 1];
    if (mid) out[s].chart = { timeline: mid.timeline, failTimeline: mid.failTimeline, mark: mid.mark };
  }
  return out;
}

/**
 * The median of the times back to 90%, every run counted, one not back
 * (null) as longer than any; null when the median run was not back, or
 * there was no run. Like every other target's figure, a median of the runs:
 * on 2 shared cores the control (no reload at all) had runs not back too.
 */
function medianNotBackLast(values) {
  if (values.length === 0) return null;
  const m = median(values.map((x) => (typeof x === 'number' ? x : Infinity)).sort((a, b) => a - b));
  return Number.isFinite(m) ? m : null;
}

function shutdown(byStrategy) {
  const out = events(byStrategy, ['signalToExit', 'lastInflightToExit', 'inflight', 'failed', 'leftBehind']);
  for (const [s, runs] of Object.entries(byStrategy)) {
    out[s].exitCodes = [...new Set(pick(runs, (r) => r.exitCode))];
    out[s].afterSignal = addCounts(pick(runs, (r) => r.afterSignal.errors));
    out[s].afterSignalOk = pick(runs, (r) => r.afterSignal.ok).reduce((a, b) => a + b, 0);
  }
  return out;
}

function portBusy(byStrategy) {
  const out = events(byStrategy, ['timeToExit']);
  for (const [s, runs] of Object.entries(byStrategy)) {
    out[s].exitCodes = [...new Set(pick(runs, (r) => r.exitCode))];
    out[s].stuck = pick(runs, (r) => !r.exited).filter(Boolean).length;
    out[s].message = ok(runs)[0]?.message ?? '';
  }
  return out;
}

/** Per number of workers: the medians of the runs, failed requests added up. */
function sizes(byStrategy) {
  const out = {};
  for (const [s, runs] of Object.entries(byStrategy)) {
    const good = ok(runs);
    const bySize = {};
    for (const n of [...new Set(good.flatMap((r) => Object.keys(r.bySize)))]) {
      const zs = good.map((r) => r.bySize[n]).filter(Boolean);
      const z = {
        concurrency: zs[0].concurrency,
        failedTotal: zs.reduce((a, r) => a + r.failed, 0),
        errors: addCounts(zs.map((r) => r.errors)),
      };
      for (const k of ['start', 'reload', 'shutdown', 'idleCpu', 'reloadCpu', 'rss', 'rssPeak'])
        z[k] = summary(zs.map((r) => r[k]));
      z.outcomes = zs.map((r) => r.outcome);
      z.exitCodes = [...new Set(zs.map((r) => r.exitCode))];
      bySize[n] = z;
    }
    out[s] = { runs: runs.length, failedRuns: runs.filter((r) => r && r.error).map((r) => r.error), bySize };
  }
  return out;
}

function upgrade(byStrategy) {
  const out = reload(byStrategy);
  const more = events(byStrategy, ['oldMasterRetired']);
  for (const s of Object.keys(byStrategy)) out[s].oldMasterRetired = more[s].oldMasterRetired;
  return out;
}

function shutdownBurst(byStrategy) {
  const out = events(byStrategy, ['answered', 'refused', 'reset', 'signalToExit']);
  for (const [s, runs] of Object.entries(byStrategy)) out[s].exitCodes = [...new Set(pick(runs, (r) => r.exitCode))];
  return out;
}

const LONG_LIVED = require('./long-lived');
const BY_SCENARIO = {
  steady,
  recycle,
  reload,
  shutdown,
  'port-busy': portBusy,
  sizes,
  'shutdown-burst': shutdownBurst,
  upgrade,
};

function summarize(scenario, byStrategy) {
  return (BY_SCENARIO[scenario] ?? LONG_LIVED[scenario].summarize)(byStrategy);
}

module.exports = {
  medianNotBackLast,
  summarize,
  PEERS,
};
