'use strict';
// Scenario 1, steady load: requests/s, p50/p99 latency, each worker's share,
// errors, and where the CPU went (master, workers, the load generator itself);
// once with keep-alive, once with a new connection per request (the accept path).
const { runLoad } = require('./loaders');
const { warmUp } = require('./closed-loop');
const { snapshot, diff, reapedSeconds } = require('./procstat');
const { HOST, spareForked } = require('./servers');
const { shares } = require('./stats');

const MODES = ['keepalive', 'close'];

async function measure(server, ctx, close) {
  const pids = [server.pid, ...server.workers()].filter((p) => p);
  const before = snapshot(pids);
  // Workers replaced during the load (connThreshold): their CPU is found in the master's
  // reaped-children time once they exit, and their replacements' as new pids.
  const master = server.pid && server.strategy !== 'single' ? server.pid : null;
  const reaped0 = master ? reapedSeconds(master) : null;
  const r = await runLoad(ctx.loader, {
    host: HOST,
    port: server.port,
    connections: ctx.connections,
    duration: ctx.duration,
    close,
    pin: ctx.pin.loader,
  });
  const now = [...new Set([...pids, ...server.workers()])];
  const after = snapshot(now);
  const cpu = diff(before, after);
  // Born during the load: all of their CPU time is the load's.
  for (const pid of now) if (!(pid in before) && after[pid] != null) cpu[pid] = after[pid];
  const reaped1 = master ? reapedSeconds(master) : null;
  if (reaped0 != null && reaped1 != null) {
    // Gone during the load: what they had used before it started is not the load's.
    let gone = reaped1 - reaped0;
    for (const pid of pids) if (pid !== master && before[pid] != null && after[pid] == null) gone -= before[pid];
    if (gone > 0) cpu.reaped = Math.round(gone * 100) / 100;
  }
  const secs = ctx.duration;
  const masterCpu =
    server.pid && server.strategy !== 'single' && cpu[server.pid] != null ? cpu[server.pid] / secs : null;
  let workersCpu = 0;
  for (const [pid, s] of Object.entries(cpu))
    if (Number(pid) !== server.pid || server.strategy === 'single') workersCpu += s;
  // CPU time per request holds far better than req/s on a machine that is busy with something else.
  const serverSeconds = Object.values(cpu).reduce((a, b) => a + b, 0);
  const cpuPerRequest = r.requests ? (serverSeconds * 1e6) / r.requests : null;
  // More pids than workers: a worker was replaced during the load (its CPU is counted: above).
  const replaced = Math.max(0, Object.keys(r.byPid).length - (server.strategy === 'single' ? 1 : ctx.workers));
  return { ...r, shares: shares(r.byPid), masterCpu, workersCpu: workersCpu / secs, cpuPerRequest, replaced };
}

module.exports = {
  measure,
  name: 'steady',
  title: 'Steady load',
  applies: () => true,
  modes: MODES,
  async run(strategy, ctx) {
    // The options as a user leaves them (connThreshold is off by default; the
    // threshold-10000 row sets the original's 10,000).
    const server = await ctx.start(strategy);
    try {
      // A cluster that has run for a while has its spare: without this wait,
      // the spare (forked at most 5 s after the start when the load never lets
      // up) booted inside the measured loads, on the cores that serve them.
      await spareForked(server, ctx);
      await warmUp(server.port, ctx.quick ? 200 : 500);
      const out = { active: server.active };
      out.keepalive = await measure(server, ctx, false);
      out.close = await measure(server, ctx, true);
      return out;
    } finally {
      await server.stop();
    }
  },
};
