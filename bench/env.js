'use strict';
// Facts about this machine and run that a reader needs to trust the figures:
// Node, cores, load average, NODE_EXTRA_CA_CERTS, the addon, the load
// generator, whether load and servers were pinned apart, skipped strategies.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { which, wrkVersion } = require('./loaders');

const ROOT = path.join(__dirname, '..');

function nativeInfo() {
  const n = require('../dist/shared/native');
  return {
    implementation: n.implementation,
    loadError: n.loadError ? n.loadError.message.split('\n')[0] : null,
    nodeHasReusePort: n.nodeHasReusePort,
    addon: n.native !== null,
  };
}

/** taskset prefixes: load generator and servers on separate cores when there are at least 4. */
function pinning(cores) {
  const taskset = which('taskset');
  if (cores >= 4 && taskset && process.platform === 'linux') {
    const loaderCpus = '0';
    const serverCpus = `1-${cores - 1}`;
    return {
      pinned: true,
      loader: [taskset, '-c', loaderCpus],
      server: [taskset, '-c', serverCpus],
      text: `pinned with taskset: load generator on CPU ${loaderCpus}, servers on CPUs ${serverCpus}`,
    };
  }
  const why = cores < 4 ? `${cores} cores` : 'no taskset';
  return {
    pinned: false,
    loader: [],
    server: [],
    text: `not pinned (${why}): the load generator shares the cores with the servers; its own CPU use is reported beside each figure`,
  };
}

/** pm2 for `--peer pm2`: PM2_BIN, else node_modules/.bin, else PATH (pm2 is not a dependency). */
function pm2Path() {
  const bin = process.env.PM2_BIN;
  if (bin) return fs.existsSync(bin) ? bin : null;
  const local = path.join(ROOT, 'node_modules', '.bin', 'pm2');
  if (fs.existsSync(local)) return local;
  return which('pm2');
}

function autocannonVersion() {
  try {
    return require('autocannon/package.json').version;
  } catch {
    return null;
  }
}

/**
 * What runs the servers under test (--runtime): this Node, or Bun (CLUSTER2_BENCH_BUN, else
 * PATH), or a given path. exec null and an error when it cannot be found or run.
 */
function serverRuntime(asked) {
  const spec = asked || 'node';
  if (spec === 'node') return { exec: process.execPath, name: 'node', label: `Node ${process.version}` };
  const exec = spec === 'bun' ? process.env.CLUSTER2_BENCH_BUN || which('bun') : path.resolve(spec);
  if (!exec || !fs.existsSync(exec))
    return { exec: null, error: `--runtime ${spec}: not found (CLUSTER2_BENCH_BUN or PATH)` };
  let version;
  try {
    version = execFileSync(exec, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch (e) {
    return { exec: null, error: `--runtime ${spec}: ${exec} --version failed (${e.message.split('\n')[0]})` };
  }
  const name = /^v\d/.test(version) ? 'node' : 'bun';
  return { exec, name, label: name === 'node' ? `Node ${version}` : `Bun ${version}` };
}

function collect(o) {
  const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  const n = nativeInfo();
  const pin = pinning(cores);
  const extraCa = process.env.NODE_EXTRA_CA_CERTS;
  return {
    meta: {
      date: new Date().toISOString(),
      node: process.version,
      serverRuntime: null, // filled in by run.js: what ran the servers (--runtime)
      platform: `${process.platform} ${os.release()} ${process.arch}`,
      cpu: (os.cpus()[0] || {}).model || 'unknown',
      cores,
      loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
      NODE_EXTRA_CA_CERTS: extraCa
        ? `set (${extraCa}); unset for the servers under test and the Node load clients`
        : 'not set',
      cluster2Implementation: n.implementation + (n.loadError ? ` (addon not loaded: ${n.loadError})` : ''),
      CLUSTER2_NATIVE: process.env.CLUSTER2_NATIVE ?? 'unset',
      nodeReusePort: n.nodeHasReusePort ? 'yes' : 'no (Node < 22.12)',
      loader: o.loader === 'wrk' ? `wrk ${wrkVersion()} (1 thread)` : `autocannon ${autocannonVersion()}`,
      pinning: pin.text,
      workers: o.workers,
      connections: o.connections,
      steadySeconds: o.duration,
      mode: o.quick ? 'quick' : 'full',
    },
    native: n,
    pin,
    wrk: which('wrk'),
    autocannon: autocannonVersion(),
    pm2: pm2Path(),
  };
}

module.exports = { collect, serverRuntime, ROOT };
