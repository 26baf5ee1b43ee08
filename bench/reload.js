'use strict';
// Scenario 3, rolling reload of every worker under keep-alive load: c.reload()
// in the bench master (the same path as SIGHUP). Measured: reload() call to
// its resolution (the wall time), to the last old worker gone, the failed
// requests by kind, the throughput dip from the client's requests per 100 ms,
// the time until throughput is back to 90% of its level before, and the
// latency (p50, p99, max) of the requests sent from the reload's start to the
// last old worker gone.
const { startClient, sleep } = require('./closed-loop');
const { STEADY_ONLY, spareForked } = require('./servers');
const { summary, latencies } = require('./stats');

const SLOT_MS = 100;

/** Baseline (median of the slots before), the lowest slot during, the dip in %, the requests lost. */
function dip(timeline, t0, from, to) {
  const k = Math.floor((from - t0) / SLOT_MS);
  const end = Math.floor((to - t0) / SLOT_MS) + 1;
  const before = timeline.slice(Math.max(1, k - 6), k);
  const base = summary(before);
  if (!base) return { baseline: null, low: null, dipPct: null, lost: null };
  const during = timeline.slice(k, end + 1);
  const low = Math.min(...during);
  let lost = 0;
  for (const x of during) lost += Math.max(0, base.median - x);
  return { baseline: base.median, low, dipPct: Math.max(0, 100 * (1 - low / base.median)), lost: Math.round(lost) };
}

/** Throughput back to this share of its level before the reload. */
const RECOVERED = 0.9;

/**
 * ms from `from` until the requests per 100 ms are back to RECOVERED of
 * `baseline` and stay there: the end of the last slot below it. 0: never
 * below; null: still below in the last slot measured (not back within the window).
 * Each slot is averaged with its neighbours, so one slow slot of a noisy
 * machine does not count as the throughput being down.
 */
function recovery(timeline, t0, from, baseline) {
  if (!baseline) return null;
  const k = Math.max(0, Math.floor((from - t0) / SLOT_MS));
  const around = (j) => {
    const w = timeline.slice(Math.max(0, j - 1), j + 2);
    return w.reduce((a, b) => a + b, 0) / w.length;
  };
  let last = -1;
  for (let j = k; j < timeline.length; j++) if (around(j) < RECOVERED * baseline) last = j;
  if (last < 0) return 0;
  if (last === timeline.length - 1) return null;
  return Math.max(0, (last + 1) * SLOT_MS - (from - t0));
}

/**
 * The figures of a reload, for cluster2 and the peers alike: started at t0,
 * done at t1, the last old worker gone at lastGone; the dip measured up to dipEnd.
 */
function reloadFigures(r, olds, news, t0, t1, lastGone, dipEnd) {
  const d = dip(r.timeline, r.t0, t0, dipEnd);
  const lat = latencies(r.requests, t0, lastGone);
  return {
    wall: t1 - t0,
    allOldGone: lastGone - t0,
    replaced: olds.filter((p) => !news.includes(p)).length,
    workers: olds.length,
    ok: r.ok,
    failed: r.failed,
    errors: r.errors,
    ...d,
    recoverMs: recovery(r.timeline, r.t0, t0, d.baseline),
    latP50: lat.p50,
    latP99: lat.p99,
    latMax: lat.max,
    timeline: r.timeline,
    failTimeline: r.failTimeline,
    mark: { start: t0 - r.t0, end: t1 - r.t0, gone: lastGone - r.t0 },
  };
}

module.exports = {
  reloadFigures,
  recovery,
  RECOVERED,
  name: 'reload',
  title: 'Rolling reload under load',
  applies: (s) => s !== 'single' && s !== 'reference' && !STEADY_ONLY.includes(s),
  async run(strategy, ctx) {
    const server = await ctx.start(strategy);
    let client;
    try {
      await spareForked(server, ctx);
      const olds = server.workers();
      client = await startClient({
        port: server.port,
        connections: ctx.connections,
        pin: ctx.pin.loader,
        warmup: ctx.quick ? 500 : 1000,
        record: true,
      });
      await sleep(ctx.quick ? 800 : 1000);
      server.send('reload');
      const start = await server.waitFor('reload-start', undefined, 5000);
      const end = await Promise.race([
        server.waitFor('reloaded', undefined, 20_000),
        server.waitFor('reload-failed', undefined, 20_000),
      ]);
      const gone = [];
      for (const pid of olds) gone.push(await server.waitFor('died', (e) => e.args[0] === pid, 10_000));
      const lastGone = Math.max(...gone.map((e) => e.t));
      // Long enough to see throughput come back (the target: within 1 s of the start).
      await sleep(ctx.quick ? 1000 : 1500);
      const r = await client.stop();
      client = null;
      return {
        active: server.active,
        outcome: end.ev === 'reloaded' ? 'ok' : `failed: ${end.args[0]}`,
        ...reloadFigures(r, olds, server.workers(), start.t, end.t, lastGone, lastGone),
      };
    } finally {
      if (client) await client.stop().catch(() => {});
      await server.stop();
    }
  },
};
