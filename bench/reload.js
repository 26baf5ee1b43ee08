'use strict';
// Scenario 3, rolling reload of every worker under keep-alive load: c.reload()
// in the bench master (the same path as SIGHUP). Measured: reload() call to
// its resolution (the wall time), to the last old worker gone, the failed
// requests by kind, the throughput dip from the client's requests per 100 ms,
// the time until throughput is back to 90% of its level before, and the
// latency (p50, p99, max) of the requests sent from the reload's start to the
// last old worker gone (bench/replacement.js).
// The control, row `reference`: the no-master processes, and the client makes
// all its connections anew (as a reload makes it), no server replaced. Its dip
// and its time back to 90% are what the reconnecting alone costs, on this
// machine with this client: the floor of any reload's.
const { STEADY_ONLY } = require('./servers');
const { replaceUnderLoad } = require('./replacement');
const { now } = require('./apps/clock');
const { sleep } = require('./closed-loop');

/** The control: every connection made anew, at once; nothing replaced. */
async function reconnectOnly(server, ctx, o) {
  const r = await replaceUnderLoad(server, ctx, o, async (olds, client) => {
    const t0 = now();
    client.reconnect();
    // The dip and the latencies over the first 200 ms, the window after it as long as a reload's:
    // a 2-worker reload's old workers are gone by then.
    await sleep(200);
    return { t0, t1: t0, lastGone: t0 + 200, extra: { active: 'reference', outcome: 'ok' } };
  });
  return { ...r, wall: null, allOldGone: null };
}

module.exports = {
  name: 'reload',
  title: 'Rolling reload under load',
  applies: (s) => s !== 'single' && !STEADY_ONLY.includes(s),
  async run(strategy, ctx) {
    const server = await ctx.start(strategy);
    // Long enough after it to see throughput come back and stay (the target: within 1 s of the start).
    const o = { spare: true, record: true, settle: ctx.quick ? 1500 : 2500 };
    if (strategy === 'reference') return reconnectOnly(server, ctx, o);
    return replaceUnderLoad(server, ctx, o, async (olds) => {
      server.send('reload');
      const start = await server.waitFor('reload-start', undefined, 5000);
      const end = await Promise.race([
        server.waitFor('reloaded', undefined, 20_000),
        server.waitFor('reload-failed', undefined, 20_000),
      ]);
      const gone = [];
      for (const pid of olds) gone.push(await server.waitFor('died', (e) => e.args[0] === pid, 10_000));
      return {
        t0: start.t,
        t1: end.t,
        lastGone: Math.max(...gone.map((e) => e.t)),
        extra: { active: server.active, outcome: end.ev === 'reloaded' ? 'ok' : `failed: ${end.args[0]}` },
      };
    });
  },
};
