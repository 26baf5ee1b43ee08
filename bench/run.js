#!/usr/bin/env node
'use strict';
// npm run bench: every strategy side by side, under load, failures counted.
// See `node bench/run.js --help`. Requires the compiled package (npm run compile).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
if (!fs.existsSync(path.join(ROOT, 'dist', 'cjs.js'))) {
  process.stderr.write('bench: dist/ is missing; run `npm run compile` first\n');
  process.exit(2);
}

const { parse, USAGE } = require('./args');
const { collect, serverRuntime } = require('./env');
const { startServer } = require('./servers');
const { bareFork } = require('./bare-fork');
const { summarize } = require('./summarize');
const { machineTicks, stealShare } = require('./procstat');
const { check } = require('./targets');
const { tables, renderText } = require('./report');
const { summary } = require('./stats');
const { page } = require('./html');
const { stopAll, cleanup } = require('./loaders');
const { PEERS } = require('./summarize');
const { endWithMe } = require('./reap');

/** The open --peer (bench/peer-pm2.js), closed on every way out (its close() is synchronous). */
let peer = null;
process.on('exit', () => {
  if (peer) peer.close();
});

// For test/bench.test.ts: an uncaught error (thrown on SIGUSR2 here) must end everything too.
if (process.env.BENCH_TEST_UNCAUGHT === '1')
  process.on('SIGUSR2', () => {
    throw new Error('BENCH_TEST_UNCAUGHT');
  });

/** The servers running now (their stop() also removes their pids directory). */
const live = new Set();
/** Set once the bench is interrupted: nothing new is started from then on. */
let interrupted = false;
// SIGINT, SIGTERM, SIGHUP, an uncaught error, any exit: every process the bench started ends (bench/reap.js).
const guard = endWithMe({
  name: 'bench',
  onInterrupt() {
    interrupted = true;
    stopAll();
  },
  async cleanup() {
    cleanup();
    await Promise.all([...live].map((s) => s.stop().catch(() => {})));
    if (peer) peer.close();
  },
});

const SCENARIO_MODULES = {
  steady: require('./steady'),
  recycle: require('./recycle'),
  reload: require('./reload'),
  shutdown: require('./shutdown'),
  'port-busy': require('./port-busy'),
  sizes: require('./sizes'),
  'shutdown-burst': require('./shutdown-burst'),
  ...require('./long-lived'),
  upgrade: require('./upgrade'),
};

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

/** Which strategies can run here; the others get a note saying why not. */
function available(o, env, notes) {
  const out = [];
  for (const s of o.strategies) {
    if (s === 'reuseport-node' && !env.native.nodeHasReusePort) {
      notes.push(
        `reuseport-node skipped: Node ${process.version} has no reusePort option in net listen (it needs Node >= 22.12).`,
      );
      continue;
    }
    if (s === 'reference' && !env.native.addon && !env.native.nodeHasReusePort) {
      notes.push(
        "reference skipped: neither the native addon nor Node's reusePort option is available to make SO_REUSEPORT sockets.",
      );
      continue;
    }
    if ((s === 'reuseport' || s === 'reference' || s === 'reuseport-node') && process.platform !== 'linux') {
      notes.push(`${s} skipped: SO_REUSEPORT load balancing needs Linux.`);
      continue;
    }
    out.push(s);
  }
  if (o.strategies.includes('reuseport') && !env.native.addon) {
    notes.push(
      `reuseport: the native addon is not in use (${env.native.loadError || 'CLUSTER2_NATIVE=0'}); cluster2 falls back and the tables say what it ran as.`,
    );
  }
  return out;
}

async function main() {
  let o;
  try {
    o = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench: ${e.message}\n\n${USAGE}`);
    process.exit(64);
  }
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const env = collect(o);
  const notes = [];
  const runtime = serverRuntime(o.runtime);
  if (!runtime.exec) {
    process.stderr.write(`bench: ${runtime.error}\n`);
    process.exit(64);
  }
  env.meta.serverRuntime = runtime.label;
  if (runtime.name !== 'node' || o.runtime)
    notes.push(
      `servers under test on ${runtime.label} (${runtime.exec}); the bench, its load clients and the bare fork() stay on Node ${process.version}.` +
        (runtime.name === 'bun'
          ? " reference on Bun: each process a node:cluster primary with one worker, the only way Bun's http.Server shares a port (its own listener, SO_REUSEPORT); cluster2's workers accept through a net.Server that hands Bun's http.Server each connection (lib/worker/bridge.ts)."
          : ''),
    );
  if (o.loader === 'wrk' && !env.wrk) {
    process.stderr.write(
      'bench: --loader wrk: wrk is not installed (apt-get install wrk); the default loader is autocannon\n',
    );
    process.exit(64);
  }
  if (o.loader === 'autocannon' && !env.autocannon) {
    process.stderr.write('bench: autocannon is not installed (npm install); or use --loader wrk\n');
    process.exit(64);
  }
  // The load generator drives the steady loads; recycle, reload and shutdown use bench/client.js.
  const steady = o.scenarios.includes('steady');
  if (steady && o.loader === 'autocannon') {
    notes.push(
      "autocannon does one request per connection with reconnectRate 1 (the client closes), but then counts none of the responses itself; the bench counts responses, statuses and latencies from its clients' events instead. autocannon takes about a core at these rates: on 2 cores it limits the figures (see loader CPU).",
    );
    if (env.wrk)
      notes.push(
        'wrk is installed: --loader wrk uses less CPU for the same load and closes with `Connection: close` (the server closes), as the PEERS figures were measured.',
      );
  } else if (steady) {
    notes.push(
      'wrk: one thread; new connection per request with `-H "Connection: close"`; responses counted by pid in a Lua response() hook.',
    );
  }
  if (o.scenarios.includes('upgrade'))
    notes.push(
      "upgrade: c.upgrade() in the bench master (what `cluster2 upgrade` and SIGUSR2 do): a new master inherits the sockets; wall: the call to the new master up; the old master's exit is timed from the call.",
    );
  if (o.scenarios.some((x) => ['recycle', 'reload', 'shutdown', 'upgrade'].includes(x))) {
    notes.push(
      `recycle, reload, shutdown and upgrade run under bench/client.js: a closed-loop keep-alive Node client in a process of its own, ${o.connections} connections, failures counted by kind.`,
    );
  }
  if (process.env.NODE_EXTRA_CA_CERTS)
    notes.push(
      'NODE_EXTRA_CA_CERTS was set: it is removed from the environment of the servers under test and of the Node load clients (it adds about 35 ms to each Node 20 start).',
    );
  notes.push(env.pin.text);
  const busy = env.meta.loadavgAtStart[0];
  if (busy > env.meta.cores)
    notes.push(
      `the machine was busy before the bench started (load average ${busy} on ${env.meta.cores} cores): absolute figures suffer; ratios within a repeat hold better.`,
    );
  const strategies = available(o, env, notes);
  if (strategies.includes('reference'))
    notes.push(
      `reference: ${o.workers} independent processes, no master, ${env.native.addon ? 'SO_REUSEPORT sockets from the addon' : "Node's reusePort option"}; each in a session of its own, as cluster2's workers (the kernel's autogroup scheduling shares the CPU by session).`,
    );
  if (o.peers.includes('pm2')) {
    if (!env.pm2) {
      notes.push(
        `pm2 not measured: pm2 is not installed (${process.env.PM2_BIN ? `PM2_BIN=${process.env.PM2_BIN} does not exist` : 'no PM2_BIN, and neither in node_modules/.bin nor on PATH'}).`,
      );
    } else {
      try {
        peer = require('./peer-pm2').open(env.pm2, env.pin.server);
        env.meta.peers = { pm2: `pm2 ${peer.version} (${env.pm2})` };
        notes.push(
          `pm2 ${peer.version} found at ${env.pm2}; PM2_HOME ${peer.home} (removed at the end).`,
          ...peer.notes,
        );
      } catch (e) {
        notes.push(`pm2 not measured: ${e.message.split('\n')[0]}`);
      }
    }
  }
  if (o.scenarios.includes('steady'))
    notes.push(
      "steady loads run with cluster2's default options (connThreshold off); the threshold-10000 row sets connThreshold: 10000, the original's default, which recycles a worker every 10,000 connections of the accept-path load. defaults: no option but port, host and workers (strategy auto). Each cluster2 row is measured once its spare worker has booted (as in recycle and reload), not while it boots.",
    );
  if (o.scenarios.includes('recycle') || o.scenarios.includes('reload'))
    notes.push(
      "recycle trigger: the bench app's worker, on SIGUSR2, sends its master the IPC message the worker runtime sends when maxRequests is reached; reload: c.reload() in the bench master (what SIGHUP does).",
    );

  env.meta.spare = o.spare;
  if (!o.spare) notes.push('--no-spare: cluster2 runs without its spare worker; every replacement is a fresh fork.');
  env.meta.repeats = Object.fromEntries(o.scenarios.map((s) => [s, repeatsOf(o, s)]));
  log(
    `cluster2 bench: ${env.meta.node}, ${env.meta.cores} cores, ${env.meta.loader}, ${o.quick ? 'quick' : 'full'} run`,
  );
  for (const n of notes) log(`  note: ${n}`);

  const idle = [];
  for (let i = 0; i < 3; i++) idle.push((await bareFork(env.pin.server)).ms);
  env.meta.bareForkIdleMs = Math.round(summary(idle).median * 10) / 10;

  const ctx = {
    quick: o.quick,
    loader: o.loader,
    duration: o.duration,
    connections: o.connections,
    workers: o.workers,
    sizes: o.sizes,
    spare: o.spare,
    pin: env.pin,
    async start(strategy, extra = {}) {
      if (interrupted) throw new Error('the bench is stopping');
      const s = await startServer(strategy, {
        workers: o.workers,
        pin: env.pin.server,
        reusePortHow: env.native.addon ? 'native' : 'node',
        runtime: runtime.exec,
        ...extra,
        options: { ...(o.spare ? {} : { spare: false }), ...extra.options },
      });
      live.add(s);
      const stop = s.stop;
      s.stop = async () => {
        live.delete(s);
        await stop();
      };
      return s;
    },
  };

  const t0 = Date.now();
  const ticks0 = machineTicks();
  const runs = {};
  const summaries = {};
  let broken = 0;
  for (const name of o.scenarios) {
    const sc = SCENARIO_MODULES[name];
    const list = strategies.filter(sc.applies);
    if (peer && peer.applies(name)) list.push(peer.name);
    if (!list.length) continue;
    runs[name] = Object.fromEntries(list.map((s) => [s, []]));
    const repeats = repeatsOf(o, name);
    for (let rep = 0; rep < repeats; rep++) {
      // Rotate the order each repeat, so no strategy always runs first (or last).
      const order = list.map((_, i) => list[(i + rep) % list.length]);
      for (const s of order) {
        let r;
        try {
          r = peer && s === peer.name ? await peer.run(name, ctx) : await sc.run(s, ctx);
        } catch (e) {
          broken++;
          r = { error: e.message.split('\n')[0] };
        }
        runs[name][s][rep] = r;
        log(`  ${name} ${rep + 1}/${repeats} ${s}: ${brief(name, r)}`);
      }
    }
    summaries[name] = summarize(name, runs[name]);
  }
  cleanup();
  if (peer) peer.close();
  env.meta.loadavgAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100);
  env.meta.seconds = Math.round((Date.now() - t0) / 1000);
  const steal = stealShare(ticks0, machineTicks());
  env.meta.stealPct = steal === null ? null : Math.round(steal * 1000) / 10;

  // The targets are cluster2's: a peer's rows are left out of them.
  const targets = check(
    Object.fromEntries(
      Object.entries(summaries).map(([k, v]) => [
        k,
        Object.fromEntries(Object.entries(v).filter(([s]) => !PEERS.includes(s))),
      ]),
    ),
    env.meta,
  );
  const report = { meta: env.meta, notes, summary: summaries, targets, runs };
  const tbls = tables(summaries, targets);
  process.stdout.write(
    `\ncluster2 bench ${env.meta.date}: Node ${env.meta.node}, ${env.meta.cores} cores (${env.meta.cpu}), ${env.meta.loader}, ` +
      `${o.workers} workers, ${o.connections} connections${o.spare ? '' : ', no spare'}; load average ${env.meta.loadavgAtStart.join(' ')} at the start, ${env.meta.loadavgAtEnd.join(' ')} at the end; ` +
      `NODE_EXTRA_CA_CERTS ${process.env.NODE_EXTRA_CA_CERTS ? 'was set (unset for the servers)' : 'not set'}; ${env.pin.pinned ? 'pinned' : 'not pinned'}; ` +
      `bare fork to listening (idle) ${env.meta.bareForkIdleMs} ms; ${env.meta.seconds} s` +
      `${env.meta.stealPct ? `; the hypervisor took ${env.meta.stealPct}% of the CPU time (steal)` : ''}` +
      `${env.meta.peers ? `; peer ${Object.values(env.meta.peers).join(', ')} (not in the targets)` : ''}.\n`,
  );
  process.stdout.write(
    `Each cell: the median of the runs (${Object.entries(env.meta.repeats)
      .map(([k, n]) => `${k} ${n}`)
      .join(', ')}), with (min-max) when more than one.\n`,
  );
  for (const t of tbls) process.stdout.write(`${renderText(t)}\n`);
  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(report, null, 1)}\n`);
  if (o.html) fs.writeFileSync(o.html, page(report, tbls));
  if (broken) log(`bench: ${broken} run(s) broke (shown in the tables)`);
  return broken ? 1 : 0;
}

/** Runs per figure: --repeats, else 1 (quick), 3 (steady loads) or 5 (the shorter scenarios). */
function repeatsOf(o, scenario) {
  if (o.repeats) return o.repeats;
  if (o.quick) return 1;
  return scenario === 'steady' || scenario === 'sizes' ? 3 : 5;
}

function brief(name, r) {
  if (r.error) return `BROKE: ${r.error}`;
  const f = (x, d = 0) => (x == null ? 'n/a' : x.toFixed(d));
  switch (name) {
    case 'steady':
      return `keep-alive ${f(r.keepalive.rps)} req/s, new connection ${f(r.close.rps)} req/s, errors ${Object.values(
        r.keepalive.errors,
      )
        .concat(Object.values(r.close.errors))
        .reduce((a, b) => a + b, 0)}`;
    case 'recycle':
      return `trigger to listening ${f(r.triggerToListening, 1)} ms (bare fork ${f(r.bareFork, 1)}), old gone ${f(r.triggerToGone, 1)} ms, failed ${r.failed}`;
    case 'reload':
      return `${r.outcome}, wall ${f(r.wall)} ms, old gone ${f(r.allOldGone)} ms, dip ${f(r.dipPct)}%, failed ${r.failed}`;
    case 'upgrade':
      return `${r.outcome}, wall ${f(r.wall)} ms, old gone ${f(r.allOldGone)} ms, old master retired ${f(r.oldMasterRetired)} ms, dip ${f(r.dipPct)}%, failed ${r.failed}`;
    case 'shutdown':
      return `exit ${r.exitCode} after ${f(r.signalToExit)} ms, in flight ${r.inflight}, failed ${r.failed}`;
    case 'port-busy':
      return `exit ${r.exitCode} after ${f(r.timeToExit)} ms`;
    case 'sizes':
      return Object.values(r.bySize)
        .map(
          (z) =>
            `${z.workers} workers: start ${f(z.start)} ms, reload ${f(z.reload)} ms (${z.concurrency} at once, failed ${z.failed}), shutdown ${f(z.shutdown)} ms`,
        )
        .join('; ');
    case 'shutdown-burst':
      return `answered ${r.answered}, refused ${r.refused}, reset ${r.reset}; exit ${r.exitCode} after ${f(r.signalToExit)} ms`;
    default:
      return SCENARIO_MODULES[name].brief ? SCENARIO_MODULES[name].brief(r) : '';
  }
}

main().then(
  // Interrupted: the guard exits, with the signal's code, once it has cleaned up.
  (code) => guard.ending() || process.exit(code),
  (e) => {
    process.stderr.write(`bench: ${e.stack || e}\n`);
    if (!guard.ending()) process.exit(1);
  },
);
