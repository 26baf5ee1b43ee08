'use strict';
// Start and stop the servers under test, one strategy at a time:
//   single, round-robin, shared, reuseport, reuseport-node: bench/apps/cluster.js (a cluster2 master);
//   defaults: the same app with no tuning (port, host and workers only: what a user runs);
//   threshold-10000: defaults plus connThreshold: 10000 (the original's default), steady load only;
//   reference: N independent bench/apps/reference.js processes on one port, no master.
// Every process started here is killed by pid in stop(), even after a failure.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { now, clockOffset } = require('./apps/clock');

const APPS = path.join(__dirname, 'apps');
const HOST = '127.0.0.1';

/**
 * Until a cluster2 server has its spare (forked once the machine is quiet after
 * the start, within 5 s) and the spare is idle (booted, and its JIT warm-up
 * done: no CPU used over SETTLED_MS), as a cluster that has run for a while
 * has; at once without a spare (--no-spare, or not cluster2).
 */
async function spareForked(server, ctx) {
  if (!ctx.spare || server.kind !== 'cluster' || server.strategy === 'single') return;
  const pid = (await server.waitFor('spare', undefined, 30_000)).args[0];
  const { cpuSeconds } = require('./procstat');
  const deadline = Date.now() + 10_000;
  let last = cpuSeconds(pid);
  let still = 0;
  while (still < SETTLED_MS && last !== null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const now = cpuSeconds(pid);
    still = now === last ? still + 50 : 0;
    last = now;
  }
}
/** A spare that used no CPU for this long has booted and warmed up. */
const SETTLED_MS = 300;

/** Every strategy (row) the bench knows, in table order. */
const STRATEGIES = [
  'defaults',
  'threshold-10000',
  'single',
  'round-robin',
  'shared',
  'reuseport',
  'reuseport-node',
  'reference',
];
/** Rows measured under the steady load only (they differ from defaults in the accept path alone). */
const STEADY_ONLY = ['threshold-10000'];
/** The connThreshold of the threshold-10000 row. */
const THRESHOLD = 10000;

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function kill(pid, sig = 'SIGKILL') {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

async function until(fn, timeout, what) {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (fn()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A free port on loopback (the OS picks it; released before it is used). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: HOST, port: 0, exclusive: true }, () => {
      const { port } = /** @type {net.AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

/** @typedef {{ ev: string, args?: any[], t: number }} BenchEvent a line of bench/apps/cluster.js */

/**
 * A process that prints JSON lines {ev, args, t}: follow them, wait for them.
 * `argv` may start with a taskset prefix.
 * @param {string[]} argv
 * @param {NodeJS.ProcessEnv} env
 * @param {boolean} [detached]
 */
function follow(argv, env, detached = false) {
  const proc = spawn(argv[0], argv.slice(1), { env, stdio: ['pipe', 'pipe', 'pipe'], detached });
  /** @type {BenchEvent[]} */
  const events = [];
  const waiters = new Set();
  let stderr = '';
  proc.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      const e = { code, signal, t: now() };
      resolve(e);
      for (const w of waiters) w();
    });
  });
  proc.stdin.on('error', () => {});
  readline.createInterface({ input: proc.stdout }).on('line', (line) => {
    let e;
    try {
      e = JSON.parse(line);
    } catch {
      return;
    }
    if (!e || typeof e.ev !== 'string') return;
    events.push(e);
    for (const w of waiters) w();
  });
  /**
   * The first event `ev` (from the start) for which `pred` holds.
   * @param {string} ev
   * @param {(e: BenchEvent) => boolean} [pred]
   * @param {number} [timeout] ms
   * @returns {Promise<BenchEvent>}
   */
  function waitFor(ev, pred = () => true, timeout = 15_000) {
    return new Promise((resolve, reject) => {
      let i = 0;
      const check = () => {
        for (; i < events.length; i++) {
          if (events[i].ev === ev && pred(events[i])) {
            done();
            return resolve(events[i]);
          }
        }
        if (proc.exitCode !== null || proc.signalCode !== null) {
          done();
          reject(
            new Error(
              `process exited (${proc.exitCode ?? proc.signalCode}) before event ${ev}; stderr: ${stderr.trim().slice(-500)}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${ev} event within ${timeout} ms; stderr: ${stderr.trim().slice(-500)}`));
      }, timeout);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });
  }
  return { proc, events, waitFor, exited, stderr: () => stderr };
}

/** The environment of the servers under test: NODE_EXTRA_CA_CERTS removed (it adds ~35 ms to each Node 20 start). */
function serverEnv(extra = {}) {
  /** @type {NodeJS.ProcessEnv} */
  const env = { ...process.env, BENCH_CLOCK_OFFSET: String(clockOffset()), ...extra };
  delete env.NODE_EXTRA_CA_CERTS;
  return env;
}

/** cluster2 options and environment for a strategy. */
function clusterSetup(strategy, o) {
  const pids = fs.mkdtempSync(path.join(os.tmpdir(), 'c2bench-'));
  const opts = { port: o.port ?? 0, host: HOST, monPort: false, pids, noWorkers: o.workers, ...o.options };
  const env = {};
  switch (strategy) {
    case 'defaults':
      break;
    case 'threshold-10000':
      opts.connThreshold = THRESHOLD;
      break;
    case 'single':
      opts.cluster = false;
      break;
    case 'round-robin':
    case 'shared':
      opts.strategy = strategy;
      break;
    case 'reuseport':
      opts.strategy = 'reuseport';
      break;
    // cluster2 uses Node's own reusePort when the addon is off (Node >= 22.12).
    case 'reuseport-node':
      opts.strategy = 'reuseport';
      env.CLUSTER2_NATIVE = '0';
      break;
    default:
      throw new Error(`not a cluster2 strategy: ${strategy}`);
  }
  return { opts, env, pids };
}

/**
 * Spawn the cluster2 app for a strategy and (unless `wait` is false) wait until
 * every worker listens. Returns a handle; stop() kills everything by pid.
 */
async function startCluster(strategy, o) {
  const { opts, env, pids } = clusterSetup(strategy, o);
  const argv = [...(o.pin || []), o.runtime || process.execPath, path.join(APPS, 'cluster.js')];
  const t0 = now();
  const f = follow(argv, serverEnv({ ...env, ...o.env, BENCH_OPTS: JSON.stringify(opts) }));
  const seen = new Set([f.proc.pid]);
  const dead = new Set();
  const spares = new Set();
  const track = () => {
    for (const e of f.events) {
      if (e.ev === 'forked') seen.add(e.args[0]);
      if (e.ev === 'spare') spares.add(e.args[0]);
      if (e.ev === 'died') dead.add(e.args[0]);
    }
  };
  const s = {
    strategy,
    kind: 'cluster',
    pid: f.proc.pid,
    proc: f.proc,
    events: f.events,
    waitFor: f.waitFor,
    exited: f.exited,
    stderr: f.stderr,
    t0,
    port: 0,
    active: strategy,
    /** Pids of the workers alive now (the master itself with cluster: false). */
    workers() {
      if (strategy === 'single') return f.proc.exitCode === null ? [f.proc.pid] : [];
      track();
      return [...seen].filter((p) => p !== f.proc.pid && !dead.has(p));
    },
    send(line) {
      f.proc.stdin.write(`${line}\n`);
    },
    async stop() {
      track();
      const all = [...seen, ...spares];
      try {
        for (const file of fs.readdirSync(pids)) {
          const m = /^(?:master|worker)\.(\d+)\.pid$/.exec(file);
          if (m) all.push(Number(m[1]));
        }
      } catch {
        /* gone */
      }
      for (const pid of all) kill(pid);
      await until(() => all.every((p) => !alive(p)), 5000, 'the servers to die').catch(() => {});
      fs.rmSync(pids, { recursive: true, force: true });
    },
  };
  if (o.wait === false) return s;
  try {
    if (strategy === 'single') {
      const l = await f.waitFor('listening');
      s.port = l.args[1].port;
    } else {
      const st = await f.waitFor('strategy');
      s.active = st.args[0];
      s.port = st.args[1];
      let n = 0;
      await f.waitFor('listening', () => ++n >= o.workers, o.timeout);
    }
  } catch (e) {
    await s.stop();
    throw e;
  }
  s.ready = now();
  return s;
}

/** N independent SO_REUSEPORT processes, no master. */
async function startReference(o) {
  const port = o.port || (await freePort());
  const how = o.reusePortHow; // 'native' or 'node'
  const procs = [];
  const s = {
    strategy: 'reference',
    kind: 'reference',
    pid: null,
    port,
    active: 'reference',
    how: how === 'native' ? 'SO_REUSEPORT sockets from the addon' : "SO_REUSEPORT sockets from Node's reusePort option",
    procs,
    // The pid that serves: the process itself, or under Bun its one node:cluster worker (bench/apps/reference.js).
    workers: () =>
      procs
        .filter((f) => f.proc.exitCode === null && f.proc.signalCode === null)
        .map((f) => f.events.find((e) => e.ev === 'listening')?.args?.[0] ?? f.proc.pid),
    async stop() {
      const all = procs.map((f) => f.proc.pid);
      for (const pid of all) kill(pid);
      await until(() => all.every((p) => !alive(p)), 5000, 'the reference servers to die').catch(() => {});
    },
  };
  for (let i = 0; i < o.workers; i++) {
    const argv = [...(o.pin || []), o.runtime || process.execPath, path.join(APPS, 'reference.js')];
    // Each in a session of its own, as cluster2 forks its workers (detached: lib/shared/process-group.ts).
    // With the kernel's autogroup scheduling (sched_autogroup_enabled, the default on desktops
    // and many servers) a session is a scheduling group: servers in the bench's session share
    // one group's CPU with the load generator, a worker in its own gets a share of its own.
    // Side by side on one busy machine that alone made the reference serve 1.5-6x the
    // requests of a cluster2 worker, at 0.6-0.95x its CPU per request.
    procs.push(follow(argv, serverEnv({ BENCH_PORT: String(port), BENCH_HOST: HOST, BENCH_REUSEPORT: how }), true));
  }
  if (o.wait === false) return s;
  try {
    await Promise.all(procs.map((f) => f.waitFor('listening')));
  } catch (e) {
    await s.stop();
    throw e;
  }
  return s;
}

function startServer(strategy, o) {
  return strategy === 'reference' ? startReference(o) : startCluster(strategy, o);
}

module.exports = {
  spareForked,
  STRATEGIES,
  STEADY_ONLY,
  HOST,
  startServer,
  startCluster,
  startReference,
  freePort,
  serverEnv,
  alive,
  kill,
  until,
  follow,
  APPS,
};
