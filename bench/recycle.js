'use strict';
// Scenario 2, recycle one worker under keep-alive load. The trigger: the bench
// app's worker, on SIGUSR2, sends its master the same IPC message the worker
// runtime sends when maxRequests is reached (bench/apps/cluster.js), and prints
// the moment it did. Measured: trigger -> replacement forked -> replacement
// listening -> old worker gone, the failed requests by kind, and, under the same
// load just before, a bare fork() of the same app to listening (the limit).
// With the spare (cluster2's default) the replacement is the spare process,
// booted before the trigger: "forked" is the moment it was handed the slot.
const { bareFork } = require('./bare-fork');
const { startClient, sleep } = require('./closed-loop');
const { latencies } = require('./stats');
const { STEADY_ONLY, spareForked } = require('./servers');

/**
 * The replacement against a bare fork, and the client's counts. `boot`: the
 * replacement's [pid, loaded, listening, appStart] on its own clock (from its
 * start), or null. bootLoaded / bootListening are counted from the start of
 * the app's code: for a replacement that was a spare, Node started long before.
 */
function against(bare, triggerToListening, boot, r) {
  const from = boot && boot[3] !== undefined ? boot[3] : 0;
  return {
    bareFork: bare.ms,
    overBare: triggerToListening - bare.ms,
    bootLoaded: boot ? boot[1] - from : null,
    bootListening: boot ? boot[2] - from : null,
    bareLoaded: bare.loaded,
    bareListening: bare.listening,
    ok: r.ok,
    failed: r.failed,
    errors: r.errors,
  };
}

module.exports = {
  against,
  name: 'recycle',
  title: 'Recycle one worker under load',
  applies: (s) => s !== 'single' && s !== 'reference' && !STEADY_ONLY.includes(s),
  async run(strategy, ctx) {
    const server = await ctx.start(strategy);
    let client;
    try {
      await spareForked(server, ctx);
      client = await startClient({
        port: server.port,
        connections: ctx.connections,
        pin: ctx.pin.loader,
        record: true,
      });
      await sleep(ctx.quick ? 400 : 700);
      const bare = await bareFork(ctx.pin.server);
      await sleep(150);
      const old = server.workers()[0];
      process.kill(old, 'SIGUSR2');
      const trig = await server.waitFor('trigger', (e) => e.args[0] === old, 5000);
      const rec = await server.waitFor('recycled', (e) => e.args[0] === old, 10_000);
      const neo = rec.args[1];
      const forked = await server.waitFor('forked', (e) => e.args[0] === neo, 1000);
      const listening = await server.waitFor('listening', (e) => e.args[0] === neo, 1000);
      const gone = await server.waitFor('died', (e) => e.args[0] === old, 10_000);
      const boot = await server.waitFor('boot', (e) => e.args[0] === neo, 2000).catch(() => null);
      const spare = server.events.find((e) => e.ev === 'spare' && e.args[0] === neo);
      await sleep(ctx.quick ? 300 : 500);
      const r = await client.stop();
      client = null;
      // Requests sent from the trigger to the old worker gone.
      const lat = latencies(r.requests, trig.t, gone.t);
      return {
        active: server.active,
        reason: rec.args[2],
        latP50: lat.p50,
        latP99: lat.p99,
        latMax: lat.max,
        replacement: spare ? 'spare' : 'fork',
        spareAhead: spare ? trig.t - spare.t : null,
        triggerToForked: forked.t - trig.t,
        forkedToListening: listening.t - forked.t,
        triggerToListening: listening.t - trig.t,
        triggerToGone: gone.t - trig.t,
        oldExitCode: gone.args[1],
        ...against(bare, listening.t - trig.t, boot && boot.args, r),
      };
    } finally {
      if (client) await client.stop().catch(() => {});
      await server.stop();
    }
  },
};
