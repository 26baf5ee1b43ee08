#!/usr/bin/env node
'use strict';
// npm run soak -- --minutes N: does the master grow under a recycle storm?
// A cluster2 master (bench/apps/soak.js, run with --expose-gc) with 2 workers and a small
// maxRequests, under a closed-loop keep-alive load (bench/client.js), reloaded every 20 s, its
// monitor scraped (/metrics, /status) every 5 s as Prometheus and a dashboard would. Every
// sample is taken after a full GC in the master: its heap, RSS and open fds, reported per 1,000
// recycles, and the growth after the warm-up per 1,000 recycles (least squares), against the
// targets: heap under 1 MB per 1,000 recycles, fds constant. See `node bench/soak.js --help`.
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
if (!fs.existsSync(path.join(ROOT, 'dist', 'cjs.js'))) {
  process.stderr.write('soak: dist/ is missing; run `npm run compile` first\n');
  process.exit(2);
}

const { follow, freePort, serverEnv, HOST, APPS } = require('./servers');
const { startClient } = require('./closed-loop');
const { endWithMe } = require('./reap');

const USAGE = `usage: node bench/soak.js [options]   (npm run soak -- [options])

  --minutes N          how long the load runs (default 30; a fraction is allowed)
  --workers N          workers (default 2)
  --strategy NAME      auto (default), reuseport, round-robin or shared
  --max-requests N     maxRequests of each worker (default 3000)
  --connections N      keep-alive connections of the load (default 20)
  --reload-every S     a reload every S seconds (default 20; 0: none)
  --scrape-every S     GET /metrics and /status from the monitor every S seconds (default 5; 0: none)
  --sample-every S     a sample of the master every S seconds (default 10)
  --warm-up S          samples before this are the warm-up, left out of the growth (default 300:
                       the monitor's five minutes of history filling up; at most half the run)
  --snapshots DIR      heap snapshots of the master in DIR, after the warm-up and at the end:
                       node bench/heap-diff.js DIR/warm.heapsnapshot DIR/end.heapsnapshot (or
                       Chrome DevTools, Memory tab). Writing one leaves the master's RSS larger.
  --json FILE          every sample and the summary as JSON
  -h, --help           this text
`;

/** Targets: the master's heap grows less than this per 1,000 recycles after the warm-up. */
const HEAP_TARGET_MB = 1;

function parse(argv) {
  const o = {
    minutes: 30,
    workers: 2,
    strategy: 'auto',
    maxRequests: 3000,
    connections: 20,
    reloadEvery: 20,
    scrapeEvery: 5,
    sampleEvery: 10,
    warmUp: 300,
    snapshots: null,
    json: null,
    help: false,
  };
  const num = (flag, v, min) => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < min)
      throw new Error(`${flag} must be a number >= ${min}; got "${v ?? ''}"`);
    return n;
  };
  const whole = (flag, v, min) => {
    const n = num(flag, v, min);
    if (!Number.isInteger(n)) throw new Error(`${flag} must be a whole number >= ${min}; got "${v}"`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => argv[++i];
    switch (a) {
      case '--minutes':
        o.minutes = num(a, next(), 0.01);
        break;
      case '--workers':
        o.workers = whole(a, next(), 1);
        break;
      case '--strategy':
        o.strategy = next();
        if (!['auto', 'reuseport', 'round-robin', 'shared'].includes(o.strategy))
          throw new Error(`--strategy: "${o.strategy ?? ''}" (allowed: auto, reuseport, round-robin, shared)`);
        break;
      case '--scrape-every':
        o.scrapeEvery = num(a, next(), 0);
        break;
      case '--max-requests':
        o.maxRequests = whole(a, next(), 1);
        break;
      case '--connections':
        o.connections = whole(a, next(), 1);
        break;
      case '--reload-every':
        o.reloadEvery = num(a, next(), 0);
        break;
      case '--sample-every':
        o.sampleEvery = num(a, next(), 0.1);
        break;
      case '--warm-up':
        o.warmUp = num(a, next(), 0);
        break;
      case '--snapshots':
        o.snapshots = next();
        if (!o.snapshots) throw new Error('--snapshots needs a directory');
        break;
      case '--json':
        o.json = next();
        if (!o.json) throw new Error('--json needs a file');
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

const MB = 2 ** 20;
const mb = (bytes) => (bytes / MB).toFixed(2);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Least-squares slope of y over x; null with fewer than 2 distinct x. */
function slope(points) {
  const n = points.length;
  if (n < 2) return null;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.x - mx) ** 2;
    sxy += (p.x - mx) * (p.y - my);
  }
  return sxx === 0 ? null : sxy / sxx;
}

/** Growth per 1,000 recycles of the samples after the warm-up, of one figure. */
function growth(samples, key) {
  const per = slope(samples.map((s) => ({ x: s.recycles, y: s[key] })));
  return per === null ? null : per * 1000;
}

/** The fds that differ between two lists of fd targets: {target: change}. */
function fdChange(a, b) {
  const count = (list) => list.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map());
  const [ca, cb] = [count(a), count(b)];
  const out = {};
  for (const k of new Set([...ca.keys(), ...cb.keys()])) {
    const d = (cb.get(k) ?? 0) - (ca.get(k) ?? 0);
    if (d) out[k] = d;
  }
  return out;
}

/** The pids directory of the master, removed on the way out. */
const open = { pids: null };
let stopping = false;
// SIGINT, SIGTERM, SIGHUP, an uncaught error, any exit: the master, its workers and the load end (bench/reap.js).
const guard = endWithMe({
  name: 'soak',
  onInterrupt() {
    stopping = true;
  },
  cleanup() {
    if (open.pids) fs.rmSync(open.pids, { recursive: true, force: true });
  },
});

async function main() {
  let o;
  try {
    o = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`soak: ${e.message}\n\n${USAGE}`);
    return 64;
  }
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const runMs = o.minutes * 60_000;
  const warmUpMs = Math.min(o.warmUp * 1000, runMs / 2);
  if (o.snapshots) fs.mkdirSync(o.snapshots, { recursive: true });

  const [port, monPort] = [await freePort(), await freePort()];
  const pids = (open.pids = fs.mkdtempSync(path.join(os.tmpdir(), 'c2soak-')));
  const opts = {
    port,
    host: HOST,
    monPort,
    pids,
    noWorkers: o.workers,
    maxRequests: o.maxRequests,
    strategy: o.strategy,
  };
  const master = follow(
    [process.execPath, '--expose-gc', path.join(APPS, 'soak.js')],
    serverEnv({ BENCH_OPTS: JSON.stringify(opts) }),
  );
  const log = (m) => process.stderr.write(`${m}\n`);
  log(
    `soak: ${o.minutes} min, ${o.workers} workers, maxRequests ${o.maxRequests}, ${o.connections} keep-alive connections, ` +
      `${o.reloadEvery ? `a reload every ${o.reloadEvery} s` : 'no reload'}; master ${master.proc.pid} (--expose-gc)`,
  );
  const strategy = (await master.waitFor('strategy', undefined, 30_000)).args[0];
  let up = 0;
  await master.waitFor('listening', () => ++up >= o.workers, 60_000);

  /** Send the master a command; resolves with its answer (the next event `ev`). */
  const ask = async (line, ev) => {
    const seen = master.events.filter((e) => e.ev === ev).length;
    master.proc.stdin.write(`${line}\n`);
    let k = 0;
    return master.waitFor(ev, () => ++k > seen, 120_000);
  };
  const recycles = () => master.events.filter((e) => e.ev === 'recycled').length;
  const samples = [];
  const t0 = Date.now();
  const take = async () => {
    const s = (await ask('sample', 'sample')).args[0];
    // Each live child (worker, spare) holds one fd of the master, its IPC channel: the fds that are
    // the master's own are the rest, constant unless something leaks.
    const row = { ...s, ownFds: s.fds - s.children, minutes: (Date.now() - t0) / 60_000, recycles: recycles() };
    samples.push(row);
    log(
      `  ${row.minutes.toFixed(1)} min: ${row.recycles} recycles, ${row.requests} requests; ` +
        `master heap ${mb(row.heapUsed)} MB, RSS ${mb(row.rss)} MB, ${row.fds} fds (${row.children} children)`,
    );
    return row;
  };

  const first = await take();
  if (!first.gc) throw new Error('the master has no global.gc (--expose-gc): the samples would not be after a GC');
  const fdsAtStart = (await ask('fds', 'fds')).args[0];
  const client = await startClient({ port, connections: o.connections });
  // No scrape while a sample is taken: its connection would count among the master's fds.
  const scrapes = { ok: 0, failed: 0, inFlight: new Set(), paused: false };
  const scraper = o.scrapeEvery
    ? setInterval(() => {
        if (scrapes.paused) return;
        for (const p of ['/metrics', '/status']) {
          const s = scrape(monPort, p).then(
            () => scrapes.ok++,
            () => scrapes.failed++,
          );
          scrapes.inFlight.add(s);
          void s.finally(() => scrapes.inFlight.delete(s));
        }
      }, o.scrapeEvery * 1000)
    : null;
  const quietly = async (fn) => {
    scrapes.paused = true;
    await Promise.all(scrapes.inFlight);
    try {
      return await fn();
    } finally {
      scrapes.paused = false;
    }
  };
  let reloads = 0;
  const reloader = o.reloadEvery
    ? setInterval(() => {
        reloads++;
        master.proc.stdin.write('reload\n');
      }, o.reloadEvery * 1000)
    : null;
  let warm = null;
  const end = t0 + runMs;
  while (!stopping && Date.now() < end) {
    await sleep(Math.min(o.sampleEvery * 1000, Math.max(0, end - Date.now())));
    if (master.proc.exitCode !== null || master.proc.signalCode !== null)
      throw new Error(`the master exited (${master.proc.exitCode ?? master.proc.signalCode}): ${master.stderr()}`);
    if (!warm && Date.now() - t0 >= warmUpMs) {
      // The snapshot first: writing it leaves the master's RSS larger, the baseline after it.
      if (o.snapshots) await ask(`snapshot ${path.join(o.snapshots, 'warm.heapsnapshot')}`, 'snapshot');
      warm = await quietly(take);
    } else await quietly(take);
  }
  if (reloader) clearInterval(reloader);
  if (scraper) clearInterval(scraper);
  const result = await client.stop();
  // Let a reload under way finish, then the last sample.
  await sleep(200);
  const last = await take();
  const fdsAtEnd = (await ask('fds', 'fds')).args[0];
  if (o.snapshots) await ask(`snapshot ${path.join(o.snapshots, 'end.heapsnapshot')}`, 'snapshot');
  const reloadFailures = master.events.filter((e) => e.ev === 'reload-failed').length;
  master.proc.kill('SIGTERM');
  const exit = await master.exited;
  fs.rmSync(pids, { recursive: true, force: true });
  open.pids = null;

  const after = samples.filter((s) => s.minutes >= (warm ?? last).minutes);
  const report = {
    options: o,
    strategy,
    minutes: last.minutes,
    recycles: last.recycles,
    reloads,
    reloadFailures,
    scrapes: { ok: scrapes.ok, failed: scrapes.failed },
    requests: result.ok,
    failed: result.failed,
    errors: result.errors,
    masterExit: exit.code ?? exit.signal,
    warmUp: warm ?? last,
    end: last,
    growthPer1000: {
      heapMB: nullable(growth(after, 'heapUsed'), MB),
      rssMB: nullable(growth(after, 'rss'), MB),
      rssAnonMB: nullable(growth(after, 'rssAnon'), MB),
      ownFds: nullable(growth(after, 'ownFds'), 1),
    },
    ownFdsAfterWarmUp: { min: Math.min(...after.map((s) => s.ownFds)), max: Math.max(...after.map((s) => s.ownFds)) },
    fdChange: fdChange(fdsAtStart, fdsAtEnd),
    fdList: { start: fdsAtStart, end: fdsAtEnd },
    samples,
  };
  // The master's own fds are constant when their lowest value over the last quarter of the samples
  // after the warm-up is that over the first: a leak raises it; a socket open at one sample (a
  // child's channel between its exit and its close) cannot fake one.
  const quarter = Math.max(1, Math.floor(after.length / 4));
  const lowest = (list) => Math.min(...list.map((s) => s.ownFds));
  // A growth per 1,000 recycles is judged over 1,000 recycles after the warm-up at least.
  const judged = last.recycles - report.warmUp.recycles >= 1000 && after.length >= 3;
  report.ownFdsLowest = { first: lowest(after.slice(0, quarter)), last: lowest(after.slice(-quarter)) };
  report.targets = {
    heap: judged && report.growthPer1000.heapMB !== null ? report.growthPer1000.heapMB < HEAP_TARGET_MB : null,
    fds: judged ? lowest(after.slice(-quarter)) === lowest(after.slice(0, quarter)) : null,
  };
  process.stdout.write(render(report));
  if (o.json) fs.writeFileSync(o.json, `${JSON.stringify(report, null, 1)}\n`);
  return 0;
}

/** GET a monitor path, the body read and dropped. */
function scrape(port, p) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: HOST, port, path: p, agent: false, timeout: 10_000 }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${p}: ${res.statusCode}`))));
      })
      .on('timeout', function () {
        this.destroy(new Error('timeout'));
      })
      .on('error', reject);
  });
}

function nullable(v, unit) {
  return v === null ? null : Math.round((v / unit) * 1000) / 1000;
}

/** The samples at the warm-up, at each 1,000 recycles, and at the end, as a table; the growth and the targets. */
function render(r) {
  const rows = [r.samples[0]];
  let next = 1000;
  for (const s of r.samples) {
    if (s === r.warmUp && !rows.includes(s)) rows.push(s);
    if (s.recycles >= next) {
      if (!rows.includes(s)) rows.push(s);
      next = (Math.floor(s.recycles / 1000) + 1) * 1000;
    }
  }
  if (!rows.includes(r.end)) rows.push(r.end);
  const line = (s) =>
    `| ${s.minutes.toFixed(1).padStart(7)} | ${String(s.recycles).padStart(8)} | ${String(s.requests).padStart(10)} | ` +
    `${mb(s.heapUsed).padStart(7)} | ${mb(s.rss).padStart(7)} | ${mb(s.rssAnon).padStart(7)} | ${String(s.fds).padStart(3)} | ${String(s.children).padStart(8)} |` +
    (s === r.warmUp ? ' warm-up' : '');
  const g = r.growthPer1000;
  const verdict = (ok) =>
    ok === null ? 'not judged (fewer than 1,000 recycles after the warm-up)' : ok ? 'MET' : 'MISSED';
  const change = Object.entries(r.fdChange)
    .map(([k, d]) => `${d > 0 ? '+' : ''}${d} ${k}`)
    .join(', ');
  return [
    '',
    `cluster2 soak: ${r.minutes.toFixed(1)} min, strategy ${r.strategy}, ${r.options.workers} workers, maxRequests ${r.options.maxRequests}, ` +
      `${r.options.connections} keep-alive connections; ${r.recycles} recycles (${r.reloads} reloads, ${r.reloadFailures} failed), ` +
      `${r.requests} requests, ${r.failed} failed${r.failed ? ` ${JSON.stringify(r.errors)}` : ''}; ` +
      `${r.scrapes.ok} monitor scrapes (${r.scrapes.failed} failed); master exit ${r.masterExit}`,
    "The master, after a full GC at each sample (heap: V8's heap used; anon: the anonymous part of the RSS, " +
      'the rest being pages of the node binary and libraries):',
    '',
    '| minutes | recycles |   requests | heap MB |  RSS MB | anon MB | fds | children |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(line),
    '',
    `growth after the warm-up, per 1,000 recycles (least squares over ${r.samples.filter((s) => s.minutes >= r.warmUp.minutes).length} samples): ` +
      `heap ${g.heapMB ?? 'n/a'} MB, RSS ${g.rssMB ?? 'n/a'} MB (anonymous ${g.rssAnonMB ?? 'n/a'} MB), ` +
      `the master's own fds ${g.ownFds ?? 'n/a'}`,
    `the master's own fds (less one per live child: its IPC channel) after the warm-up: ${r.ownFdsAfterWarmUp.min}..${r.ownFdsAfterWarmUp.max} ` +
      `(lowest in the first and last quarter: ${r.ownFdsLowest.first}, ${r.ownFdsLowest.last}); ` +
      `fds at the start and the end: ${change || 'the same'}`,
    `targets: heap growth < ${HEAP_TARGET_MB} MB per 1,000 recycles: ${verdict(r.targets.heap)}; own fds constant: ${verdict(r.targets.fds)}`,
    '',
  ].join('\n');
}

main().then(
  // Interrupted: the guard exits, with the signal's code, once it has cleaned up.
  (code) => guard.ending() || process.exit(code),
  (e) => {
    process.stderr.write(`soak: ${e.stack || e}\n`);
    if (!guard.ending()) process.exit(1);
  },
);
