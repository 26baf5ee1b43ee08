// The heartbeat judges the workers, not the master (issue #17): a stall of
// the whole process group (docker pause, SIGSTOP, a VM suspend) longer than
// heartbeatTimeout recycles nobody and fails no request. And maxMemory
// applies to a draining worker too; a reload that races a scale says so.
import t from 'tap';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { alive, startApp, tmpdir, until } from './helpers/cluster';
import { request, startLoad } from './helpers/http';

t.test('SIGSTOP the whole group for 3 s with heartbeatTimeout 2000: no recycle, no failed request', async (t) => {
  const app = await startApp(t, { opts: { heartbeatTimeout: 2000, noWorkers: 2 } });
  const load = startLoad(app.port, { connections: 4 });
  await load.served(200, 30_000);
  // Every process of the cluster: the master's group, and each worker's and the spare's (they lead their own).
  const spares = app.events.filter((e) => e.ev === 'spare').map((e) => e.args[0] as number);
  const groups = [app.pid, ...app.workers(), ...spares].filter(alive);
  const signal = (sig: NodeJS.Signals) => {
    for (const g of groups) {
      try {
        process.kill(-g, sig);
      } catch {
        process.kill(g, sig);
      }
    }
  };
  signal('SIGSTOP');
  // The length of the stall is the point of the test, not a wait for something.
  await new Promise((r) => setTimeout(r, 3000));
  signal('SIGCONT');
  // Long enough for a wrong verdict to show: two full heartbeat periods of service after the stall.
  await load.served(200, 30_000);
  const resumed = Date.now();
  await until(() => Date.now() - resumed > 4500 && load.result.ok > 0, 30_000, 'two heartbeat periods');
  const r = await load.stop();
  const recycled = app.events.filter((e) => e.ev === 'recycled');
  t.same(recycled, [], 'no worker recycled');
  t.equal(app.events.filter((e) => e.ev === 'died').length, 0, 'no worker died');
  t.equal(r.failed, 0, `no failed request (${JSON.stringify(r.errors)}); ${r.ok} served`);
});

/** Requests /grow?mb=200 until the worker `w` has answered one (it holds 200 MB more). */
async function grow(port: number, w: number): Promise<void> {
  await until(
    async () => {
      const st = await new Promise<string>((resolve) =>
        http
          .get({ host: '127.0.0.1', port, path: '/grow?mb=200', agent: false }, (res) => {
            let b = '';
            res.on('data', (d) => {
              b += d;
            });
            res.on('end', () => resolve(b));
          })
          .on('error', () => resolve('')),
      );
      return st.includes(String(w));
    },
    20_000,
    'the worker to grow',
  );
}

t.test('a worker recycled for maxMemory drains in peace: its request in flight is answered', async (t) => {
  const app = await startApp(t, { opts: { noWorkers: 1, maxMemory: '150M', gracefulTimeout: 120_000 } });
  const [w] = app.workers();
  // In flight through the recycle: the drain waits for it, several of the recycler's ticks.
  const slow = request(app.port, '/slow?ms=6000', { timeout: 60_000 });
  await grow(app.port, w);
  await app.waitFor('recycled', (e) => e.args[0] === w && e.args[2] === 'maxMemory', 30_000);
  t.equal((await slow).status, 200, 'the request in flight is answered');
  const died = await app.waitFor('died', (e) => e.args[0] === w, 30_000);
  t.equal(died.args[1], 0, 'the old worker exits 0, not killed');
  t.notOk(
    app.events.some((e) => e.ev === 'warning' && /killed/.test(String(e.args[0]))),
    'no kill for being over maxMemory, which is why it drains',
  );
});

t.test('a worker that grows while draining is killed, not left to grow until gracefulTimeout', async (t) => {
  const app = await startApp(t, {
    opts: { noWorkers: 1, maxMemory: '150M', gracefulTimeout: 120_000 },
    env: { C2_GROW_ON_DRAIN: '20' },
  });
  const [w] = app.workers();
  // A request in flight keeps the worker draining for a minute.
  const slow = http.get({ host: '127.0.0.1', port: app.port, path: '/slow?ms=60000', agent: false });
  slow.on('error', () => {});
  t.teardown(() => slow.destroy());
  await grow(app.port, w);
  const recycled = await app.waitFor('recycled', (e) => e.args[0] === w && e.args[2] === 'maxMemory', 30_000);
  t.ok(recycled, 'recycled for maxMemory: it drains');
  const died = await app.waitFor('died', (e) => e.args[0] === w, 30_000);
  t.equal(died.args[2], 'SIGKILL', 'killed while draining, long before gracefulTimeout');
  await app.waitFor('warning', (e) =>
    /is draining with \d+ MB RSS, over its ceiling of \d+ MB \(maxMemory plus a quarter\): killed/.test(e.args[0]),
  );
  t.ok(alive(app.pid));
});

t.test('a reload racing a scale that removes a slot names the scale, not the new code', async (t) => {
  const never = path.join(tmpdir(), 'never-ready');
  const app = await startApp(t, {
    opts: { waitReady: true, listenTimeout: 120_000, noWorkers: 2 },
    env: { C2_NEVER_READY: never, C2_NEVER_READY_SLOT: '1' },
  });
  fs.writeFileSync(never, ''); // from now on, a new worker of slot 1 never says ready: the reload waits on it
  const before = app.events.filter((e) => e.ev === 'forked').length;
  app.send('reload');
  await app.waitFor('recycled', (e) => e.args[2] === 'reload');
  // Slot 0 replaced; then the replacement of slot 1 is forked (and never ready), and the scale removes slot 1.
  await until(
    () => app.events.filter((e) => e.ev === 'forked').length >= before + 2,
    30_000,
    'the replacement of slot 1',
  );
  app.send('resize 1');
  const err = await app.waitFor('reload-error', undefined, 30_000);
  t.match(err.args[0], /reload failed.*the number of workers was scaled to 1 meanwhile/);
  t.notMatch(err.args[0], /exited \(code/, 'not blamed on the new code');
});
