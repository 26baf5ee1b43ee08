// Two operations whose effects meet (issue 24): what the master does with an operation asked
// for while another is under way (lib/master/lifecycle.ts, docs: the state x operation table).
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { run, startCli } from './helpers/cli';
import { alive, startApp, tmpdir, until } from './helpers/cluster';
import { request } from './helpers/http';

/** A start held at boot: the workers wait until the hold file is gone. */
async function heldStart(t: Test) {
  const hold = path.join(tmpdir('c2hold-'), 'hold');
  fs.writeFileSync(hold, '');
  const m = await startCli(t, { env: { C2_CLI_HOLD_FILE: hold }, ready: false });
  await until(() => m.lines.filter((l) => l.event === 'forked').length >= 2, 30_000, 'both workers forked');
  return { m, release: () => fs.rmSync(hold, { force: true }) };
}

t.test('SIGHUP during the start: the workers are replaced once the start completes', async (t) => {
  const { m, release } = await heldStart(t);
  const booted = m.lines.filter((l) => l.event === 'forked').map((l) => l.worker as number);
  process.kill(m.pid, 'SIGHUP');
  await m.waitFor('SIGHUP');
  release();
  await m.waitFor('ready', undefined, 30_000);
  const done = await m.waitFor('reloaded', undefined, 60_000);
  t.same(
    (done.workers as [number, number][]).map(([o]) => o).sort(),
    booted.sort(),
    'the reload replaced every worker forked before the SIGHUP',
  );
  await until(() => booted.every((p) => !alive(p)), 30_000, 'the workers of the start to exit');
  process.kill(m.pid, 'SIGTERM');
  t.equal((await m.exited).code, 0);
});

t.test('cluster2 reload during the start waits for it, then reloads', async (t) => {
  const { m, release } = await heldStart(t);
  const reload = run(['reload', '--pids', m.pids, '--json'], { timeout: 120_000 });
  await m.waitFor('control', (l) => l.request === 'reload');
  release();
  const r = await reload;
  t.equal(r.code, 0, `exit 0 (${r.stderr})`);
  const booted = m.lines
    .filter((l) => l.event === 'forked')
    .map((l) => l.worker as number)
    .slice(0, 2);
  const [answer] = JSON.parse(r.stdout);
  t.equal(answer.result.workers.length, 2, 'two workers serve');
  t.notOk(
    answer.result.workers.some((p: number) => booted.includes(p)),
    'none of them is a worker of the start',
  );
  process.kill(m.pid, 'SIGTERM');
  t.equal((await m.exited).code, 0);
});

t.test('SIGTERM during the start, before any worker is up: exit 0, nothing left', async (t) => {
  const { m, release } = await heldStart(t);
  const workers = m.lines.filter((l) => l.event === 'forked').map((l) => l.worker as number);
  process.kill(m.pid, 'SIGTERM');
  await m.waitFor('SIGTERM');
  release();
  t.equal((await m.exited).code, 0, 'exit 0');
  t.notOk(workers.some(alive), 'no worker is left');
});

t.test(
  'SIGTERM during a reload: the reload is cancelled (so says the log), the service shuts down, exit 0',
  async (t) => {
    const hold = path.join(tmpdir('c2hold-'), 'hold');
    const m = await startCli(t, { env: { C2_CLI_HOLD_FILE: hold } });
    fs.writeFileSync(hold, '');
    const reload = run(['reload', '--pids', m.pids], { timeout: 60_000 });
    await until(() => m.lines.filter((l) => l.event === 'forked').length >= 3, 30_000, 'a replacement forked');
    process.kill(m.pid, 'SIGTERM');
    await m.waitFor('SIGTERM');
    fs.rmSync(hold);
    const r = await reload;
    t.equal(r.code, 1, 'cluster2 reload exits 1');
    t.match(r.stderr, /reload cancelled: the master is shutting down/, 'saying it was cancelled');
    t.match(m.stderr(), /reload cancelled: the master is shutting down/, 'and so does the master');
    t.notMatch(m.stderr(), /the old workers keep serving/, 'not "the old workers keep serving"');
    t.equal((await m.exited).code, 0, 'exit 0');
  },
);

t.test('SIGHUP during a reload: one more full reload after it', async (t) => {
  const m = await startCli(t);
  const first = m.lines.filter((l) => l.event === 'forked').map((l) => l.worker as number);
  process.kill(m.pid, 'SIGHUP');
  await m.waitFor('forked', (l) => !first.includes(l.worker));
  process.kill(m.pid, 'SIGHUP');
  process.kill(m.pid, 'SIGHUP'); // asked twice meanwhile: one more reload, not two
  const second = await m.waitFor('reloaded', (l) => l !== m.lines.find((x) => x.event === 'reloaded'), 60_000);
  const reloads = () => m.lines.filter((l) => l.event === 'reloaded').length;
  t.equal(reloads(), 2, 'two reloads');
  const mid = (m.lines.find((l) => l.event === 'reloaded')!.workers as [number, number][]).map(([, n]) => n);
  t.same(
    (second.workers as [number, number][]).map(([o]) => o).sort(),
    mid.sort(),
    'the second replaced the workers of the first',
  );
  process.kill(m.pid, 'SIGTERM');
  t.equal((await m.exited).code, 0);
  t.equal(reloads(), 2, 'no third one');
});

t.test('an operation refused during a shutdown says why on stderr, also with no warning listener', async (t) => {
  // The API app prints no warnings itself: the refusal must still reach the operator.
  const app = await startApp(t, { opts: { gracefulTimeout: 20_000 }, env: { C2_NO_WARNING_LISTENER: '1' } });
  const slow = request(app.port, '/slow?ms=1500').catch(() => undefined);
  process.kill(app.pid, 'SIGTERM');
  await app.waitFor('SIGTERM');
  process.kill(app.pid, 'SIGHUP');
  await until(() => /reload refused: the master is shutting down/.test(app.stderr()), 10_000, 'the refusal on stderr');
  t.pass('the refusal is on stderr');
  await slow;
  t.equal((await app.exited).code, 0);
});
