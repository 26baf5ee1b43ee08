'use strict';
// Scenario: upgrade of the master itself under keep-alive load: c.upgrade()
// in the bench master (what `cluster2 upgrade` and SIGUSR2 do). A new master
// inherits the listening sockets and starts its workers; the old one drains
// its own and retires (the started process then keeps the new master).
// Measured like the reload (bench/replacement.js): upgrade() call to the new
// master up (wall), to the last old worker gone, to the old master retired,
// the failed requests by kind and the throughput dip.
const { replaceUnderLoad } = require('./replacement');

module.exports = {
  name: 'upgrade',
  title: 'Upgrade of the master under load',
  applies: (s) => s !== 'single' && s !== 'reference',
  async run(strategy, ctx) {
    const server = await ctx.start(strategy);
    return replaceUnderLoad(server, ctx, { settle: ctx.quick ? 400 : 700 }, async (olds) => {
      server.send('upgrade');
      const start = await server.waitFor('upgrade-start', undefined, 5000);
      const end = await Promise.race([
        server.waitFor('upgraded', undefined, 60_000),
        server.waitFor('upgrade-failed', undefined, 60_000),
      ]);
      let lastGone = end.t;
      let retired = null;
      if (end.ev === 'upgraded') {
        const gone = [];
        for (const pid of olds) gone.push(await server.waitFor('died', (e) => e.args[0] === pid, 30_000));
        lastGone = Math.max(...gone.map((e) => e.t));
        retired = await server.waitFor('retired', undefined, 30_000);
      }
      return {
        t0: start.t,
        t1: end.t,
        lastGone,
        extra: {
          active: server.active,
          outcome: end.ev === 'upgraded' ? 'ok' : `failed: ${end.args[0]}`,
          oldMasterRetired: retired ? retired.t - start.t : null,
        },
      };
    });
  },
};
