'use strict';
// Node and Bun side by side in one run (docs/runtimes.md): `npm run bench:runtimes`.
// Runs bench/run.js once per runtime and repeat, alternating (node, bun, node, bun, ...) so
// that both meet the same machine, with the steady and reload scenarios for cluster2's
// defaults and the no-master reference, and prints the medians (min-max) of:
//   keep-alive req/s, accept-path req/s (a new connection per request, `Connection: close`),
//   each against its runtime's reference; reload under keep-alive load: failed requests
//   and wall time.
// Bun: CLUSTER2_BENCH_BUN, else `bun` on PATH. The bench itself and its load clients stay on Node.
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { summary } = require('./stats');

const USAGE = `usage: node bench/runtimes.js [--repeats N] [--quick] [--loader wrk|autocannon]
  (npm run bench:runtimes -- [options]; run \`npm run compile\` first)

  --repeats N     runs of each runtime, alternating (default 3)
  --quick         bench/run.js --quick for each run (2 s loads)
  --loader NAME   passed to bench/run.js (default: wrk when installed, else autocannon)
  -h, --help      this text
`;

function parse(argv) {
  const o = { repeats: 3, quick: false, loader: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-h' || a === '--help') return { ...o, help: true };
    if (a === '--quick') o.quick = true;
    else if (a === '--repeats') {
      o.repeats = Number(argv[++i]);
      if (!Number.isInteger(o.repeats) || o.repeats < 1) throw new Error('--repeats must be a whole number >= 1');
    } else if (a === '--loader') o.loader = argv[++i];
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

function hasWrk() {
  try {
    execFileSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** One bench/run.js; resolves with its JSON. Its own output goes to ours, prefixed. */
function benchOnce(runtime, o, file) {
  const args = [path.join(__dirname, 'run.js'), '--runtime', runtime, '--repeats', '1'];
  args.push('--loader', o.loader, '--scenarios', 'steady,reload', '--strategies', 'defaults,reference', '--json', file);
  if (o.quick) args.push('--quick');
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    current = p;
    p.stdout.on('data', (d) => process.stderr.write(String(d).replace(/^(?=.)/gm, `[${runtime}] `)));
    p.on('close', (code) => {
      current = null;
      if (code !== 0) return reject(new Error(`bench/run.js --runtime ${runtime} exited ${code}`));
      resolve(JSON.parse(fs.readFileSync(file, 'utf8')));
    });
  });
}

let current = null;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    // bench/run.js stops its own servers on these.
    if (current) current.kill(sig);
    process.exit(130);
  });
}

/** median (min-max); `unit` after the median. */
const fmt = (s, digits = 0, unit = '') => {
  if (!s) return 'n/a';
  const n = (x) => x.toLocaleString('en-US', { maximumFractionDigits: digits });
  return `${n(s.median)}${unit}` + (s.n > 1 ? ` (${n(s.min)}-${n(s.max)})` : '');
};

async function main() {
  let o;
  try {
    o = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`bench:runtimes: ${e.message}\n\n${USAGE}`);
    return 64;
  }
  if (o.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  o.loader ??= hasWrk() ? 'wrk' : 'autocannon';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'c2-runtimes-'));
  const runtimes = ['node', 'bun'];
  const got = { node: [], bun: [] };
  const started = Date.now();
  try {
    for (let r = 0; r < o.repeats; r++)
      for (const rt of runtimes) got[rt].push(await benchOnce(rt, o, path.join(dir, `${rt}-${r}.json`)));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const rows = [];
  for (const rt of runtimes) {
    const runs = got[rt];
    const pick = (f) => summary(runs.map(f).filter((x) => typeof x === 'number'));
    const steady = (strategy, kind) => (d) => d.summary.steady?.[strategy]?.[kind]?.rps?.median;
    const ratio = (kind) => (d) => steady('defaults', kind)(d) / steady('reference', kind)(d);
    const reloads = runs.flatMap((d) => d.runs.reload?.defaults ?? []);
    rows.push({
      runtime: runs[0].meta.serverRuntime,
      active: runs[0].summary.steady?.defaults?.active,
      keepalive: pick(steady('defaults', 'keepalive')),
      keepaliveRef: pick(ratio('keepalive')),
      close: pick(steady('defaults', 'close')),
      closeRef: pick(ratio('close')),
      closeReference: pick(steady('reference', 'close')),
      reloadFailed: reloads.reduce((n, x) => n + x.failed, 0),
      reloadRequests: reloads.reduce((n, x) => n + x.ok + x.failed, 0),
      reloadWall: summary(reloads.map((x) => x.wall).filter((x) => typeof x === 'number')),
    });
  }
  const meta = got.node[0].meta;
  const lines = [
    `cluster2 runtimes, ${new Date().toISOString()}: ${meta.cores} cores (${meta.cpu}), ${meta.loader}, ` +
      `${meta.workers} workers, ${meta.connections} connections, ${o.repeats} alternating run(s) of each runtime, ` +
      `${Math.round((Date.now() - started) / 1000)} s; load average at the start of the first run ${meta.loadavgAtStart.join(' ')}.`,
    '',
    '| runtime | strategy | keep-alive req/s | vs its reference | accept path req/s (Connection: close) | vs its reference | reference accept path req/s | reload under load: failed / requests | reload wall ms |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (x) =>
        `| ${x.runtime} | ${x.active} | ${fmt(x.keepalive)} | ${fmt(x.keepaliveRef, 2, 'x')} | ${fmt(x.close)} | ` +
        `${fmt(x.closeRef, 2, 'x')} | ${fmt(x.closeReference)} | ${x.reloadFailed} / ${x.reloadRequests.toLocaleString('en-US')} | ${fmt(x.reloadWall)} |`,
    ),
    '',
    'reference: the same app without cluster2, one process per worker on the port (Node: SO_REUSEPORT sockets; ' +
      "Bun: node:cluster workers, the only way Bun's http.Server shares a port). cluster2 on Bun: its workers " +
      "accept through a net.Server that hands Bun's http.Server each connection (lib/worker/bridge.ts).",
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`bench:runtimes: ${e.message}\n`);
    process.exit(1);
  },
);
