// The lose-nothing matrix for WebSockets (the `ws` package, test/fixtures/drain-app.js, an app
// with no drain code of its own): through a recycle, a resize and an upgrade of the master,
// no socket is cut without a close frame (0 closed with 1006), and each one the operation
// closes gets the documented code: 1012 Service Restart (docs/long-lived-connections.md
// "WebSocket"; an upgrade too: the service goes on under the new master). A reload and a shutdown:
// test/websocket-drain.test.ts.
import t from 'tap';
import type { Test as Tap } from 'tap';
import { Cluster } from '../dist/index.js';
import { alive, startApp, until, type App } from './helpers/cluster';
import { closeCodes, wsClients } from './helpers/long-lived';

const N = 20;

function start(t: Tap, opts: Record<string, unknown> = {}): Promise<App> {
  return startApp(t, {
    fixture: 'drain-app.js',
    kind: 'ws',
    opts: { noWorkers: 2, gracefulTimeout: 6000, ...opts },
    timeout: 30_000,
  });
}

t.test(`${N} WebSockets through a recycle (maxAge): 1012 for each, none cut`, async (t) => {
  // No spare: each recycle is a fresh fork, and maxAge is long enough that the sockets are
  // all open on the first two workers before either is recycled.
  const app = await start(t, { maxAge: 4000 });
  const first = app.workers();
  const clients = await wsClients(app.port, N);
  t.ok(
    clients.every((c) => first.includes(c.pid)),
    'every socket is on one of the first two workers',
  );
  for (const w of first) {
    const ev = await app.waitFor('recycled', (e) => e.args[0] === w, 20_000);
    t.equal(ev.args[2], 'maxAge', `worker ${w} recycled by maxAge`);
  }
  await until(() => clients.every((c) => c.code !== undefined), 20_000, 'every WebSocket closed');
  t.same(closeCodes(clients), { 1012: N }, 'every socket closed with 1012 Service Restart, none with 1006');
});

t.test(`${N} WebSockets through a resize down: the removed worker's get 1012, the others stay open`, async (t) => {
  const app = await start(t, { noWorkers: 3 });
  const clients = await wsClients(app.port, N);
  process.kill(app.pid, 'SIGTTOU');
  const died = await app.waitFor('died', undefined, 20_000);
  const gone = died.args[0] as number;
  const on = clients.filter((c) => c.pid === gone);
  const others = clients.filter((c) => c.pid !== gone);
  await until(() => on.every((c) => c.code !== undefined), 10_000, "the removed worker's WebSockets closed");
  t.ok(on.length > 0, `${on.length} sockets were on the removed worker ${gone}`);
  t.same(closeCodes(on), { 1012: on.length }, 'each closed with 1012 Service Restart, none with 1006');
  t.ok(
    others.every((c) => c.code === undefined),
    `the ${others.length} on the other workers stay open`,
  );
  for (const c of others) c.ws.terminate();
});

t.test(`${N} WebSockets through an upgrade of the master (SIGUSR2): a close frame for each, none cut`, async (t) => {
  const app = await start(t);
  const old = app.workers();
  const clients = await wsClients(app.port, N);
  process.kill(app.pid, 'SIGUSR2');
  const neo = await until(
    async () => {
      const st = await new Cluster({ pids: app.pids }).status().catch(() => undefined);
      return st && st.pid !== app.pid && st.state === 'running' && st.pid;
    },
    60_000,
    'the new master to serve',
  );
  t.teardown(() => {
    try {
      process.kill(neo, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  await until(() => old.every((p) => !alive(p)), 30_000, 'the old workers to go');
  await until(() => clients.every((c) => c.code !== undefined), 10_000, 'every WebSocket closed');
  const codes = closeCodes(clients);
  t.equal(codes['1006'], undefined, 'none closed with 1006 (cut without a close frame)');
  // The service restarts under a new master, so clients should reconnect: 1012, as at a reload.
  t.same(codes, { 1012: N }, 'every socket closed with 1012 Service Restart');
  const after = await wsClients(app.port, 4);
  t.ok(
    after.every((c) => !old.includes(c.pid)),
    "reconnects reach the new master's workers",
  );
  for (const c of after) c.ws.terminate();
  process.kill(neo, 'SIGTERM');
  await until(() => !alive(neo), 20_000, 'the new master to exit');
});
