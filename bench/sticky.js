#!/usr/bin/env node
'use strict';
// Sticky sessions (option sticky: 'ip'), in one run:
//   - accept-path throughput (a new connection per request) with sticky and
//     without, on the same reuseport cluster, the same load and the same
//     source addresses; their ratio;
//   - balance: how the source addresses (64 by default, in 127.0.0.0/8) and
//     their connections spread over the workers, and whether every address
//     stayed on one worker.
// The two setups alternate (A B, B A, ...) so neither always runs first.
// Usage: node bench/sticky.js [--duration S] [--repeats N] [--workers N] [--addresses N] [--json FILE]
// (npm run compile first; Linux with the native addon).
const { fork } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { startServer } = require('./servers');
const { summary } = require('./stats');

const USAGE = 'usage: node bench/sticky.js [--duration S (5)] [--repeats N (3)] [--workers N (2)] [--addresses N (64)] [--json FILE]\n';

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
      if (!(n >= min) || (int && !Number.isInteger(n))) throw new Error(`${a} must be ${int ? 'a whole number' : 'a number'} >= ${min}`);
      return n;
    };
    switch (a) {
      case '--duration': o.duration = num(0.5, false); break;
      case '--repeats': o.repeats = num(1); break;
      case '--workers': o.workers = num(1); break;
      case '--addresses': o.addresses = num(1); break;
      case '--json': o.json = value(); break;
      case '-h': case '--help': o.help = true; break;
      default: throw new Error(`unknown option "${a}"`);
    }
  }
  return o;
}

/** What runs now (servers, load processes): stopped on SIGINT/SIGTERM. */
const live = new Set();
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, async () => {
    process.stderr.write(`bench/sticky: ${sig}; stopping what runs\n`);
    await Promise.all([...live].map((x) => x.stop().catch(() => {})));
    process.exit(130);
  });
}

/** One load of `o.duration` seconds against `port` from the load process. */
function load(port, o) {
  return new Promise((resolve, reject) => {
    const child = fork(path.join(__dirname, 'sticky-load.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const handle = { stop: async () => { child.kill('SIGKILL'); } };
    live.add(handle);
    let timer;
    child.on('message', (m) => {
      if (m.started) timer = setTimeout(() => child.send({ cmd: 'stop' }), o.duration * 1000);
      if (m.result) resolve(m.result);
    });
    child.on('exit', (code) => {
      live.delete(handle);
      clearTimeout(timer);
      reject(new Error(`the load process exited (${code}) without a result`));
    });
    child.send({ cmd: 'start', port, addresses: o.addresses, warmup: 500 });
  });
}

async function measure(sticky, o) {
  const server = await startServer('reuseport', { workers: o.workers, options: { connThreshold: 0, ...(sticky ? { sticky: 'ip' } : {}) } });
  live.add(server);
  try {
    if (server.active !== 'reuseport') throw new Error(`cluster2 ran as ${server.active}: the bench needs the native addon on Linux`);
    const r = await load(server.port, o);
    const workers = server.workers();
    const addrsPer = Object.fromEntries(workers.map((p) => [p, 0]));
    let split = 0;
    for (const pids of Object.values(r.byAddress)) {
      if (pids.length > 1) split++;
      else if (pids[0] in addrsPer) addrsPer[pids[0]]++;
    }
    const even = (counts) => {
      const total = counts.reduce((a, b) => a + b, 0);
      return Math.max(...counts.map((c) => Math.abs(c / (total / counts.length) - 1)));
    };
    const conns = workers.map((p) => Number(r.byPid[p] || 0));
    return {
      rps: r.counted / r.seconds,
      failed: r.failed,
      errors: r.errors,
      /** Connections per worker, and the largest deviation from an even share (0.05 = 5%). */
      connections: conns,
      connectionSkew: even(conns),
      /** Addresses that reached more than one worker. */
      splitAddresses: split,
      /** Addresses per worker (those that stayed on one), and the largest deviation from even. */
      addresses: workers.map((p) => addrsPer[p]),
      addressSkew: split ? null : even(workers.map((p) => addrsPer[p])),
    };
  } finally {
    live.delete(server);
    await server.stop();
  }
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
  process.stderr.write(`sticky bench: ${o.workers} workers, ${o.addresses} source addresses, new connection per request, ${o.repeats} x ${o.duration} s each (figures from a shared machine are provisional)\n`);
  for (let rep = 0; rep < o.repeats; rep++) {
    const order = rep % 2 ? ['sticky', 'plain'] : ['plain', 'sticky'];
    for (const name of order) {
      const r = await measure(name === 'sticky', o);
      runs[name].push(r);
      process.stderr.write(`  ${rep + 1}/${o.repeats} ${name.padEnd(6)} ${Math.round(r.rps)} req/s, failed ${r.failed}, connections ${r.connections.join('/')}, addresses ${r.addresses.join('/')} (${r.splitAddresses} on several workers)\n`);
    }
  }
  const med = (name, f) => summary(runs[name].map(f)).median;
  const plain = med('plain', (r) => r.rps);
  const sticky = med('sticky', (r) => r.rps);
  // Ratio within each repeat (the two loads ran back to back), then the median.
  const ratio = summary(runs.sticky.map((r, i) => r.rps / runs.plain[i].rps)).median;
  const last = runs.sticky[runs.sticky.length - 1];
  const out = {
    workers: o.workers,
    addresses: o.addresses,
    duration: o.duration,
    repeats: o.repeats,
    rps: { plain: Math.round(plain), sticky: Math.round(sticky) },
    ratio: Math.round(ratio * 1000) / 1000,
    failed: { plain: runs.plain.reduce((a, r) => a + r.failed, 0), sticky: runs.sticky.reduce((a, r) => a + r.failed, 0) },
    balance: {
      addressesPerWorker: last.addresses,
      addressSkew: last.addressSkew,
      connectionSkew: med('sticky', (r) => r.connectionSkew),
      splitAddresses: { plain: med('plain', (r) => r.splitAddresses), sticky: Math.max(...runs.sticky.map((r) => r.splitAddresses)) },
    },
    runs,
  };
  const lines = [
    '',
    `| accept path (new connection per request) | req/s (median of ${o.repeats}) | failed |`,
    '|---|---|---|',
    `| reuseport | ${out.rps.plain} | ${out.failed.plain} |`,
    `| reuseport + sticky: 'ip' | ${out.rps.sticky} | ${out.failed.sticky} |`,
    '',
    `sticky / without: ${out.ratio.toFixed(3)} (median of the per-repeat ratios; target >= 0.95)`,
    `balance with sticky: ${o.addresses} addresses over ${o.workers} workers: ${last.addresses.join('/')} (largest deviation from even ${pct(last.addressSkew)}; target <= 15%); connections ${pct(out.balance.connectionSkew)} off even`,
    `addresses that reached more than one worker: sticky ${out.balance.splitAddresses.sticky} (max), without ${out.balance.splitAddresses.plain} (median) of ${o.addresses}`,
    '',
  ];
  process.stdout.write(lines.join('\n'));
  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(out, null, 2)}\n`);
  return 0;
}

main().then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(`bench/sticky: ${e.stack || e.message}\n`);
  process.exitCode = 1;
});
