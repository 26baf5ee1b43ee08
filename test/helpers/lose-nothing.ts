// The lose-nothing scenarios, run by test/lose-nothing-<strategy>.test.ts for each
// strategy: reloads, recycles, resizes and shutdowns under real keep-alive load
// lose nothing. The app (test/fixtures/app.js) has no shutdown code of its own.
import type { Test } from 'tap';
import * as fs from 'node:fs';
import { alive, nth, startApp, until, type App } from './cluster';
import { request, startLoad, type LoadResult } from './http';

type Load = ReturnType<typeof startLoad>;

const CONNECTIONS = 24;

/** Load before and after `act`, at least `before` and `after` responses each side. */
async function underLoad(
  app: App,
  act: (load: Load) => Promise<unknown>,
  o: { before?: number; after?: number; path?: string; fresh?: boolean } = {},
): Promise<LoadResult> {
  const load = startLoad(app.port, { connections: o.fresh ? 12 : CONNECTIONS, path: o.path, fresh: o.fresh });
  await load.served(o.before ?? 600, 30_000);
  await act(load);
  await load.served(o.after ?? 600, 30_000);
  return load.stop();
}

const clean = (t: Test, r: LoadResult, what: string) =>
  t.equal(r.failed, 0, `${what}: 0 failed of ${r.ok + r.failed} (${JSON.stringify(r.errors)})`);

/** How the masters run: another executable (a Node 22 for Node's own reusePort), more env. */
export interface Run {
  exec?: string;
  env?: Record<string, string>;
  /**
   * Each worker owns its socket (Node's own reusePort): README "Listen strategies" says the
   * connections queued on a worker that goes are reset unless net.ipv4.tcp_migrate_req is 1.
   * Under new-connection-per-request load, such resets (and only those) are then allowed.
   */
  ownSockets?: boolean;
}

function migrateReq(): boolean {
  try {
    return fs.readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim() === '1';
  } catch {
    return false;
  }
}

/** `clean`, or for sockets owned by the workers without tcp_migrate_req: only queued connections reset. */
function cleanFresh(t: Test, r: LoadResult, what: string, o: Run): void {
  if (!o.ownSockets || migrateReq()) return void clean(t, r, what);
  const other = Object.keys(r.errors).filter((k) => k !== 'ECONNRESET');
  t.same(
    other,
    [],
    `${what}: no failure but the documented resets (${JSON.stringify(r.errors)} of ${r.ok + r.failed})`,
  );
  t.comment(`${what}: ${r.errors.ECONNRESET ?? 0} queued connections reset (tcp_migrate_req is 0; README)`);
}

/** Every lose-nothing scenario for one strategy. */
export function scenarios(t: Test, strategy: string, o: Run = {}): void {
  t.test('rolling reload (SIGHUP) of every worker', async (t) => {
    const app = await startApp(t, { opts: { strategy }, ...o });
    const before = app.workers();
    const r = await underLoad(app, async () => {
      process.kill(app.pid, 'SIGHUP');
      await app.waitFor('reloaded');
    });
    clean(t, r, 'reload');
    // 'reloaded' comes once the replacements are up; the last old worker may still be
    // draining, its pid file not yet removed: wait for it to go.
    const after = (await until(
      () => {
        const now = app.workers();
        return now.some((p) => before.includes(p)) ? undefined : now;
      },
      20_000,
      'the old workers to exit',
    ))!;
    t.equal(after.length, 2);
    t.notOk(
      after.some((p) => before.includes(p)),
      'every worker replaced',
    );
    t.ok(
      app.events.filter((e) => e.ev === 'recycled').every((e) => e.args[2] === 'reload'),
      "recycled(old, new, 'reload')",
    );
  });

  for (const [trigger, opts, poke] of [
    ['connThreshold', { connThreshold: 150 }, 'fresh connections'],
    ['maxRequests', { maxRequests: 1500, maxRequestsJitter: 300 }, ''],
    ['maxMemory', { maxMemory: '180M' }, '/grow'],
    ['maxAge', { maxAge: 1500 }, ''],
  ] as const) {
    t.test(`recycle by ${trigger}`, async (t) => {
      const app = await startApp(t, { opts: { strategy, ...opts }, ...o });
      const r = await underLoad(app, async () => {
        if (poke === 'fresh connections') for (let i = 0; i < 400; i++) await request(app.port, '/');
        if (poke === '/grow') await request(app.port, '/grow?mb=200');
        const ev = await app.waitFor('recycled', (e) => e.args[2] === trigger, 20_000);
        await app.waitFor('died', (e) => e.args[0] === ev.args[0], 20_000);
      });
      clean(t, r, trigger);
    });
  }

  t.test('resize up and down (SIGTTIN, SIGTTOU)', async (t) => {
    const app = await startApp(t, { opts: { strategy }, ...o });
    const r = await underLoad(app, async () => {
      process.kill(app.pid, 'SIGTTIN');
      const forked = await nth(app, 'forked', 3, 10_000);
      await app.waitFor('listening', (e) => e.args[0] === forked.args[0]);
      process.kill(app.pid, 'SIGTTOU');
      await app.waitFor('died', undefined, 10_000);
    });
    clean(t, r, 'resize');
    t.equal(app.workers().length, 2, 'back to two workers');
  });

  t.test('reload, then resize down, under new-connection-per-request load', async (t) => {
    // One cluster for both: the reload replaces all four workers, the resize then takes two.
    const app = await startApp(t, { opts: { strategy, noWorkers: 4 }, ...o });
    const before = app.workers();
    const rl = await underLoad(
      app,
      async () => {
        process.kill(app.pid, 'SIGHUP');
        await app.waitFor('reloaded', undefined, 60_000);
      },
      { fresh: true, before: 300, after: 300 },
    );
    cleanFresh(t, rl, 'reload, fresh connections', o);
    await until(() => !app.workers().some((p) => before.includes(p)), 20_000, 'the old workers to exit');
    const r = await underLoad(
      app,
      async () => {
        // The reload's old workers died already: count from there.
        const died = app.events.filter((e) => e.ev === 'died').length;
        for (let n = 1; n <= 2; n++) {
          process.kill(app.pid, 'SIGTTOU');
          await nth(app, 'died', died + n, 10_000);
        }
      },
      { fresh: true, before: 300, after: 300 },
    );
    cleanFresh(t, r, 'resize down, fresh connections', o);
    t.equal(app.workers().length, 2, 'two workers left');
  });

  t.test('shutdown while 200 ms requests are in flight completes every one', async (t) => {
    const app = await startApp(t, { opts: { strategy }, ...o });
    const load = startLoad(app.port, { connections: 50, path: '/slow?ms=200' });
    await load.served(200, 20_000);
    // Stop sending new requests, then shut down with every connection busy.
    const done = load.stop();
    process.kill(app.pid, 'SIGTERM');
    const r = await done;
    clean(t, r, 'shutdown');
    t.equal((await app.exited).code, 0, 'master exits 0');
  });

  t.test('a hung worker is replaced, the others keep serving', async (t) => {
    const app = await startApp(t, { opts: { strategy, heartbeatTimeout: 1000, noWorkers: 2 }, ...o });
    // A new connection per request: kept-alive connections may all sit on the worker that
    // hangs (node:cluster's shared sockets let one worker accept them all), and then nothing
    // could be served meanwhile however well the others work. With SO_REUSEPORT, half of the
    // new connections still land on the hung worker and wait there: 32 of them make it
    // certain that some requests go to the others before every connection is waiting.
    const load = startLoad(app.port, { connections: 32, fresh: true });
    await load.served(500);
    const hung = Number((await request(app.port, '/hang')).body.split(' ')[1]);
    const okAtHang = load.result.ok;
    const ev = await app.waitFor('recycled', (e) => e.args[0] === hung, 20_000);
    // Until the recycle, the hung worker answers nothing: whatever was served meanwhile came
    // from the others.
    const servedWhileHung = load.result.ok - okAtHang;
    t.equal(ev.args[2], 'unresponsive');
    await load.served(500, 20_000);
    const r = await load.stop();
    t.ok(
      servedWhileHung > 0,
      `the others kept serving while it hung: ${servedWhileHung} responses (${r.failed} failed on the hung worker's connections)`,
    );
    await until(() => !alive(hung), 5000, 'the hung worker to be killed');
  });
}
