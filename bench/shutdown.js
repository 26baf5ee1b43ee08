'use strict';
// Scenario 4, graceful shutdown under load: keep-alive clients whose requests
// take 200 ms, SIGTERM to the master. Measured: signal to master exit, its exit
// code, the requests in flight at the signal and how many of those failed,
// what happened to requests sent after the signal, and workers left behind.
const { startClient, sleep } = require('./closed-loop');
const { now } = require('./apps/clock');
const { alive, STEADY_ONLY } = require('./servers');

const SLOW_MS = 200;

/**
 * The client's recorded requests ([sent, answered, error | null]) around the moment `sig`:
 * those in flight then and how many of them failed, those sent after it.
 */
function inflightFigures(reqs, sig, exitT) {
  const inflight = reqs.filter((q) => q[0] < sig && q[1] > sig);
  const inflightFailed = inflight.filter((q) => q[2] !== null);
  const lastInflightEnd = inflight.length ? Math.max(...inflight.map((q) => q[1])) : sig;
  const after = reqs.filter((q) => q[0] >= sig);
  const afterErrors = {};
  for (const q of after) if (q[2] !== null) afterErrors[q[2]] = (afterErrors[q[2]] || 0) + 1;
  const inflightErrors = {};
  for (const q of inflightFailed) inflightErrors[q[2]] = (inflightErrors[q[2]] || 0) + 1;
  return {
    lastInflightToExit: exitT != null ? exitT - lastInflightEnd : null,
    inflight: inflight.length,
    failed: inflightFailed.length,
    errors: inflightErrors,
    afterSignal: {
      ok: after.filter((q) => q[2] === null).length,
      failed: after.length - after.filter((q) => q[2] === null).length,
      errors: afterErrors,
    },
  };
}

module.exports = {
  inflightFigures,
  SLOW_MS,
  name: 'shutdown',
  title: 'Shutdown under load (200 ms requests)',
  applies: (s) => s !== 'reference' && !STEADY_ONLY.includes(s),
  async run(strategy, ctx) {
    const server = await ctx.start(strategy);
    let client;
    try {
      client = await startClient({
        port: server.port,
        connections: ctx.connections,
        path: `/slow?ms=${SLOW_MS}`,
        record: true,
        pin: ctx.pin.loader,
      });
      await sleep(ctx.quick ? 500 : 700);
      const workers = server.workers();
      const sig = now();
      process.kill(server.pid, 'SIGTERM');
      const exit = await Promise.race([server.exited, sleep(40_000).then(() => null)]);
      await sleep(50);
      const r = await client.stop();
      client = null;
      return {
        active: server.active,
        signalToExit: exit ? exit.t - sig : null,
        exitCode: exit ? exit.code : 'still running after 40 s',
        ...inflightFigures(r.requests, sig, exit ? exit.t : null),
        leftBehind: workers.filter(alive).length,
      };
    } finally {
      if (client) await client.stop().catch(() => {});
      await server.stop();
    }
  },
};
