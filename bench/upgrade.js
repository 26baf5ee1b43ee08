'use strict';
// Scenario: upgrade of the master itself under keep-alive load: c.upgrade()
// in the bench master (what `cluster2 upgrade` and SIGUSR2 do). A new master
// inherits the listening sockets and starts its workers; the old one drains
// its own and exits. Measured like the reload: upgrade() call to the new
// master up (wall), to the last old worker gone, to the old master's exit,
// the failed requests by kind and the throughput dip.
const { startClient, sleep } = require('./closed-loop');
const { reloadFigures } = require('./reload');

module.exports = {
  name: 'upgrade',
  title: 'Upgrade of the master under load',
  applies: (s) => s !== 'single' && s !== 'reference',
  async run(strategy, ctx) {
    const server = await ctx.start(strategy);
    let client;
    try {
      const olds = server.workers();
      client = await startClient({
        port: server.port,
        connections: ctx.connections,
        pin: ctx.pin.loader,
        warmup: ctx.quick ? 500 : 1000,
      });
      await sleep(ctx.quick ? 800 : 1000);
      server.send('upgrade');
      const start = await server.waitFor('upgrade-start', undefined, 5000);
      const end = await Promise.race([
        server.waitFor('upgraded', undefined, 60_000),
        server.waitFor('upgrade-failed', undefined, 60_000),
      ]);
      let lastGone = end.t;
      let masterExit = null;
      if (end.ev === 'upgraded') {
        const gone = [];
        for (const pid of olds) gone.push(await server.waitFor('died', (e) => e.args[0] === pid, 30_000));
        lastGone = Math.max(...gone.map((e) => e.t));
        masterExit = await server.exited;
      }
      await sleep(ctx.quick ? 400 : 700);
      const r = await client.stop();
      client = null;
      return {
        active: server.active,
        outcome: end.ev === 'upgraded' ? 'ok' : `failed: ${end.args[0]}`,
        oldMasterExit: masterExit ? masterExit.t - start.t : null,
        oldMasterCode: masterExit ? masterExit.code : null,
        ...reloadFigures(r, olds, server.workers(), start.t, end.t, lastGone, lastGone),
      };
    } finally {
      if (client) await client.stop().catch(() => {});
      await server.stop();
    }
  },
};
