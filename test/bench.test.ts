// `npm run bench` works: short real runs of bench/run.js (its own processes,
// real load, real signals) that must write every figure to JSON with no
// failed request in the steady load. Nothing here asserts on speed.
import t, { type Test } from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { alive, until } from './helpers/cluster';
import { findRuntime } from './helpers/runtime';

const ROOT = path.join(__dirname, '..');
const RUN = path.join(ROOT, 'bench', 'run.js');

interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** A short run (--quick) of these strategies and scenarios; the other options as given. */
interface Run {
  strategies: string;
  scenarios: string;
  duration?: number;
  connections?: number;
  workers?: string;
  peer?: string;
  runtime?: string;
}

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
  json: any;
}

/**
 * Run the bench to its end, which must be exit code 0 (no run broke) with the JSON file
 * written (json: null if not). On teardown, SIGTERM (it stops its servers), then SIGKILL.
 */
async function bench(t: Test, run: Run): Promise<Ran> {
  const args = ['--quick', ...Object.entries(run).flatMap(([k, v]) => [`--${k}`, String(v)])];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'c2-bench-test-'));
  const file = path.join(dir, 'out.json');
  const proc: ChildProcess = spawn(process.execPath, [RUN, ...args, '--json', file], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const deadline = Date.now() + 8000;
      while (alive(proc.pid!) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      if (alive(proc.pid!)) proc.kill('SIGKILL');
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => {
    stdout += d;
  });
  proc.stderr!.on('data', (d) => {
    stderr += d;
  });
  const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
  let json: any = null;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    /* asserted below */
  }
  t.equal(code, 0, 'exit code 0 (no run broke)', { stderr });
  t.ok(json, 'the JSON file was written');
  return { code, stdout, stderr, json };
}

function isSummary(t: Test, s: Summary | null, what: string): void {
  t.ok(
    s && typeof s.median === 'number' && s.min <= s.median && s.median <= s.max && s.n >= 1,
    `${what}: a median with min and max`,
    { got: s },
  );
}

t.test('steady load, round-robin, defaults and the reference: every figure, no failed request', async (t) => {
  const r = await bench(t, { strategies: 'round-robin,defaults,reference', scenarios: 'steady', duration: 1 });
  if (!r.json) return;
  const m = r.json.meta;
  for (const k of [
    'date',
    'node',
    'cores',
    'loader',
    'pinning',
    'NODE_EXTRA_CA_CERTS',
    'cluster2Implementation',
    'bareForkIdleMs',
  ]) {
    t.ok(m[k] !== undefined && m[k] !== null, `meta.${k}`);
  }
  const rr = r.json.summary.steady['round-robin'];
  t.same(rr.failedRuns, [], 'no run broke');
  for (const mode of ['keepalive', 'close']) {
    const f = rr[mode];
    isSummary(t, f.rps, `${mode} req/s`);
    t.ok(f.rps.median > 0, `${mode}: requests were served`);
    isSummary(t, f.p50, `${mode} p50`);
    isSummary(t, f.p99, `${mode} p99`);
    isSummary(t, f.loaderCpu, `${mode} loader CPU`);
    isSummary(t, f.masterCpu, `${mode} master CPU`);
    t.equal(f.errorCount, 0, `${mode}: 0 errors`, { errors: f.errors });
    t.equal(f.shares.length, 2, `${mode}: a share for each of the 2 workers`);
    t.equal(f.vsRoundRobin.median, 1, `${mode}: round-robin against itself`);
  }
  t.match(r.stdout, /Steady load, keep-alive/, 'the terminal table');
  t.ok(r.json.runs.steady['round-robin'].length === 1, 'the raw run is in the JSON');
  const d = r.json.summary.steady.defaults;
  t.same(d.failedRuns, [], 'the defaults row ran');
  isSummary(t, d.close.vsReference, 'defaults: accept path against the reference');
  isSummary(t, d.close.p99VsReference, 'defaults: accept-path p99 against the reference');
  isSummary(t, d.keepalive.cpuVsReference, 'defaults: keep-alive CPU per request against the reference');
  const measured = r.json.targets
    .filter((x: { strategy: string }) => x.strategy === 'defaults')
    .map((x: { measures: string; pass: boolean | null }) => x.measures);
  t.ok(
    measured.includes('accept path, default options') && measured.includes('keep-alive hot path'),
    'the defaults row has its targets',
  );
  t.ok(
    r.json.targets.every(
      (x: { measures: string; pass: boolean | null; cause: string }) =>
        typeof x.measures === 'string' && (x.pass !== false || x.cause),
    ),
    'every target says what it measures, and a miss its cause',
  );
  t.match(r.stdout, /\| MET|\| MISSED/, 'targets shown as MET or MISSED');
});

const BUN = findRuntime('bun');

t.test(
  '--runtime bun: the servers on Bun, every steady and reload figure, no failed request',
  { skip: !BUN && 'no bun (CLUSTER2_TEST_BUN or PATH)' },
  async (t) => {
    process.env.CLUSTER2_BENCH_BUN = BUN;
    t.teardown(() => {
      delete process.env.CLUSTER2_BENCH_BUN;
    });
    const r = await bench(t, {
      strategies: 'defaults,reference',
      scenarios: 'steady,reload',
      duration: 1,
      runtime: 'bun',
    });
    if (!r.json) return;
    t.match(r.json.meta.serverRuntime, /^Bun \d+\.\d+\.\d+$/, 'meta: the servers ran on Bun');
    t.match(r.stderr, /servers under test on Bun/, 'a note says so');
    for (const strategy of ['defaults', 'reference']) {
      const s = r.json.summary.steady[strategy];
      t.same(s.failedRuns, [], `${strategy}: ran`);
      for (const mode of ['keepalive', 'close']) {
        t.ok(s[mode].rps.median > 0, `${strategy} ${mode}: requests were served`);
        t.equal(s[mode].errorCount, 0, `${strategy} ${mode}: 0 errors`, { errors: s[mode].errors });
        t.equal(s[mode].shares.length, 2, `${strategy} ${mode}: both workers served`);
      }
    }
    const [reload] = r.json.runs.reload.defaults;
    t.equal(reload.failed, 0, 'reload under load: 0 failed');
    t.equal(reload.replaced, 2, 'both workers replaced');
    t.ok(reload.baseline > 0, 'the reload is on the same clock as the load (its baseline is measured)');
  },
);

t.test('recycle, reload, shutdown and port busy: every figure', async (t) => {
  const r = await bench(t, {
    strategies: 'reuseport',
    scenarios: 'recycle,reload,shutdown,port-busy',
    connections: 20,
  });
  if (!r.json) return;
  const S = r.json.summary;
  const rec = S.recycle.reuseport;
  for (const k of [
    'triggerToForked',
    'forkedToListening',
    'triggerToListening',
    'triggerToGone',
    'bareFork',
    'overBare',
    'bootLoaded',
    'bootListening',
    'bareLoaded',
    'bareListening',
  ])
    isSummary(t, rec[k], `recycle ${k}`);
  t.type(rec.failedTotal, 'number', 'recycle: failed requests counted');
  t.same(rec.replacements, ['spare'], 'recycle: the replacement was the spare');
  const rel = S.reload.reuseport;
  for (const k of ['wall', 'allOldGone', 'dipPct', 'baseline']) isSummary(t, rel[k], `reload ${k}`);
  t.same(rel.outcomes, ['ok'], 'the reload completed');
  t.same(rel.replaced, ['2/2'], 'both workers were replaced');
  t.ok(rel.chart && rel.chart.timeline.length > 5, 'reload: the timeline per 100 ms');
  for (const k of ['latP50', 'latP99', 'latMax']) {
    isSummary(t, rel[k], `reload latency ${k}`);
    isSummary(t, rec[k], `recycle latency ${k}`);
  }
  t.ok(rel.opened.median >= 20, 'reload: every connection was made anew on the new workers');
  t.type(rel.notRecovered, 'number', 'reload: runs not back to 90% counted');
  t.ok(
    rel.recoverMs === null || typeof rel.recoverMs.median === 'number',
    'reload: time back to 90% of the throughput before',
  );
  const sd = S.shutdown.reuseport;
  isSummary(t, sd.signalToExit, 'shutdown signal to exit');
  t.ok(sd.inflight.median > 0, 'shutdown: requests were in flight at the signal');
  t.same(sd.exitCodes, [0], 'shutdown: the master exited 0');
  const pb = S['port-busy'].reuseport;
  isSummary(t, pb.timeToExit, 'port busy: time to exit');
  t.same(pb.exitCodes, [69], 'port busy: exit code 69');
  t.ok(Array.isArray(r.json.targets) && r.json.targets.length > 0, 'the targets are checked');
  t.type(r.json.meta.stealPct, 'number', "the hypervisor's share of the CPU time during the run");
});

t.test("the reload's control: every connection made anew, nothing replaced, no target", async (t) => {
  const r = await bench(t, { strategies: 'reference', scenarios: 'reload', connections: 20 });
  if (!r.json) return;
  const c = r.json.summary.reload.reference;
  t.same(c.replaced, ['0/2'], 'no process was replaced');
  t.ok(c.opened.median >= 20, 'the client made every connection anew');
  t.equal(c.failedTotal, 0, 'no request failed');
  isSummary(t, c.baseline, 'the baseline');
  t.equal(c.wall, null, 'no reload wall time');
  t.ok(c.recoverMedian === null || typeof c.recoverMedian === 'number', 'its time back to 90%');
  t.notOk(
    r.json.targets.some((x: { strategy: string }) => x.strategy === 'reference'),
    'the control has no target of its own',
  );
  t.match(r.stdout, /reference: reconnect only \(the control\)/, 'the row names it');
});

t.test('back to 90%: the first 500 ms held at 90% of the baseline, not the last slot below', async (t) => {
  const { recovery } = require('../bench/replacement') as {
    recovery: (timeline: number[], t0: number, from: number, baseline: number) => number | null;
  };
  // Slots of 100 ms from 0; the reload at 1000 ms (slot 10); a baseline of 100 requests per slot.
  const before = Array(10).fill(100);
  const flat = (n: number, v: number) => Array(n).fill(v);
  t.equal(recovery([...before, ...flat(10, 100)], 0, 1000, 100), 0, 'never below: 0');
  const dip = [...before, 40, 40, 40];
  t.equal(recovery([...dip, ...flat(10, 100)], 0, 1000, 100), 400, 'back from the slot whose neighbours average 90');
  t.equal(
    recovery([...dip, ...flat(7, 100), 20, 20, 20, 100], 0, 1000, 100),
    400,
    'a noisy slot late in the window does not undo it',
  );
  t.equal(recovery([...before, ...flat(10, 50)], 0, 1000, 100), null, 'never back: null');
  t.equal(recovery([...dip, 100, 100, 100], 0, 1000, 100), null, 'back for less than 500 ms at the end: null');
  const { medianNotBackLast } = require('../bench/summarize') as {
    medianNotBackLast: (values: (number | null)[]) => number | null;
  };
  t.equal(
    medianNotBackLast([300, null, 100, 200, 0]),
    200,
    'the median of the runs, one not back counted as the longest',
  );
  t.equal(medianNotBackLast([300, null, null, 200]), null, 'half the runs not back: not back');
  t.equal(medianNotBackLast([]), null, 'no run: null');
});

t.test("the hypervisor's steal, from /proc/stat", async (t) => {
  const { machineTicks, stealShare } = require('../bench/procstat') as {
    machineTicks: () => { all: number; steal: number } | null;
    stealShare: (a: { all: number; steal: number } | null, b: { all: number; steal: number } | null) => number | null;
  };
  const now = machineTicks();
  t.ok(now && now.all > 0 && now.steal >= 0, 'the ticks so far');
  t.equal(
    stealShare({ all: 1000, steal: 10 }, { all: 2000, steal: 60 }),
    0.05,
    'the share stolen between two readings',
  );
  t.equal(stealShare(null, now), null, 'no reading: null');
  t.equal(stealShare(now, now), null, 'no time between the readings: null');
});

t.test("sizes: start, reload and shutdown at each number of workers, with the master's CPU and RSS", async (t) => {
  const r = await bench(t, { strategies: 'defaults', scenarios: 'sizes', workers: '2,3', connections: 10 });
  if (!r.json) return;
  const s = r.json.summary.sizes.defaults;
  t.same(Object.keys(s.bySize), ['2', '3'], 'one entry per size of --workers');
  for (const n of ['2', '3']) {
    const z = s.bySize[n];
    for (const k of ['start', 'reload', 'shutdown', 'idleCpu', 'reloadCpu', 'rss', 'rssPeak'])
      isSummary(t, z[k], `${n} workers: ${k}`);
    t.same(z.outcomes, ['ok'], `${n} workers: the reload completed`);
    t.same(z.exitCodes, [0], `${n} workers: the shutdown exited 0`);
    t.equal(z.concurrency, 1, `${n} workers: replaced one at a time`);
  }
  t.match(r.stdout, /Start, reload and shutdown by number of workers/, 'the terminal table');
});

t.test('upgrade: every figure', async (t) => {
  const r = await bench(t, { strategies: 'round-robin', scenarios: 'upgrade', connections: 20 });
  if (!r.json) return;
  const up = r.json.summary.upgrade['round-robin'];
  for (const k of ['wall', 'allOldGone', 'oldMasterRetired', 'dipPct', 'baseline']) isSummary(t, up[k], `upgrade ${k}`);
  t.same(up.outcomes, ['ok'], 'the upgrade completed');
  t.type(up.failedTotal, 'number', 'failed requests counted');
  t.match(r.stdout, /Upgrade of the master/, 'its table');
});

/** pm2 for the peer test: PM2_BIN, else on PATH (the bench also looks in node_modules/.bin). */
function findPm2(): string | null {
  if (process.env.PM2_BIN) return fs.existsSync(process.env.PM2_BIN) ? process.env.PM2_BIN : null;
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir && fs.existsSync(path.join(dir, 'pm2'))) return path.join(dir, 'pm2');
  }
  return null;
}

const pm2 = findPm2();
t.test(
  '--peer pm2: PM2 cluster mode through the steady load, its own row, no daemon left',
  {
    skip: pm2 ? false : 'pm2 is not installed (set PM2_BIN or put pm2 on PATH; it is not a dependency)',
  },
  async (t) => {
    const r = await bench(t, { peer: 'pm2', strategies: 'round-robin', scenarios: 'steady', duration: 1 });
    if (!r.json) return;
    t.match(r.json.meta.peers?.pm2, /^pm2 \d+\.\d+/, 'the pm2 version in meta');
    const p = r.json.summary.steady.pm2;
    t.ok(p, 'a pm2 row in the steady summary');
    if (!p) return;
    t.same(p.failedRuns, [], 'the pm2 run did not break');
    for (const mode of ['keepalive', 'close']) {
      isSummary(t, p[mode].rps, `pm2 ${mode} req/s`);
      t.ok(p[mode].rps.median > 0, `pm2 ${mode}: requests were served`);
      t.equal(p[mode].errorCount, 0, `pm2 ${mode}: 0 errors`, { errors: p[mode].errors });
    }
    t.notOk(
      r.json.targets.some((x: { strategy: string }) => x.strategy === 'pm2'),
      'pm2 is not in the targets',
    );
    t.match(r.stdout, /\| pm2 /, 'a pm2 row in the terminal table');
    // Its PM2_HOME is gone, and with it the daemon (pm2 kill at the end).
    const home = /PM2_HOME (\S+)/.exec(r.json.notes.join(' '));
    t.ok(home, 'the PM2_HOME is in the notes');
    if (home) t.notOk(fs.existsSync(home[1]), 'the temporary PM2_HOME was removed');
  },
);

t.test('shutdown-burst: answered, refused and reset per strategy, 0 reset', async (t) => {
  const r = await bench(t, { strategies: 'reuseport,round-robin', scenarios: 'shutdown-burst' });
  if (!r.json) return;
  for (const s of ['reuseport', 'round-robin']) {
    const b = r.json.summary['shutdown-burst'][s];
    for (const k of ['answered', 'refused', 'reset', 'signalToExit']) isSummary(t, b[k], `${s} ${k}`);
    t.equal(b.answered.median + b.refused.median + b.reset.median, 600, `${s}: each of the 600 connections counted`);
    t.equal(b.failedTotal, 0, `${s}: 0 reset`, { errors: b.errors });
    t.same(b.exitCodes, [0], `${s}: the master exited 0`);
  }
  t.ok(
    r.json.targets.some((x: { target: string }) => /0 connections reset/.test(x.target)),
    'the 0-reset target is checked',
  );
  t.match(r.stdout, /new connections fired at the signal/, 'the terminal table');
});

t.test('websocket and http2 scenarios, reuseport: close codes, reconnect time, no failed stream', async (t) => {
  const r = await bench(t, { strategies: 'reuseport', scenarios: 'websocket,http2', connections: 10 });
  const ws = r.json?.summary?.websocket?.reuseport;
  t.ok(ws, 'websocket figures');
  isSummary(t, ws?.allReconnected, 'time until every client is on a new worker');
  t.equal(ws?.abnormal, 0, 'no socket cut without a close frame (1006)');
  t.ok(ws?.codes?.['1012'] >= 10, 'closed with 1012 Service Restart', { codes: ws?.codes });
  const h2 = r.json?.summary?.http2?.reuseport;
  isSummary(t, h2?.steadyRps, 'HTTP/2 steady streams/s');
  t.equal(h2?.failed, 0, 'no HTTP/2 stream failed');
  t.match(r.stdout, /WebSocket clients through a rolling reload/, 'the websocket table');
  t.match(r.stdout, /HTTP\/2 \(h2c\)/, 'the http2 table');
});

t.test('bench:runtimes: usage, and a bad option exits 64', async (t) => {
  const runtimes = path.join(ROOT, 'bench', 'runtimes.js');
  const { spawnSync } = await import('node:child_process');
  const help = spawnSync(process.execPath, [runtimes, '--help'], { encoding: 'utf8' });
  t.equal(help.status, 0);
  t.match(help.stdout, /usage: node bench\/runtimes\.js/);
  const bad = spawnSync(process.execPath, [runtimes, '--repeats', '0'], { encoding: 'utf8' });
  t.equal(bad.status, 64);
  t.match(bad.stderr, /--repeats must be a whole number >= 1/);
});

/** Live descendants of `root` by parent pid, from /proc, each with its start time (a pid may be reused later). */
function descendants(root: number): Map<number, string> {
  const parent = new Map<number, number>();
  const start = new Map<number, string>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (f[0] === 'Z') continue;
      parent.set(Number(name), Number(f[1]));
      start.set(Number(name), f[19]);
    } catch {
      /* gone */
    }
  }
  const out = new Map<number, string>();
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.set(pid, start.get(pid)!);
        break;
      }
    }
  }
  return out;
}

/** The process that had this start time still runs (not a zombie). */
function stillRuns(pid: number, start: string): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return f[0] !== 'Z' && f[19] === start;
  } catch {
    return false;
  }
}

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim();
  } catch {
    return '';
  }
}

// Issue 25, item 11: an interrupted bench leaves nothing running (it had left a master and its
// workers, reparented to pid 1). Two strategies: once the first is cut short, the bench must not
// start the second (which it did, while it stopped the first).
for (const how of ['SIGINT', 'SIGTERM', 'SIGHUP', 'an uncaught error'] as const) {
  t.test(`interrupted by ${how} while its cluster runs: every process it started is gone`, async (t) => {
    const uncaught = how === 'an uncaught error';
    const args = ['--quick', '--strategies', 'reuseport,round-robin', '--scenarios', 'steady', '--duration', '60'];
    const proc = spawn(process.execPath, [RUN, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
      // Its own group: a signal from here reaches it alone, as a CI's SIGTERM to its pid does.
      detached: true,
      // BENCH_TEST_UNCAUGHT=1: SIGUSR2 makes it throw (an uncaught error).
      env: { ...process.env, ...(uncaught ? { BENCH_TEST_UNCAUGHT: '1' } : {}) },
    });
    const seen = new Map<number, string>();
    const commands = new Map<number, string>();
    t.teardown(() => {
      for (const pid of [proc.pid!, ...seen.keys()]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    });
    let stderr = '';
    proc.stderr!.on('data', (d) => {
      stderr += d;
    });
    const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
    let ended = false;
    void exited.then(() => (ended = true));
    const look = () => {
      for (const [pid, start] of descendants(proc.pid!)) {
        if (!seen.has(pid)) commands.set(pid, cmdline(pid));
        seen.set(pid, start);
      }
    };
    // Until its cluster runs: a master of bench/apps/cluster.js and its two workers.
    await until(
      () => {
        if (ended) throw new Error(`the bench exited before its cluster ran: ${stderr}`);
        look();
        return [...commands.values()].filter((c) => c.includes('worker/entry.js')).length >= 2;
      },
      60_000,
      'the cluster to run',
    );
    proc.kill(uncaught ? 'SIGUSR2' : how);
    // Whatever it starts up to its exit is seen too.
    while (!ended) {
      look();
      await new Promise((r) => setTimeout(r, 20));
    }
    const code = await exited;
    t.equal(code, { SIGHUP: 129, SIGINT: 130, SIGTERM: 143, 'an uncaught error': 1 }[how], 'its exit code');
    t.match(
      stderr,
      /^bench: (interrupted|uncaught error)[^]*; stopping everything it started$/m,
      'it says why it stops',
    );
    t.ok(
      [...commands.values()].some((c) => / [^ ]*bench\/apps\/cluster\.js$/.test(c)),
      'a master was among them',
    );
    await until(() => [...seen].every(([pid, start]) => !stillRuns(pid, start)), 15_000, 'every descendant to be gone');
    t.pass(`none of the ${seen.size} processes it started is left`);
  });
}
