#!/usr/bin/env node
'use strict';
// Sticky sessions (option sticky: 'ip'), in one run:
//   - accept-path throughput (a new connection per request) with sticky and
//     without, on the same reuseport cluster, the same load and the same
//     source addresses; their ratio;
//   - balance: how the source addresses (64 by default, in 127.0.0.0/8) and
//     their connections spread over the workers, and whether every address
//     stayed on one worker.
// Both clusters run side by side and one load process drives both at once
// (interleaved loops), so a busy machine slows both alike; the ratio is taken
// within each repeat.
// Usage: node bench/sticky.js [--duration S] [--repeats N] [--workers N] [--addresses N] [--json FILE]
// (npm run compile first; Linux with the native addon).
const { fork } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { startServer } = require('./servers');
const { summary } = require('./stats');
const { snapshot, diff } = require('./procstat');
const { endWithMe } = require('./reap');

const USAGE =
  'usage: node bench/sticky.js [--duration S (5)] [--repeats N (3)] [--workers N (2)] [--addresses N (64)] [--json FILE]\n';

function parse(argv) {
  const o = { duration: 5, repeats: 3, workers: 2, addresses: 64, json: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (min, int = true) => {
      const n = Number(value());
      if (!(n >= min) || (int && !Number.isInteger(n)))
        throw new Error(`${a} must be ${int ? 'a whole number' : 'a number'} >= ${min}`);
      return n;
    };
    switch (a) {
      case '--duration':
        o.duration = num(0.5, false);
        break;
      case '--repeats':
        o.repeats = num(1);
        break;
      case '--workers':
        o.workers = num(1);
        break;
      case '--addresses':
        o.addresses = num(1);
        break;
      case '--json':
        o.json = value();
        break;
      case '-h':
      case '--help':
        o.help = true;
        break;
      default:
        throw new Error(`unknown option "${a}"`);
    }
  }
  return o;
}

/** What runs now (servers, load processes): stopped (and their pids directories removed) on the way out. */
const live = new Set();
// SIGINT, SIGTERM, SIGHUP, an uncaught error, any exit: every process started here ends (bench/reap.js).
endWithMe({
  name: 'bench/sticky',
  cleanup: () => Promise.all([...live].map((x) => x.stop().catch(() => {}))),
});

/** One load of `o.duration` seconds against every port at once, from the load process: one result per port. */
function load(ports, o) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'sticky-load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const handle = {
      stop: async () => {
        child.kill('SIGKILL');
      },
    };
    live.add(handle);
    let timer;
    child.on('message', (/** @type {{ started?: boolean, results?: object[] }} */ m) => {
      if (m.started) timer = setTimeout(() => child.send({ cmd: 'stop' }), o.duration * 1000);
      if (m.results) resolve(m.results);
    });
    child.on('exit', (code) => {
      live.delete(handle);
      clearTimeout(timer);
      reject(new Error(`the load process exited (${code}) without a result`));
    });
    child.send({ cmd: 'start', ports, addresses: o.addresses, warmup: 500 });
  });
}

/** The largest deviation of the counts from an even share (0.05 = 5%). */
function skew(counts) {
  const total = counts.reduce((a, b) => a + b, 0);
  return Math.max(...counts.map((c) => Math.abs(c / (total / counts.length) - 1)));
}

/** A load's figures for one cluster. */
function figures(server, r, cpuSeconds) {
  const workers = server.workers();
  const addrsPer = Object.fromEntries(workers.map((p) => [p, 0]));
  let split = 0;
  for (const pids of Object.values(r.byAddress)) {
    if (pids.length > 1) split++;
    else if (pids[0] in addrsPer) addrsPer[pids[0]]++;
  }
  const conns = workers.map((p) => Number(r.byPid[p] || 0));
  return {
    rps: r.counted / r.seconds,
    /** Server CPU time (master + workers) per request, in microseconds: steadier than req/s on a busy machine. */
    cpuPerRequest: r.ok ? (cpuSeconds * 1e6) / r.ok : null,
    failed: r.failed,
    errors: r.errors,
    /** Connections per worker, and the largest deviation from an even share. */
    connections: conns,
    connectionSkew: skew(conns),
    /** Addresses that reached more than one worker. */
    splitAddresses: split,
    /** Addresses per worker (those that stayed on one), and the largest deviation from even. */
    addresses: workers.map((p) => addrsPer[p]),
    addressSkew: split ? null : skew(workers.map((p) => addrsPer[p])),
  };
}

/** Both clusters under one load: { plain, sticky } figures. */
async function measure(servers, o) {
  const names = Object.keys(servers);
  const pids = names.map((n) => [servers[n].pid, ...servers[n].workers()]);
  const before = pids.map((p) => snapshot(p));
  const results = await load(
    names.map((n) => servers[n].port),
    o,
  );
  const out = {};
  names.forEach((n, k) => {
    const cpu = Object.values(diff(before[k], snapshot(pids[k]))).reduce((a, b) => a + b, 0);
    out[n] = figures(servers[n], results[k], cpu);
  });
  return out;
}

const pct = (x) => (x === null ? '-' : `${(x * 100).toFixed(1)}%`);

async function main() {
  let o;
  try {
    o = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench/sticky: ${e.message}\n${USAGE}`);
    return 64;
  }
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!fs.existsSync(path.join(__dirname, '..', 'dist', 'cjs.js'))) {
    process.stderr.write('bench/sticky: dist/ is missing; run `npm run compile` first\n');
    return 2;
  }
  const runs = { plain: [], sticky: [] };
  process.stderr.write(
    `sticky bench: two reuseport clusters of ${o.workers} workers, without and with sticky, loaded at the same time; ${o.addresses} source addresses, new connection per request; ${o.repeats} x ${o.duration} s (figures from a shared machine are provisional)\n`,
  );
  const servers = {};
  try {
    for (const name of ['plain', 'sticky']) {
      const server = await startServer('reuseport', {
        workers: o.workers,
        options: { connThreshold: 0, ...(name === 'sticky' ? { sticky: 'ip' } : {}) },
      });
      live.add(server);
      servers[name] = server;
      if (server.active !== 'reuseport')
        throw new Error(`cluster2 ran as ${server.active}: the bench needs the native addon on Linux`);
    }
    for (let rep = 0; rep < o.repeats; rep++) {
      const m = await measure(servers, o);
      for (const name of ['plain', 'sticky']) {
        const r = m[name];
        runs[name].push(r);
        process.stderr.write(
          `  ${rep + 1}/${o.repeats} ${name.padEnd(6)} ${Math.round(r.rps)} req/s, ${Math.round(r.cpuPerRequest)} us server CPU/req, failed ${r.failed}, connections ${r.connections.join('/')}, addresses ${r.addresses.join('/')} (${r.splitAddresses} on several workers)\n`,
        );
      }
    }
  } finally {
    for (const server of Object.values(servers)) {
      live.delete(server);
      await server.stop();
    }
  }
  const med = (name, f) => summary(runs[name].map(f)).median;
  const plain = med('plain', (r) => r.rps);
  const sticky = med('sticky', (r) => r.rps);
  // Ratio within each repeat (the two clusters were loaded at the same time), then the median.
  const ratio = summary(runs.sticky.map((r, i) => r.rps / runs.plain[i].rps)).median;
  const cpuRatio = summary(runs.sticky.map((r, i) => r.cpuPerRequest / runs.plain[i].cpuPerRequest)).median;
  const last = runs.sticky[runs.sticky.length - 1];
  const out = {
    workers: o.workers,
    addresses: o.addresses,
    duration: o.duration,
    repeats: o.repeats,
    rps: { plain: Math.round(plain), sticky: Math.round(sticky) },
    ratio: Math.round(ratio * 1000) / 1000,
    cpuPerRequest: {
      plain: Math.round(med('plain', (r) => r.cpuPerRequest)),
      sticky: Math.round(med('sticky', (r) => r.cpuPerRequest)),
    },
    cpuRatio: Math.round(cpuRatio * 1000) / 1000,
    failed: {
      plain: runs.plain.reduce((a, r) => a + r.failed, 0),
      sticky: runs.sticky.reduce((a, r) => a + r.failed, 0),
    },
    balance: {
      addressesPerWorker: last.addresses,
      addressSkew: last.addressSkew,
      connectionSkew: med('sticky', (r) => r.connectionSkew),
      splitAddresses: {
        plain: med('plain', (r) => r.splitAddresses),
        sticky: Math.max(...runs.sticky.map((r) => r.splitAddresses)),
      },
    },
    runs,
  };
  const lines = [
    '',
    `| accept path (new connection per request) | req/s (median of ${o.repeats}) | server CPU us/req | failed |`,
    '|---|---|---|---|',
    `| reuseport | ${out.rps.plain} | ${out.cpuPerRequest.plain} | ${out.failed.plain} |`,
    `| reuseport + sticky: 'ip' | ${out.rps.sticky} | ${out.cpuPerRequest.sticky} | ${out.failed.sticky} |`,
    '',
    `sticky / without: req/s ${out.ratio.toFixed(3)} (target >= 0.95), server CPU per request ${out.cpuRatio.toFixed(3)} (medians of the per-repeat ratios)`,
    `balance with sticky: ${o.addresses} addresses over ${o.workers} workers: ${last.addresses.join('/')} (largest deviation from even ${pct(last.addressSkew)}; target <= 15%); connections ${pct(out.balance.connectionSkew)} off even`,
    `addresses that reached more than one worker: sticky ${out.balance.splitAddresses.sticky} (max), without ${out.balance.splitAddresses.plain} (median) of ${o.addresses}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(out, null, 2)}\n`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    process.stderr.write(`bench/sticky: ${e.stack || e.message}\n`);
    process.exitCode = 1;
  },
);
