'use strict';
// Scenario 3, rolling reload of every worker under keep-alive load: c.reload()
// in the bench master (the same path as SIGHUP). Measured: reload() call to
// its resolution (the wall time), to the last old worker gone, the failed
// requests by kind, and the throughput dip from the client's requests per 100 ms.
const { startClient, sleep } = require('./closed-loop');
const { summary } = require('./stats');

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

/**
 * The figures of a reload, for cluster2 and the peers alike: started at t0,
 * done at t1, the last old worker gone at lastGone; the dip measured up to dipEnd.
 */
function reloadFigures(r, olds, news, t0, t1, lastGone, dipEnd) {
  return {
    wall: t1 - t0,
    allOldGone: lastGone - t0,
    replaced: olds.filter((p) => !news.includes(p)).length,
    workers: olds.length,
    ok: r.ok,
    failed: r.failed,
    errors: r.errors,
    ...dip(r.timeline, r.t0, t0, dipEnd),
    timeline: r.timeline,
    failTimeline: r.failTimeline,
    mark: { start: t0 - r.t0, end: t1 - r.t0, gone: lastGone - r.t0 },
  };
}

module.exports = {
  reloadFigures,
  name: 'reload',
  title: 'Rolling reload under load',
  applies: (s) => s !== 'single' && s !== 'reference',
  async run(strategy, ctx) {
    const server = await ctx.start(strategy);
    let client;
    try {
      const olds = server.workers();
      client = await startClient({ port: server.port, connections: ctx.connections, pin: ctx.pin.loader, warmup: ctx.quick ? 500 : 1000 });
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
      await sleep(ctx.quick ? 400 : 700);
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
