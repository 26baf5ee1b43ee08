'use strict';
// Scenario shutdown-burst: N new connections fired at once, SIGTERM to the
// master right after (the next turn of the client's loop, once every connect is
// issued). Each connection ends answered, refused (ECONNREFUSED: it arrived once
// the listeners stopped taking handshakes) or reset (ECONNRESET / socket hang up:
// the kernel had completed it, then it was dropped). Target: 0 reset.
const { burst } = require('./burst');
const { now } = require('./apps/clock');
const { sleep } = require('./closed-loop');
const { HOST } = require('./servers');

/** New connections per run; the app answers each after APP_MS. */
const BURST = 600;
const APP_MS = 20;

module.exports = {
  BURST,
  name: 'shutdown-burst',
  title: `Shutdown with ${BURST} new connections fired at the signal`,
  applies: (s) => s !== 'reference',
  async run(strategy, ctx) {
    // connThreshold off: no recycle meets the burst.
    const server = await ctx.start(strategy, { options: { connThreshold: 0 } });
    try {
      const b = burst(server.port, BURST, `/slow?ms=${APP_MS}`, HOST);
      await new Promise((r) => setImmediate(r));
      const sig = now();
      process.kill(server.pid, 'SIGTERM');
      const [r, exit] = await Promise.all([b.done, Promise.race([server.exited, sleep(60_000).then(() => null)])]);
      return {
        active: server.active,
        answered: r.answered,
        refused: r.refused,
        // What the client cannot tell from "the request may have run".
        reset: r.reset + r.hangup,
        failed: r.reset + r.hangup,
        errors: {
          ...(r.reset ? { ECONNRESET: r.reset } : {}),
          ...(r.hangup ? { 'socket hang up': r.hangup } : {}),
          ...r.other,
        },
        signalToExit: exit ? exit.t - sig : null,
        exitCode: exit ? exit.code : 'still running after 60 s',
      };
    } finally {
      await server.stop();
    }
  },
};
