import t from 'tap';
import type { Test as Tap } from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { alive, startApp, tmpdir, until, type App } from './helpers/cluster';
import { request } from './helpers/http';

const STRATEGIES = (process.env.C2_STRATEGIES ?? 'reuseport,round-robin,shared').split(',');
// The tests that do not depend on the strategy run with the first.
const strategy = STRATEGIES[0];

interface Entry {
  pid: number;
  reason?: string;
  deadline?: number;
  aborted?: boolean;
  same?: boolean;
  at?: number;
  settled?: number;
}

function start(
  t: Tap,
  onDrain: string,
  opts: Record<string, unknown> = {},
  kind = 'ws',
  s = strategy,
): Promise<App & { log: () => Entry[] }> {
  const file = path.join(tmpdir(), 'drain.log');
  return startApp(t, {
    fixture: 'drain-app.js',
    kind,
    env: { C2_ONDRAIN: onDrain, C2_DRAIN_LOG: file },
    opts: { strategy: s, noWorkers: 2, gracefulTimeout: 10_000, ...opts },
    timeout: 30_000,
  }).then((app) =>
    Object.assign(app, {
      log: () =>
        fs.existsSync(file)
          ? fs
              .readFileSync(file, 'utf8')
              .trim()
              .split('\n')
              .map((l) => JSON.parse(l) as Entry)
          : [],
    }),
  );
}

/** The drain entries (not the 'settled' ones), by pid. */
function drains(app: { log: () => Entry[] }, pids: number[]): Map<number, Entry[]> {
  const m = new Map<number, Entry[]>(pids.map((p) => [p, []]));
  for (const e of app.log()) if (e.reason && m.has(e.pid)) m.get(e.pid)!.push(e);
  return m;
}

/** Wait until the master reported each of these workers dead. */
function died(app: App, pids: number[]): Promise<unknown> {
  return until(
    () => pids.every((p) => app.events.some((e) => e.ev === 'died' && e.args[0] === p)),
    30_000,
    `workers ${pids} to exit`,
  );
}

function once(t: Tap, app: { log: () => Entry[] }, pids: number[], reason: string, grace: number): void {
  for (const [pid, es] of drains(app, pids)) {
    t.equal(es.length, 1, `worker ${pid}: called once`);
    const e = es[0];
    if (!e) continue;
    t.equal(e.reason, reason, `worker ${pid}: reason ${reason}`);
    t.ok(e.aborted && e.same, `worker ${pid}: its signal (c.drainSignal) is aborted`);
    t.ok(
      e.deadline! > e.at! && e.deadline! <= e.at! + grace,
      `worker ${pid}: deadline within gracefulTimeout from now`,
    );
  }
}

for (const s of STRATEGIES)
  t.test(`${s}: reload: each old worker is told once, reason reload; an async handler is awaited`, async (t) => {
    const app = await start(t, 'log,async:300', {}, 'ws', s);
    const old = app.workers();
    app.send('reload');
    await app.waitFor('reload-ok', undefined, 60_000);
    await died(app, old);
    once(t, app, old, 'reload', 10_000);
    for (const pid of old) {
      const settled = app.log().find((e) => e.pid === pid && e.settled);
      const died = app.events.find((e) => e.ev === 'died' && e.args[0] === pid)!;
      t.ok(settled, `worker ${pid}: its async handler settled before it exited`);
      t.equal(died.args[1], 0, `worker ${pid}: exit 0`);
    }
    t.same(drains(app, app.workers()).get(app.workers()[0]), [], 'new workers were not told');
    app.proc.kill('SIGTERM');
    await app.exited;
  });

t.test('a maxRequests recycle: reason maxRequests', async (t) => {
  const app = await start(t, 'log', { noWorkers: 1, maxRequests: 3, maxRequestsJitter: 0 });
  const old = app.workers();
  for (let i = 0; i < 3; i++) await request(app.port, '/');
  await app.waitFor('recycled', undefined, 30_000);
  await died(app, old);
  once(t, app, old, 'maxRequests', 10_000);
  app.proc.kill('SIGTERM');
  await app.exited;
});

t.test('resize down: reason resize, for the removed worker only', async (t) => {
  const app = await start(t, 'log');
  const before = app.workers();
  app.send('resize 1');
  await until(() => app.workers().length === 1, 30_000, 'one worker left');
  const gone = before.filter((p) => !app.workers().includes(p));
  once(t, app, gone, 'resize', 10_000);
  t.same(drains(app, app.workers()).get(app.workers()[0]), [], 'the worker kept was not told');
  app.proc.kill('SIGTERM');
  await app.exited;
});

for (const s of STRATEGIES)
  t.test(`${s}: shutdown: reason shutdown, through the 'drain' event too`, async (t) => {
    const app = await start(t, 'log,event', {}, 'ws', s);
    const pids = app.workers();
    app.proc.kill('SIGTERM');
    t.equal((await app.exited).code, 0, 'master exits 0');
    once(t, app, pids, 'shutdown', 10_000);
  });

for (const s of STRATEGIES)
  t.test(`${s}: master killed with SIGKILL: reason master-gone, the workers still exit`, async (t) => {
    const app = await start(t, 'log', {}, 'ws', s);
    const pids = app.workers();
    app.proc.kill('SIGKILL');
    await until(() => pids.every((p) => !alive(p)), 30_000, 'orphaned workers to exit');
    once(t, app, pids, 'master-gone', 10_000);
  });

t.test('a throwing handler: a warning in the master with the pid, the worker still exits', async (t) => {
  const app = await start(t, 'throw');
  const old = app.workers();
  app.send('reload');
  await app.waitFor('reload-ok', undefined, 60_000);
  await died(app, old);
  for (const pid of old) {
    const w = app.events.find((e) => e.ev === 'warning' && String(e.args[0]).includes(`worker ${pid}`));
    t.match(w?.args[0], /onDrain handler failed: handler boom/, `worker ${pid}: warning with its message`);
    t.equal(app.events.find((e) => e.ev === 'died' && e.args[0] === pid)!.args[1], 0, `worker ${pid}: exit 0`);
  }
  app.proc.kill('SIGTERM');
  await app.exited;
});

t.test('a rejecting handler: a warning too', async (t) => {
  const app = await start(t, 'reject', { noWorkers: 1 });
  app.proc.kill('SIGTERM');
  await app.exited;
  t.ok(
    app.events.some((e) => e.ev === 'warning' && /onDrain handler failed: handler rejected/.test(e.args[0])),
    'warning',
  );
});

t.test('a handler that never settles: the worker exits on its own at the deadline', async (t) => {
  const app = await start(t, 'log,async:600000', { noWorkers: 1, gracefulTimeout: 3000 });
  const [pid] = app.workers();
  app.send('reload');
  await app.waitFor('reload-ok', undefined, 60_000);
  const died = await app.waitFor('died', (e) => e.args[0] === pid, 30_000);
  const [e] = drains(app, [pid]).get(pid)!;
  t.equal(died.args[1], 1, 'exit 1: it left with a handler unsettled');
  t.equal(died.args[2], null, 'on its own, not killed by the master');
  t.ok(Date.now() >= e.deadline! - 100, 'not before the deadline');
  app.proc.kill('SIGTERM');
  await app.exited;
});

t.test('cluster: false: onDrain is called at shutdown', async (t) => {
  const app = await start(t, 'log', { cluster: false });
  app.proc.kill('SIGTERM');
  t.equal((await app.exited).code, 0, 'exits 0');
  once(t, app, [app.pid], 'shutdown', 10_000);
});

t.test('SSE: a stream the app ends on drain (drainSignal) delivers its final event', async (t) => {
  const app = await start(t, '', { noWorkers: 1 }, 'sse');
  let body = '';
  const ended = new Promise<void>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: app.port, path: '/events', agent: false }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', resolve);
        res.on('error', reject);
      })
      .on('error', reject);
  });
  await until(() => body.includes('data: tick'), 20_000, 'the stream to run');
  app.send('reload');
  await ended;
  t.match(body, /event: bye\ndata: draining\n\n$/, 'the final event arrived, and the stream ended cleanly');
  app.proc.kill('SIGTERM');
  await app.exited;
});
