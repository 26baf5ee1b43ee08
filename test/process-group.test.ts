// No stray processes (issue #17): every worker leads its own process group,
// whatever the strategy (reuseport forks detached; round-robin and shared fork
// through node:cluster, made to fork detached too), and stop, shutdown, a
// Ctrl-C and the master's death end the group, so nothing a worker started
// outlives the cluster.
import t, { type Test } from 'tap';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { alive, startApp, tmpdir, until, type App } from './helpers/cluster';
import { request } from './helpers/http';
import { pkgRequire } from './helpers/package';

type Tap = { teardown(fn: () => unknown): void };

const { forkDetached } = pkgRequire<typeof import('../lib/listen/detached-fork')>('listen/detached-fork.js');
const { Supervisor } = pkgRequire<typeof import('../lib/master/supervisor')>('master/supervisor.js');

/** The pids the workers' own children wrote, once there are n. */
async function children(t: Tap, log: string, n: number): Promise<number[]> {
  const read = () => {
    try {
      return fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  t.teardown(() => {
    for (const pid of read()) killPid(pid);
  });
  return until(() => (read().length >= n ? read() : null), 20_000, `${n} children`);
}

function killPid(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

const pgrp = (pid: number) => {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[2]);
};

/** Every worker of the app leads its own group, holding its children; none is in the master's group. */
function checkGroups(t: Test, app: App, kids: number[]): void {
  const workers = app.workers();
  for (const w of workers) t.equal(pgrp(w), w, `worker ${w} leads its own process group`);
  t.ok(
    kids.every((k) => workers.includes(pgrp(k))),
    "each child is in its worker's group, not the master's",
  );
  t.ok(kids.every(alive), 'the children run');
}

const HOWS = ['stop (SIGQUIT)', 'shutdown (SIGTERM)', 'Ctrl-C (SIGINT to the master’s group)', 'the master SIGKILLed'];

for (const strategy of ['reuseport', 'round-robin', 'shared']) {
  t.test(`strategy ${strategy}`, async (t) => {
    for (const how of HOWS) {
      t.test(`${how}: what a worker started goes too`, async (t) => {
        const log = path.join(tmpdir(), 'children');
        const app = await startApp(t, { opts: { strategy, noWorkers: 2 }, env: { C2_CHILD_LOG: log } });
        const kids = await children(t, log, 2);
        checkGroups(t, app, kids);
        const workers = app.workers();
        if (how.startsWith('Ctrl-C')) {
          // A terminal's Ctrl-C signals its foreground group: startApp made the master lead one.
          const slow = request(app.port, '/slow?ms=500&say=1');
          await app.waitFor('slow-start');
          process.kill(-app.pid, 'SIGINT');
          await app.waitFor('SIGINT');
          t.ok(kids.every(alive), 'the children are not signalled: the master decides');
          t.equal((await slow).status, 200, 'a shutdown: the request in flight is answered');
        } else {
          process.kill(
            app.pid,
            how.startsWith('stop') ? 'SIGQUIT' : how.startsWith('shutdown') ? 'SIGTERM' : 'SIGKILL',
          );
        }
        await app.exited;
        await until(() => kids.every((k) => !alive(k)), 20_000, 'the children to be gone');
        t.pass('no child outlived the cluster');
        await until(() => workers.every((w) => !alive(w)), 20_000, 'the workers to be gone');
        if (how.startsWith('shutdown') || how.startsWith('Ctrl-C')) {
          t.ok(
            app.events.filter((e) => e.ev === 'died').every((e) => e.args[1] === 0),
            'the workers still exit 0 after a drain',
          );
        }
        t.notOk(
          app.events.some((e) => e.ev === 'warning' && /process group/.test(e.args[0])),
          'no warning about process groups',
        );
      });
    }
  });
}

for (const strategy of ['round-robin', 'shared']) {
  t.test(`${strategy}: the spare leads its own group; a reload ends the old workers' groups`, async (t) => {
    const log = path.join(tmpdir(), 'children');
    const app = await startApp(t, { opts: { strategy, noWorkers: 2 }, env: { C2_CHILD_LOG: log } });
    const first = await children(t, log, 2);
    checkGroups(t, app, first);
    const spare = (await app.waitFor('spare')).args[0] as number;
    t.equal(pgrp(spare), spare, `the spare ${spare} leads its own process group`);
    const old = app.workers();
    app.send('reload');
    await app.waitFor('reloaded', undefined, 60_000);
    t.ok(app.workers().includes(spare), 'the spare became a worker');
    await until(() => first.every((k) => !alive(k)), 20_000, "the old workers' children to be gone");
    t.pass("the old workers' children went with them");
    await until(
      () => !old.some(alive) && !app.workers().some((p) => old.includes(p)),
      20_000,
      'the old workers to be gone, and reported dead',
    );
    t.pass('the old workers are gone');
    // Only now: a worker that exits meanwhile has no /proc entry left to read.
    const all = await children(t, log, 4);
    checkGroups(t, app, all.slice(2));
  });

  t.test(`${strategy} without the addon (CLUSTER2_NATIVE=0): the same, the addon is not needed`, async (t) => {
    const log = path.join(tmpdir(), 'children');
    const app = await startApp(t, {
      opts: { strategy, noWorkers: 2 },
      env: { C2_CHILD_LOG: log, CLUSTER2_NATIVE: '0' },
    });
    const kids = await children(t, log, 2);
    checkGroups(t, app, kids);
    process.kill(app.pid, 'SIGKILL');
    await app.exited;
    await until(() => kids.every((k) => !alive(k)), 20_000, 'the children to be gone');
    t.pass('no child outlived the cluster');
  });
}

/** A child process started here, killed (by pid) at teardown. */
function track<T extends ChildProcess>(t: Tap, child: T): T {
  t.teardown(() => killPid(child.pid));
  return child;
}

const sleeper = () => spawn('sleep', ['1000'], { stdio: 'ignore' });

t.test('forkDetached: the first process spawned inside leads its own group; nothing else changes', async (t) => {
  const proto = ChildProcess.prototype as unknown as { spawn: unknown };
  const original = proto.spawn;
  const [a, b] = forkDetached(() => [track(t, sleeper()), track(t, sleeper())]);
  t.equal(pgrp(a.pid!), a.pid, 'the first spawn leads its own group');
  t.equal(pgrp(b.pid!), pgrp(process.pid), 'a second spawn in the same call is left as it was');
  t.equal(proto.spawn, original, 'ChildProcess.prototype.spawn is put back');
  const c = track(t, sleeper());
  t.equal(pgrp(c.pid!), pgrp(process.pid), 'a spawn afterwards is left as it was');
  t.throws(
    () =>
      forkDetached(() => {
        throw new Error('no fork');
      }),
    { message: 'no fork' },
  );
  t.equal(proto.spawn, original, 'put back when the fork throws before it spawned');
  const d = track(
    t,
    forkDetached(() => spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore' })),
  );
  t.equal(pgrp(d.pid!), d.pid, 'node itself, spawned inside, leads its own group too');
});

/** A Listener that forks a plain node child, detached or not; the supervisor only watches it. */
function fakeListener(t: Tap, detached: boolean) {
  return {
    name: 'round-robin' as const,
    port: 1,
    fork: () => track(t, spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { stdio: 'ignore', detached })),
    forkSpare: () => {
      throw new Error('no spare here');
    },
    takeover: () => ({ env: {} }),
    resize: () => 0,
    close: () => {},
  };
}

for (const detached of [false, true]) {
  t.test(`the supervisor reads at fork whether a worker leads its group (detached: ${detached})`, async (t) => {
    const opts = { spare: false, listenTimeout: 60_000, pids: tmpdir(), gracefulTimeout: 1000, waitReady: false };
    const sup = new Supervisor(opts as never, fakeListener(t, detached) as never);
    const warnings: string[] = [];
    sup.on('warning', (m: string) => warnings.push(m));
    void sup.start(2).catch(() => {});
    const workers = [...sup.workers.values()];
    t.equal(workers.length, 2, 'two workers forked');
    t.same(
      workers.map((w) => w.group),
      [detached, detached],
      detached ? 'each leads its own group' : 'neither leads a group',
    );
    if (detached) t.same(warnings, [], 'no warning');
    else {
      t.equal(warnings.length, 1, 'one warning for both');
      t.match(warnings[0], /^cluster2: worker \d+ \(strategy round-robin\) does not lead its own process group: /);
    }
    sup.end('kill');
    await sup.empty();
    t.pass('both gone; the master (this test) is still here');
  });
}

/** The children that wrote `what` (TERM: they got SIGTERM and trapped it; after: they ran on after it). */
function trapped(log: string, what: 'TERM' | 'after'): number[] {
  let lines: string[] = [];
  try {
    lines = fs.readFileSync(log, 'utf8').split('\n');
  } catch {
    /* none yet */
  }
  const pids = lines.filter((l) => l.endsWith(` ${what}`)).map((l) => Number(l.split(' ')[0]));
  return [...new Set(pids)].sort();
}

// A process that traps SIGTERM (issue 25, item 7): SIGTERM first, then SIGKILL after a short grace,
// on every path that ends a worker's group, the master's SIGKILL included (the worker does it then).
for (const [strategy, how] of [
  ['reuseport', 'the master SIGKILLed'],
  ['round-robin', 'the master SIGKILLed'],
  ['reuseport', 'stop (SIGQUIT)'],
  ['shared', 'shutdown (SIGTERM)'],
  ['reuseport', 'a reload (the old workers exit)'],
] as const) {
  t.test(`${strategy}, ${how}: a child that traps SIGTERM is SIGKILLed after the grace`, async (t) => {
    const dir = tmpdir();
    const log = path.join(dir, 'children');
    const trap = path.join(dir, 'trapped');
    const app = await startApp(t, {
      opts: { strategy, noWorkers: 2 },
      env: { C2_CHILD_LOG: log, C2_TRAP_LOG: trap },
    });
    const kids = await children(t, log, 2);
    checkGroups(t, app, kids);
    if (how.startsWith('a reload')) {
      app.send('reload');
      await app.waitFor('reloaded', undefined, 60_000);
    } else {
      process.kill(app.pid, how.includes('SIGKILL') ? 'SIGKILL' : how.startsWith('stop') ? 'SIGQUIT' : 'SIGTERM');
      await app.exited;
    }
    await until(() => kids.every((k) => !alive(k)), 20_000, 'the children to be gone');
    t.pass('no child outlived its worker');
    t.same(trapped(trap, 'TERM'), [...kids].sort(), 'each got SIGTERM first (and trapped it)');
    t.same(trapped(trap, 'after'), [...kids].sort(), 'each ran on after it: a grace before the SIGKILL');
    if (how.startsWith('shutdown'))
      t.ok(
        app.events.filter((e) => e.ev === 'died').every((e) => e.args[1] === 0),
        'the workers still exit 0 after a drain',
      );
  });
}
