'use strict';
// Scenario "sizes": the cluster a user runs (the defaults row) at each number
// of workers of --workers (default 2, 8, 32): start (spawn to every worker
// listening), a rolling reload under keep-alive load (wall time, failed
// requests, replacements at once), shutdown (SIGTERM to exit), and the
// master's CPU (idle, and during the reload) and RSS (after start, and its peak).
const fs = require('node:fs');
const { startClient, sleep } = require('./closed-loop');
const { cpuSeconds } = require('./procstat');
const { reloadConcurrencyFor } = require('../dist/shared/options');
const { spareForked } = require('./servers');

const IDLE_MS = 1000;

/** VmRSS or VmHWM (the peak) of a process, in MB; null when it is gone. */
function memMb(pid, field = 'VmRSS') {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : null;
  } catch {
    return null;
  }
}

/** One size: start, idle, reload under load, shutdown. */
async function one(strategy, ctx, n) {
  // A 32-worker start on 2 busy cores takes seconds: generous waits.
  const server = await ctx.start(strategy, { workers: n, timeout: 120_000 });
  let client;
  try {
    const start = server.ready - server.t0;
    await spareForked(server, ctx);
    await sleep(300);
    const rss = memMb(server.pid);
    const c0 = cpuSeconds(server.pid);
    await sleep(IDLE_MS);
    const idleCpu = (cpuSeconds(server.pid) - c0) / (IDLE_MS / 1000);
    client = await startClient({ port: server.port, connections: ctx.connections, pin: ctx.pin.loader, warmup: 300 });
    await sleep(500);
    const olds = server.workers();
    const c1 = cpuSeconds(server.pid);
    server.send('reload');
    const s = await server.waitFor('reload-start', undefined, 5000);
    const end = await Promise.race([
      server.waitFor('reloaded', undefined, 180_000),
      server.waitFor('reload-failed', undefined, 180_000),
    ]);
    const reloadCpu = (cpuSeconds(server.pid) - c1) / ((end.t - s.t) / 1000);
    for (const pid of olds) await server.waitFor('died', (e) => e.args[0] === pid, 60_000);
    await sleep(300);
    const r = await client.stop();
    client = null;
    const rssPeak = memMb(server.pid, 'VmHWM');
    const t = Date.now();
    process.kill(server.pid, 'SIGTERM');
    const exit = await Promise.race([server.exited, sleep(60_000).then(() => null)]);
    return {
      workers: n,
      concurrency: reloadConcurrencyFor({ reloadConcurrency: 0 }, n),
      start,
      reload: end.ev === 'reloaded' ? end.t - s.t : null,
      outcome: end.ev === 'reloaded' ? 'ok' : `failed: ${end.args[0]}`,
      failed: r.failed,
      errors: r.errors,
      shutdown: exit ? Date.now() - t : null,
      exitCode: exit ? exit.code : 'still running after 60 s',
      idleCpu,
      reloadCpu,
      rss,
      rssPeak,
    };
  } finally {
    if (client) await client.stop().catch(() => {});
    await server.stop();
  }
}

module.exports = {
  name: 'sizes',
  title: 'Start, reload and shutdown by number of workers',
  applies: (s) => s === 'defaults',
  async run(strategy, ctx) {
    const bySize = {};
    for (const n of ctx.sizes) bySize[n] = await one(strategy, ctx, n);
    return { bySize };
  },
};
