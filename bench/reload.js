'use strict';
// Scenario 3, rolling reload of every worker under keep-alive load: c.reload()
// in the bench master (the same path as SIGHUP). Measured: reload() call to
// its resolution (the wall time), to the last old worker gone, the failed
// requests by kind, the throughput dip from the client's requests per 100 ms,
// the time until throughput is back to 90% of its level before, and the
// latency (p50, p99, max) of the requests sent from the reload's start to the
// last old worker gone (bench/replacement.js).
const { STEADY_ONLY } = require('./servers');
const { replaceUnderLoad } = require('./replacement');

module.exports = {
  name: 'reload',
  title: 'Rolling reload under load',
  applies: (s) => s !== 'single' && s !== 'reference' && !STEADY_ONLY.includes(s),
  async run(strategy, ctx) {
    const server = await ctx.start(strategy);
    // Long enough after it to see throughput come back (the target: within 1 s of the start).
    const o = { spare: true, record: true, settle: ctx.quick ? 1000 : 1500 };
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
