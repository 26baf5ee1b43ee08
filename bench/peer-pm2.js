'use strict';
// The PM2 peer (`--peer pm2`): PM2 cluster mode (`-i <workers>`) of the same
// bench app handler (bench/apps/pm2-app.js), run through the same scenarios,
// with the same load clients and the same counting as cluster2's strategies.
// pm2 is not a dependency: found through PM2_BIN, node_modules/.bin or PATH
// (bench/env.js). Isolated: a temporary PM2_HOME for the whole bench run, and
// close() (`pm2 kill`, then SIGKILL by pid for anything left) at the end,
// also on error and interrupt. The triggers, by scenario:
//   steady     the same loads as the strategies;
//   reload     `pm2 reload <name>`: wall time until the command returns;
//   shutdown   `pm2 stop <name>` with 200 ms requests in flight;
//   recycle    `pm2 reload <id>` of one instance (max_memory_restart is only
//              checked every 30 s by PM2's worker, not a trigger one can time);
//   port-busy  `pm2 start` on a port this process holds.
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { now } = require('./apps/clock');
const { HOST, APPS, freePort, serverEnv, alive, kill, until } = require('./servers');
const { startClient, warmUp, sleep } = require('./closed-loop');
const { bareFork } = require('./bare-fork');
const { measure } = require('./steady');
const { replaceUnderLoad } = require('./replacement');
const { inflightFigures, SLOW_MS } = require('./shutdown');
const { hold } = require('./port-busy');
const { against } = require('./recycle');

const NAME = 'c2bench';

const NOTES = [
  "pm2: PM2 cluster mode (`pm2 start -i <workers>`, node:cluster round-robin in PM2's daemon) of bench/apps/pm2-app.js: the same handler; on SIGINT it answers its requests in flight with `Connection: close` and exits once its server is closed, like a cluster2 worker. Its own PM2_HOME, killed at the end. Not part of the targets.",
  "pm2 times include the pm2 command's own start (a Node process that talks to the daemon): reload wall = `pm2 reload` spawned to returned; shutdown = `pm2 stop` spawned to returned; port busy = `pm2 start` spawned to returned. The master CPU of the steady loads is PM2's daemon.",
  'pm2 recycle: `pm2 reload <id>` of one instance; PM2\'s only automatic trigger, max_memory_restart, is checked every 30 s (worker_interval) and cannot be timed cleanly. No "forked" moment is visible from outside PM2 (n/a).',
];

/** Run a pm2 command; resolves with { code, out, t0, t1 } (t: the shared clock). */
function command(peer, args, timeout = 30_000) {
  return new Promise((resolve) => {
    const t0 = now();
    const p = spawn(peer.argv[0], [...peer.argv.slice(1), ...args], {
      env: peer.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      out += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeout);
    p.on('error', (e) => {
      out += String(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, out, t0, t1: now() });
    });
  });
}

async function must(peer, args) {
  const r = await command(peer, args);
  if (r.code !== 0)
    throw new Error(`pm2 ${args.join(' ')} exited ${r.code}: ${r.out.trim().split('\n').slice(-3).join(' / ')}`);
  return r;
}

/** The boot events the app instances appended to the events file: [{pid, t, loaded, listening}]. */
function boots(file) {
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out = [];
  for (const line of text.split('\n')) {
    try {
      const e = JSON.parse(line);
      out.push({ pid: e.args[0], loaded: e.args[1], listening: e.args[2], t: e.t });
    } catch {
      /* partial line */
    }
  }
  return out;
}

/** Resolves with the moment (shared clock) each pid was seen dead, polling every 5 ms. */
function watchGone(pids, timeout = 15_000) {
  const gone = {};
  return new Promise((resolve) => {
    const deadline = Date.now() + timeout;
    const tick = () => {
      for (const p of pids) if (gone[p] === undefined && !alive(p)) gone[p] = now();
      if (pids.every((p) => gone[p] !== undefined) || Date.now() > deadline) return resolve(gone);
      setTimeout(tick, 5);
    };
    tick();
  });
}

/** Start the app in PM2 cluster mode; unless `wait` is false, wait until every instance listens. */
async function start(peer, ctx, o = {}) {
  const port = o.port || (await freePort());
  const events = path.join(peer.home, `events.${++peer.seq}.jsonl`);
  const config = path.join(peer.home, `app.${peer.seq}.json`);
  fs.writeFileSync(
    config,
    JSON.stringify({
      apps: [
        {
          name: NAME,
          script: path.join(APPS, 'pm2-app.js'),
          exec_mode: 'cluster',
          instances: ctx.workers,
          env: { PORT: String(port), BENCH_HOST: HOST, BENCH_EVENTS: events },
        },
      ],
    }),
  );
  const s = {
    strategy: 'pm2',
    kind: 'peer',
    pid: peer.daemonPid(),
    port,
    events,
    /** Pids of the instances that listened and are alive now. */
    workers: () => [...new Set(boots(events).map((b) => b.pid))].filter(alive),
    boots: () => boots(events),
    async stop() {
      const seen = boots(events).map((b) => b.pid);
      for (const p of seen) peer.pids.add(p);
      await command(peer, ['delete', NAME], 15_000);
      for (const p of seen) kill(p);
      await until(() => seen.every((p) => !alive(p)), 5000, 'the pm2 instances to die').catch(() => {});
    },
  };
  s.started = await command(peer, ['start', config]);
  if (o.wait === false) return s;
  try {
    if (s.started.code !== 0)
      throw new Error(`pm2 start exited ${s.started.code}: ${s.started.out.trim().split('\n').slice(-3).join(' / ')}`);
    await until(() => s.workers().length >= ctx.workers, 15_000, `${ctx.workers} pm2 instances to listen`);
    s.pid = peer.daemonPid();
  } catch (e) {
    await s.stop();
    throw e;
  }
  return s;
}

/** pm_id of each instance pid, from `pm2 jlist`. */
async function ids(peer) {
  const r = await must(peer, ['jlist']);
  const list = JSON.parse(r.out.slice(r.out.indexOf('[')));
  return Object.fromEntries(list.filter((p) => p.name === NAME).map((p) => [p.pid, p.pm_id]));
}

const SCENARIOS = {
  async steady(peer, ctx) {
    const server = await start(peer, ctx);
    try {
      await warmUp(server.port, ctx.quick ? 200 : 500);
      return { keepalive: await measure(server, ctx, false), close: await measure(server, ctx, true) };
    } finally {
      await server.stop();
    }
  },

  async reload(peer, ctx) {
    const server = await start(peer, ctx);
    return replaceUnderLoad(server, ctx, { settle: ctx.quick ? 400 : 700 }, async (olds) => {
      const goneP = watchGone(olds);
      const cmd = await command(peer, ['reload', NAME]);
      const gone = await goneP;
      const lastGone = Math.max(...olds.map((p) => gone[p] ?? now()));
      return {
        t0: cmd.t0,
        t1: cmd.t1,
        lastGone,
        dipEnd: Math.max(lastGone, cmd.t1),
        extra: { outcome: cmd.code === 0 ? 'ok' : `failed: pm2 reload exited ${cmd.code}` },
      };
    });
  },

  async shutdown(peer, ctx) {
    const server = await start(peer, ctx);
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
      const cmd = await command(peer, ['stop', NAME]);
      const leftBehind = workers.filter(alive).length;
      await watchGone(workers, 5000);
      await sleep(50);
      const r = await client.stop();
      client = null;
      return {
        signalToExit: cmd.t1 - cmd.t0,
        exitCode: cmd.code,
        ...inflightFigures(r.requests, cmd.t0, cmd.t1),
        leftBehind,
      };
    } finally {
      if (client) await client.stop().catch(() => {});
      await server.stop();
    }
  },

  async recycle(peer, ctx) {
    const server = await start(peer, ctx);
    let client;
    try {
      const byPid = await ids(peer);
      client = await startClient({ port: server.port, connections: ctx.connections, pin: ctx.pin.loader });
      await sleep(ctx.quick ? 400 : 700);
      const bare = await bareFork(ctx.pin.server);
      await sleep(150);
      const old = server.workers()[0];
      const before = new Set(server.boots().map((b) => b.pid));
      const goneP = watchGone([old]);
      const cmd = await command(peer, ['reload', String(byPid[old])]);
      if (cmd.code !== 0) throw new Error(`pm2 reload ${byPid[old]} exited ${cmd.code}`);
      await until(() => server.boots().some((b) => !before.has(b.pid)), 10_000, 'the replacement to listen');
      const neo = server.boots().find((b) => !before.has(b.pid));
      const gone = (await goneP)[old];
      await sleep(ctx.quick ? 300 : 500);
      const r = await client.stop();
      client = null;
      return {
        reason: `pm2 reload ${byPid[old]}`,
        triggerToForked: null,
        forkedToListening: null,
        triggerToListening: neo.t - cmd.t0,
        triggerToGone: gone !== undefined ? gone - cmd.t0 : null,
        commandWall: cmd.t1 - cmd.t0,
        ...against(bare, neo.t - cmd.t0, [neo.pid, neo.loaded, neo.listening], r),
      };
    } finally {
      if (client) await client.stop().catch(() => {});
      await server.stop();
    }
  },

  async 'port-busy'(peer, ctx) {
    const port = await freePort();
    const holder = await hold(port);
    let server;
    try {
      server = await start(peer, ctx, { port, wait: false });
      const r = server.started;
      const lines = r.out.split('\n').filter((l) => l.trim());
      const first = lines.find((l) => /busy|EADDRINUSE|error/i.test(l));
      return {
        timeToExit: r.t1 - r.t0,
        exitCode: r.code,
        exited: true,
        message: (first || `(pm2 start printed no error; ${lines.length} lines)`).trim().slice(0, 200),
      };
    } finally {
      if (server) await server.stop();
      holder.close();
    }
  },
};

/**
 * Open the peer for a bench run: a temporary PM2_HOME and its daemon.
 * Returns { name, version, notes, run(scenario, ctx), close() }.
 */
function open(bin, pin = []) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'c2bench-pm2-'));
  const peer = {
    name: 'pm2',
    bin,
    home,
    seq: 0,
    pids: new Set(),
    argv: [...pin, bin],
    env: serverEnv({ PM2_HOME: home }),
    daemonPid() {
      try {
        return Number(fs.readFileSync(path.join(home, 'pm2.pid'), 'utf8').trim()) || null;
      } catch {
        return null;
      }
    },
    applies: (scenario) => scenario in SCENARIOS,
    run: (scenario, ctx) => SCENARIOS[scenario](peer, ctx),
    closed: false,
    /** Synchronous, so it can run on exit: pm2 kill, then SIGKILL by pid, then the PM2_HOME removed. */
    close() {
      if (peer.closed) return;
      peer.closed = true;
      const daemon = peer.daemonPid();
      for (const f of fs.readdirSync(home).filter((x) => x.startsWith('events.'))) {
        for (const b of boots(path.join(home, f))) peer.pids.add(b.pid);
      }
      spawnSync(peer.argv[0], [...peer.argv.slice(1), 'kill'], { env: peer.env, stdio: 'ignore', timeout: 15_000 });
      for (const p of [daemon, ...peer.pids]) if (p) kill(p);
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
  const v = spawnSync(peer.argv[0], [...peer.argv.slice(1), '--version'], {
    env: peer.env,
    encoding: 'utf8',
    timeout: 30_000,
  });
  peer.version = (`${v.stdout || ''}`.trim().split('\n').pop() || '').trim() || 'unknown';
  // The daemon, started by the first command (pinned with the servers when they are): every app process is its child.
  const d = spawnSync(peer.argv[0], [...peer.argv.slice(1), 'ping'], {
    env: peer.env,
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (v.status !== 0 || d.status !== 0) {
    peer.close();
    throw new Error(
      `${bin}: --version exited ${v.status}, ping exited ${d.status}: ${`${v.stderr || ''}${d.stderr || ''}`.trim().slice(0, 200)}`,
    );
  }
  peer.notes = NOTES;
  return peer;
}

module.exports = { open, NAME };
