// Operations that meet an upgrade (issue 24, finding 1 and the keeper of finding 6): every
// ending (SIGTERM, SIGINT, SIGINT twice, SIGQUIT, cluster2 stop, cluster2 shutdown, a
// SIGKILL of either master) at each moment of an upgrade (the new master booting; the new
// master serving while the old one's workers drain; the old one keeping the new one)
// ends with exactly one master that serves, or with none and the port free. Never a
// master that says running while its port does not answer; nothing left behind.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { run, startCli, statusOf, type Started } from './helpers/cli';
import { alive, tmpdir, until } from './helpers/cluster';
import { request } from './helpers/http';

type Moment = 'booting' | 'handing-over' | 'keeping';
type Ending = 'SIGTERM' | 'SIGINT' | 'SIGINT x2' | 'SIGQUIT' | 'stop' | 'shutdown' | 'SIGKILL old' | 'SIGKILL new';

interface Upgrading {
  m: Started;
  neo: number;
  old: number[];
  hold: string;
}

function pidFiles(dir: string, role: 'master' | 'worker'): number[] {
  try {
    return fs
      .readdirSync(dir)
      .map((f) => new RegExp(`^${role}\\.(\\d+)\\.pid$`).exec(f))
      .filter((x) => x)
      .map((x) => Number(x![1]));
  } catch {
    return [];
  }
}

/** The port can be bound: nothing listens on it any more. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, () => s.close(() => resolve(true)));
  });
}

/** Start, then upgrade (SIGUSR2) and stop at `moment`. */
async function upgradeTo(t: Test, moment: Moment): Promise<Upgrading> {
  const hold = path.join(tmpdir('c2comb-'), 'hold');
  const m = await startCli(t, { env: { C2_CLI_HOLD_FILE: hold } });
  const old = pidFiles(m.pids, 'worker');
  if (moment === 'booting') fs.writeFileSync(hold, '');
  // A slow request keeps an old worker draining: the old master hands over for as long as it runs.
  const slow = moment === 'handing-over' ? request(m.port, '/slow?ms=4000', { timeout: 20_000 }) : undefined;
  slow?.catch(() => {});
  if (slow)
    await until(
      () => statusOf(m.pids).then((s) => s[0]?.workers.some((w: any) => w.open > 0)),
      10_000,
      'the slow request',
    );
  process.kill(m.pid, 'SIGUSR2');
  const neo = (await m.waitFor('upgrading')).master as number;
  if (moment === 'booting') await m.waitFor('forked', (l) => l.pid === neo);
  else if (moment === 'handing-over') await m.waitFor('upgraded');
  else await m.waitFor('keeping', (l) => l.master === neo, 30_000);
  return { m, neo, old, hold };
}

/** Bring the ending; resolves with the command's outcome for `cluster2 stop|shutdown`, at once for a signal. */
function end(u: Upgrading, how: Ending): Promise<string | null> {
  const { m, neo } = u;
  switch (how) {
    case 'SIGINT x2':
      // Two Ctrl-C: the second once the first has reached the master (signals sent at once merge).
      process.kill(m.pid, 'SIGINT');
      return m.waitFor('SIGINT').then(() => {
        process.kill(m.pid, 'SIGINT');
        return null;
      });
    case 'stop':
    case 'shutdown':
      return run([how, '--pids', m.pids], { timeout: 60_000 }).then((r) =>
        r.code === 0 ? null : `cluster2 ${how} exited ${r.code}: ${r.stderr}`,
      );
    case 'SIGKILL old':
      process.kill(m.pid, 'SIGKILL');
      return Promise.resolve(null);
    case 'SIGKILL new':
      process.kill(neo, 'SIGKILL');
      return Promise.resolve(null);
    default:
      process.kill(m.pid, how);
      return Promise.resolve(null);
  }
}

/** Whatever serves answers: every master that says running answers on its port within 1 s. */
async function noBlackHole(t: Test, u: Upgrading): Promise<void> {
  for (const s of await statusOf(u.m.pids).catch(() => [])) {
    if (s.state !== 'running') continue;
    const r = await request(s.port, '/', { timeout: 1000 }).catch((e: Error) => ({ status: 0, body: e.message }));
    t.equal(r.status, 200, `master ${s.pid} says running and answers (${r.body.slice(0, 60)})`);
  }
}

/** The service is gone: every process ended, no pid file, the port free. */
async function gone(t: Test, u: Upgrading): Promise<void> {
  const { m, neo } = u;
  await until(() => !alive(m.pid) && !alive(neo), 30_000, 'both masters to exit');
  await until(() => pidFiles(m.pids, 'worker').every((p) => !alive(p)), 30_000, 'every worker to exit');
  t.same(pidFiles(m.pids, 'master'), [], 'no master pid file');
  t.ok(await until(() => portFree(m.port), 10_000, 'the port to be free'), 'the port is free');
}

/** The old master alone serves on, as before the upgrade. */
async function oldServes(t: Test, u: Upgrading): Promise<void> {
  const { m, neo } = u;
  await until(() => !alive(neo), 30_000, 'the new master to exit');
  t.ok(alive(m.pid), 'the old master runs');
  t.same(pidFiles(m.pids, 'master'), [m.pid], 'its pid file is the only one');
  const [s] = await statusOf(m.pids);
  t.equal(s.state, 'running', 'it says running');
  t.equal((await request(m.port, '/')).status, 200, 'and answers');
}

const ENDINGS: Ending[] = [
  'SIGTERM',
  'SIGINT',
  'SIGINT x2',
  'SIGQUIT',
  'stop',
  'shutdown',
  'SIGKILL old',
  'SIGKILL new',
];

const expected: Record<Moment, Partial<Record<Ending, { code: number | 'killed' | 137; outcome: 'gone' | 'old' }>>> = {
  // The new master is booting: an ending of the old one cancels the upgrade, and the new one ends too.
  booting: {
    SIGTERM: { code: 0, outcome: 'gone' },
    SIGINT: { code: 0, outcome: 'gone' },
    'SIGINT x2': { code: 0, outcome: 'gone' },
    SIGQUIT: { code: 0, outcome: 'gone' },
    stop: { code: 0, outcome: 'gone' },
    shutdown: { code: 0, outcome: 'gone' },
    'SIGKILL old': { code: 'killed', outcome: 'gone' },
    'SIGKILL new': { code: 0, outcome: 'old' },
  },
  // The new master serves, the old one's workers drain: everything is passed to the new one.
  'handing-over': {
    SIGTERM: { code: 0, outcome: 'gone' },
    SIGINT: { code: 0, outcome: 'gone' },
    'SIGINT x2': { code: 0, outcome: 'gone' },
    SIGQUIT: { code: 0, outcome: 'gone' },
    stop: { code: 0, outcome: 'gone' },
    shutdown: { code: 0, outcome: 'gone' },
    'SIGKILL old': { code: 'killed', outcome: 'gone' },
    'SIGKILL new': { code: 137, outcome: 'gone' },
  },
  // The started process keeps the new master.
  keeping: {
    SIGTERM: { code: 0, outcome: 'gone' },
    'SIGINT x2': { code: 0, outcome: 'gone' },
    stop: { code: 0, outcome: 'gone' },
    'SIGKILL old': { code: 'killed', outcome: 'gone' },
    'SIGKILL new': { code: 137, outcome: 'gone' },
  },
};

for (const moment of ['booting', 'handing-over', 'keeping'] as Moment[]) {
  for (const how of ENDINGS) {
    const want = expected[moment][how];
    if (!want) continue;
    t.test(
      `${how} while the upgrade is at "${moment}": ${want.outcome === 'old' ? 'the old master serves on' : 'nothing is left, the port is free'}`,
      async (t) => {
        const u = await upgradeTo(t, moment);
        await noBlackHole(t, u);
        const ended = end(u, how);
        // A new master held at boot gets on with its ending once its workers may start.
        fs.rmSync(u.hold, { force: true });
        t.equal(await ended, null, `${how} went through`);
        if (want.outcome === 'old') {
          await oldServes(t, u);
          await noBlackHole(t, u);
          return;
        }
        const exit = await u.m.exited;
        if (want.code === 'killed') t.equal(exit.signal, 'SIGKILL', 'the started process was killed');
        else t.equal(exit.code, want.code, `the started process exits ${want.code}`);
        await gone(t, u);
      },
    );
  }
}

t.test('the started process stays through two upgrades and a shutdown, and carries the exit code', async (t) => {
  const pidFile = path.join(tmpdir('c2pf-'), 'app.pid');
  const m = await startCli(t, { args: ['--pid-file', pidFile] });
  const held = () => fs.readFileSync(pidFile, 'utf8').trim();
  t.equal(held(), String(m.pid), '--pid-file holds the started process');
  const first = JSON.parse((await run(['upgrade', '--pids', m.pids, '--json'], { timeout: 120_000 })).stdout);
  t.equal(first.from, m.pid, 'the first upgrade replaced the started master');
  t.ok(alive(m.pid), 'the started process is alive after the first upgrade');
  const second = JSON.parse((await run(['upgrade', '--pids', m.pids, '--json'], { timeout: 120_000 })).stdout);
  t.equal(second.from, first.to, 'the second replaced the first new master');
  t.ok(alive(m.pid), 'the started process is alive after the second upgrade');
  await until(() => !alive(first.to), 10_000, 'the first new master to exit once it retired');
  t.same(pidFiles(m.pids, 'master'), [second.to], 'one master pid file: the newest');
  t.equal(held(), String(m.pid), '--pid-file still holds the started process');
  t.equal((await request(m.port, '/')).status, 200);
  // Ctrl-C in a terminal: forwarded, the newest master shuts down.
  process.kill(m.pid, 'SIGINT');
  const exit = await m.exited;
  t.equal(exit.code, 0, 'the started process exits with the last master code (0)');
  t.notOk(alive(second.to), 'the newest master is gone');
  t.ok(await portFree(m.port), 'the port is free');
  t.notOk(fs.existsSync(pidFile), '--pid-file is removed');
});
