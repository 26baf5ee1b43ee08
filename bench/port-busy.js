'use strict';
// Scenario 5, the port is taken: start the servers on a port this process
// holds; measured: time from spawn to exit, and the exit code.
const net = require('node:net');
const { now } = require('./apps/clock');
const { HOST, freePort, STEADY_ONLY } = require('./servers');

const GIVE_UP_MS = 10_000;

function hold(port) {
  return new Promise((resolve, reject) => {
    const s = net.createServer((c) => c.destroy());
    s.once('error', reject);
    s.listen({ host: HOST, port, exclusive: true }, () => resolve(s));
  });
}

module.exports = {
  hold,
  name: 'port-busy',
  title: 'Port busy',
  applies: (s) => !STEADY_ONLY.includes(s),
  async run(strategy, ctx) {
    const port = await freePort();
    const holder = await hold(port);
    const t0 = now();
    const server = await ctx.start(strategy, { port, wait: false });
    try {
      const procs = server.kind === 'reference' ? server.procs : [{ exited: server.exited, stderr: server.stderr }];
      const exits = await Promise.all(
        procs.map((p) => Promise.race([p.exited, new Promise((r) => setTimeout(() => r(null), GIVE_UP_MS))])),
      );
      const stuck = exits.some((e) => e === null);
      const last = stuck ? null : Math.max(...exits.map((e) => e.t));
      const codes = [...new Set(exits.map((e) => (e ? (e.code ?? e.signal) : 'running')))];
      const lines = (procs[0].stderr() || '').split('\n').filter((l) => l.trim());
      const firstLine = lines.find((l) => /busy|EADDRINUSE|Error/i.test(l)) || lines[0] || '';
      return {
        active: server.active,
        timeToExit: stuck ? null : last - t0,
        exitCode: codes.length === 1 ? codes[0] : codes.join(','),
        exited: !stuck,
        message: firstLine.slice(0, 200),
      };
    } finally {
      await server.stop();
      holder.close();
    }
  },
};
