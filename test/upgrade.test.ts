// Upgrading the master itself (cluster2 upgrade, SIGUSR2): a new master
// inherits the listening sockets, starts its workers, then the old one
// drains; nothing is refused or failed meanwhile. The process that was
// started stays (as the keeper of the new master: it forwards signals and
// exits with the last master's code). A failed upgrade leaves the old master serving.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as net from 'node:net';
import t, { type Test } from 'tap';
import { Cluster } from '../dist/index.js';
import { run, startCli, type LogLine, type Started } from './helpers/cli';
import { alive, tmpdir, until } from './helpers/cluster';
import { request, startLoad } from './helpers/http';
import { node22 } from './helpers/fetched';

/** A Node >= 22.12: CLUSTER2_TEST_NODE22, or fetched from npm into node_modules/.cache (helpers/node22). */
const NODE22 = node22();

/** Pids of a role with a pid file in the directory. */
function pidFiles(dir: string, role: 'master' | 'worker'): number[] {
  return fs
    .readdirSync(dir)
    .map((f) => new RegExp(`^${role}\\.(\\d+)\\.pid$`).exec(f))
    .filter((m) => m)
    .map((m) => Number(m![1]))
    .sort();
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function ppid(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** A log line (from any master writing to this stderr), polled: the first master may have exited already. */
function line(
  m: Started,
  event: string,
  pred: (l: LogLine) => boolean = () => true,
  timeout = 60_000,
): Promise<LogLine> {
  return until(() => m.lines.find((l) => l.event === event && pred(l)), timeout, `a ${event} line`) as Promise<LogLine>;
}

/** The old master retired: it stays as the keeper (the process the test started), without pid file or worker. */
async function checkRetired(t: Test, m: Started, before: number[]): Promise<void> {
  await until(() => m.lines.some((l) => l.event === 'retired' && l.from === m.pid), 60_000, 'the old master to retire');
  t.ok(alive(m.pid), 'the started process stays (the keeper)');
  t.notOk(pidFiles(m.pids, 'master').includes(m.pid), 'the keeper has no master pid file');
  t.notOk(before.some(alive), 'no old worker is left');
}

/** After an upgrade from `old` to `neo`: pid files, workers, parents. */
async function checkReplaced(t: Test, m: Started, before: number[], neo: number): Promise<void> {
  await checkRetired(t, m, before);
  await until(() => pidFiles(m.pids, 'worker').every((p) => !before.includes(p)), 30_000, 'the old workers to go');
  t.same(pidFiles(m.pids, 'master'), [neo], 'one master pid file: the new master');
  t.equal(ppid(neo), m.pid, "the new master is the started process's child");
  const workers = pidFiles(m.pids, 'worker');
  t.equal(workers.length, 2, 'two workers');
  t.ok(
    workers.every((w) => alive(w) && ppid(w) === neo),
    "every worker is the new master's",
  );
  t.equal((await request(m.port, '/ecv')).status, 200, 'ECV is AVAILABLE');
}

/** SIGTERM to the started process: forwarded, the new master shuts down, then the keeper exits 0; nothing left. */
async function shutdownThroughKeeper(t: Test, m: Started, neo: number): Promise<void> {
  const workers = pidFiles(m.pids, 'worker');
  process.kill(m.pid, 'SIGTERM');
  t.equal((await m.exited).code, 0, 'the started process exits 0 after the shutdown');
  t.notOk([neo, ...workers].some(alive), 'the new master and its workers are gone');
  t.same(pidFiles(m.pids, 'master'), [], 'no master pid file is left');
}

for (const strategy of ['reuseport', 'round-robin', 'shared']) {
  for (const [how, fresh] of [
    ['cluster2 upgrade', false],
    ['SIGUSR2', true],
  ] as const) {
    const load = fresh ? 'a new connection per request' : 'keep-alive';
    t.test(`${strategy}: ${how} under ${load} load fails no request`, async (t) => {
      const m = await startCli(t, { args: ['--strategy', strategy] });
      const before = pidFiles(m.pids, 'worker');
      const l = startLoad(m.port, { connections: fresh ? 12 : 24, fresh });
      await l.served(300, 30_000);
      if (how === 'SIGUSR2') process.kill(m.pid, 'SIGUSR2');
      else {
        const r = await run(['upgrade', '--pids', m.pids, '--json'], { timeout: 120_000 });
        t.equal(r.code, 0, `cluster2 upgrade exits 0 (${r.stderr})`);
        const answer = JSON.parse(r.stdout);
        t.equal(answer.from, m.pid, 'from the old master');
        t.notOk(before.some(alive), 'the command returns once the old workers are gone');
      }
      const up = await line(m, 'upgraded');
      const neo = up.to as number;
      t.not(neo, m.pid, 'the master pid changed');
      await checkReplaced(t, m, before, neo);
      await l.served(300, 30_000);
      const r = await l.stop();
      t.equal(r.failed, 0, `0 failed of ${r.ok + r.failed} (${JSON.stringify(r.errors)})`);
      t.ok(
        Object.keys(r.byPid).some(
          (p) => Number(p) === pidFiles(m.pids, 'worker')[0] || Number(p) === pidFiles(m.pids, 'worker')[1],
        ),
        'the new workers served',
      );
      await shutdownThroughKeeper(t, m, neo);
    });
  }
}

t.test('the monitor socket is handed over too, and a second upgrade works from the new master', async (t) => {
  const monPort = await freePort();
  const m = await startCli(t, { args: ['--mon-port', String(monPort)] });
  const status = async () => JSON.parse((await request(monPort, '/status')).body).pid as number;
  t.equal(await status(), m.pid, "the monitor is the old master's");
  const r1 = await run(['upgrade', '--pids', m.pids], { timeout: 120_000 });
  t.equal(r1.code, 0, r1.stderr);
  const first = (await line(m, 'upgraded')).to as number;
  t.equal(await status(), first, 'the new master serves the monitor on the same port');
  const r2 = await run(['upgrade', '--pids', m.pids], { timeout: 120_000 });
  t.equal(r2.code, 0, r2.stderr);
  const second = (await line(m, 'upgraded', (l) => l.from === first)).to as number;
  t.not(second, first);
  t.same(pidFiles(m.pids, 'master'), [second]);
  t.equal(await status(), second);
  t.equal((await request(m.port, '/')).status, 200);
});

t.test('while the old master drains after an upgrade, the monitor answers for the new one only', async (t) => {
  const monPort = await freePort();
  const m = await startCli(t, { args: ['--mon-port', String(monPort)] });
  const slow = request(m.port, '/slow?ms=2500', { timeout: 20_000 });
  await until(
    async () => JSON.parse((await request(monPort, '/status')).body).workers.some((w: any) => w.open > 0),
    10_000,
    'the slow request',
  );
  process.kill(m.pid, 'SIGUSR2');
  const neo = (await line(m, 'upgraded')).to as number;
  const answers = new Set<string>();
  while (!m.lines.some((l) => l.event === 'retired')) {
    const st = JSON.parse((await request(monPort, '/status')).body);
    const ecv = await request(monPort, '/ecv');
    answers.add(`${st.pid} ${st.state} ECV ${ecv.status}`);
  }
  t.same([...answers], [`${neo} running ECV 200`], 'every answer: the new master, running, ECV 200');
  t.equal((await slow).status, 200, 'the slow request on the old worker was served');
  await shutdownThroughKeeper(t, m, neo);
});

t.test('with --metrics: the new master serves /metrics on the same port, never closed', async (t) => {
  const port = await freePort();
  const m = await startCli(t, { args: ['--metrics', `127.0.0.1:${port}`] });
  const scrape = async () => (await request(port, '/metrics')).body;
  t.match(await scrape(), /cluster2_workers/, "the old master's metrics");
  const r = await run(['upgrade', '--pids', m.pids, '--json'], { timeout: 120_000 });
  t.equal(r.code, 0, `cluster2 upgrade exits 0 (${r.stderr})`);
  t.match(await scrape(), /cluster2_workers/, 'the metrics port answers after the upgrade');
  const neo = JSON.parse(r.stdout).to as number;
  await shutdownThroughKeeper(t, m, neo);
});

t.test(
  'a failing upgrade (the app now throws at start) leaves the old master serving; the command exits 1',
  async (t) => {
    const fail = path.join(tmpdir('c2up-'), 'broken');
    const pidFile = path.join(tmpdir('c2up-'), 'app.pid');
    const m = await startCli(t, { env: { C2_CLI_FAIL_FILE: fail }, args: ['--pid-file', pidFile] });
    const before = pidFiles(m.pids, 'worker');
    const l = startLoad(m.port, { connections: 8 });
    await l.served(200, 30_000);
    fs.writeFileSync(fail, '');
    const r = await run(['upgrade', '--pids', m.pids], { timeout: 180_000 });
    t.equal(r.code, 1, 'cluster2 upgrade exits 1');
    t.match(
      r.stderr,
      /upgrade failed, the old master keeps serving: the new master \d+ exited \(code 70\) before it was up/,
      'with the reason',
    );
    t.match(r.stderr, /the new code is broken/, "naming the app's error");
    t.ok(alive(m.pid), 'the old master runs');
    t.same(pidFiles(m.pids, 'master'), [m.pid], 'its pid file is the only one');
    t.same(pidFiles(m.pids, 'worker'), before, 'its workers serve');
    t.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(m.pid), '--pid-file is as it was');
    await l.served(200, 30_000);
    const res = await l.stop();
    t.equal(res.failed, 0, `0 failed (${JSON.stringify(res.errors)})`);
    fs.unlinkSync(fail);
    // And it can still be upgraded once the code is fixed.
    const ok = await run(['upgrade', '--pids', m.pids], { timeout: 120_000 });
    t.equal(ok.code, 0, ok.stderr);
  },
);

t.test('a second upgrade asked while one runs is carried out by the new master', async (t) => {
  const hold = path.join(tmpdir(), 'hold');
  const m = await startCli(t, { env: { C2_CLI_HOLD_FILE: hold } });
  // The new master's workers wait until the hold file is gone: the first upgrade runs for as long as we need.
  fs.writeFileSync(hold, '');
  const first = run(['upgrade', '--pids', m.pids, '--json'], { timeout: 120_000 });
  await line(m, 'upgrading');
  const second = run(['upgrade', '--pids', m.pids, '--json'], { timeout: 120_000 });
  await until(() => m.lines.filter((l) => l.event === 'control').length >= 2, 30_000, 'both requests to arrive');
  fs.rmSync(hold);
  const [a, b] = [await first, await second];
  t.equal(a.code, 0, `the first completes (${a.stderr})`);
  t.equal(b.code, 0, `the second completes (${b.stderr})`);
  const [ra, rb] = [JSON.parse(a.stdout), JSON.parse(b.stdout)];
  t.equal(ra.from, m.pid, 'the first replaced the started master');
  t.equal(rb.from, ra.to, 'the second replaced the master the first started');
  t.same(pidFiles(m.pids, 'master'), [rb.to], 'the newest master serves alone');
  // The master between them leaves once its workers are gone, which may be just after the answer.
  await until(() => ppid(rb.to) === m.pid, 30_000, 'the newest master to be adopted by the started process');
  t.pass('adopted by the started process');
  t.equal((await request(m.port, '/')).status, 200);
  await shutdownThroughKeeper(t, m, rb.to);
});

t.test('new Cluster({ pids }).upgrade() from another script resolves once the old master has retired', async (t) => {
  const m = await startCli(t);
  const before = pidFiles(m.pids, 'worker');
  const c = new Cluster({ pids: m.pids });
  t.throws(() => c.upgrade(42 as unknown as string), TypeError, 'a node that is not a string is a TypeError');
  const r = await c.upgrade();
  t.equal(r.from, m.pid);
  t.not(r.to, m.pid);
  t.notOk(before.some(alive), 'the old workers are gone');
  t.ok(alive(m.pid), 'the started process stays');
  t.same(pidFiles(m.pids, 'master'), [r.to]);
  t.equal((await request(m.port, '/')).status, 200);
});

t.test(
  'an unknown node binary is refused; one that is not node fails the upgrade, the old master serving',
  async (t) => {
    const m = await startCli(t);
    const r = await run(['upgrade', '--pids', m.pids, '--node', '/nonexistent/node'], { timeout: 60_000 });
    t.equal(r.code, 1);
    t.match(r.stderr, /\/nonexistent\/node is not an executable file/);
    t.ok(alive(m.pid));
    // A binary that runs but is no node: the new master cannot start.
    const bad = await run(['upgrade', '--pids', m.pids, '--node', '/bin/false'], { timeout: 60_000 });
    t.equal(bad.code, 1);
    t.match(
      bad.stderr,
      /upgrade failed, the old master keeps serving: the new master \d+ exited \(code 1\) before it was up/,
    );
    t.ok(alive(m.pid), 'the old master runs');
    t.same(pidFiles(m.pids, 'master'), [m.pid]);
    t.equal((await request(m.port, '/')).status, 200);
  },
);

t.test('the upgrade switches the node binary: the new workers run it', async (t) => {
  const m = await startCli(t, { args: ['--strategy', 'reuseport'] });
  const l = startLoad(m.port, { connections: 12 });
  await l.served(200, 30_000);
  const r = await run(['upgrade', '--pids', m.pids, '--node', NODE22], { timeout: 120_000 });
  t.equal(r.code, 0, r.stderr);
  const neo = (await line(m, 'upgraded')).to as number;
  const real = fs.realpathSync(NODE22);
  t.equal(fs.readlinkSync(`/proc/${neo}/exe`), real, 'the new master runs Node 22');
  for (const w of pidFiles(m.pids, 'worker'))
    t.equal(fs.readlinkSync(`/proc/${w}/exe`), real, `worker ${w} runs Node 22`);
  await l.served(200, 30_000);
  const res = await l.stop();
  t.equal(res.failed, 0, `0 failed (${JSON.stringify(res.errors)})`);
});

t.test(
  'without the addon (Node >= 22.12, reuseport-node): each replaced master keeps the next; SIGTERM ends them all',
  async (t) => {
    const m = await startCli(t, { node: NODE22, env: { CLUSTER2_NATIVE: '0' }, args: ['--strategy', 'reuseport'] });
    const up = ['upgrade', '--pids', m.pids, '--json', '--node', NODE22];
    const first = JSON.parse((await run(up, { timeout: 120_000 })).stdout);
    const second = JSON.parse((await run(up, { timeout: 120_000 })).stdout);
    t.equal(second.from, first.to, 'the second upgrade replaced the first new master');
    t.ok(alive(first.to), 'without a subreaper, the first new master stays as the keeper of the second');
    t.equal(ppid(second.to), first.to, '... its parent');
    t.equal(ppid(first.to), m.pid, 'and the started process keeps it');
    t.same(pidFiles(m.pids, 'master'), [second.to], 'one master pid file: the newest');
    t.equal((await request(m.port, '/')).status, 200);
    process.kill(m.pid, 'SIGTERM');
    t.equal((await m.exited).code, 0, 'SIGTERM to the started process: forwarded down the chain, exit 0');
    await until(() => !alive(first.to) && !alive(second.to), 30_000, 'every master to exit');
    t.same(pidFiles(m.pids, 'master'), [], 'no master pid file');
  },
);
