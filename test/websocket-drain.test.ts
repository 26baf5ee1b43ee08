import t from 'tap';
import type { Test as Tap } from 'tap';
import { startApp, until, type App } from './helpers/cluster';
import { closeCodes, wsClients } from './helpers/long-lived';

const STRATEGIES = (process.env.C2_STRATEGIES ?? 'reuseport,round-robin,shared').split(',');
const N = 20;

function start(t: Tap, strategy: string, onDrain = '', gracefulTimeout = 8000): Promise<App> {
  return startApp(t, {
    fixture: 'drain-app.js',
    kind: 'ws',
    env: { C2_ONDRAIN: onDrain },
    opts: { strategy, noWorkers: 2, gracefulTimeout },
    timeout: 30_000,
  });
}

for (const strategy of STRATEGIES) {
  t.test(
    `${strategy}: ${N} WebSockets through a reload, app without drain code: 1012 for each, the reload does not wait`,
    async (t) => {
      const app = await start(t, strategy);
      const clients = await wsClients(app.port, N);
      app.send('reload');
      await app.waitFor('reload-ok', undefined, 60_000);
      t.ok(
        clients.some((c) => c.code === undefined),
        'the reload completed while WebSockets were still open',
      );
      await until(() => clients.every((c) => c.code !== undefined), 30_000, 'every WebSocket closed');
      t.same(closeCodes(clients), { 1012: N }, 'every socket closed with 1012 Service Restart, none with 1006');
      t.ok(
        clients.every((c) => c.reason === 'Service Restart'),
        'with its reason',
      );
      // Spread out, not at one instant.
      const times = clients.map((c) => c.closedAt!).sort((a, b) => a - b);
      t.ok(new Set(times).size > N / 2, 'closes spread over the drain window');
      const after = await wsClients(app.port, 4);
      const live = new Set(app.workers());
      t.ok(
        after.every((c) => live.has(c.pid)),
        'reconnects reach the new workers',
      );
      for (const d of app.events.filter((e) => e.ev === 'died'))
        t.equal(d.args[1], 0, `old worker ${d.args[0]} exited 0`);
      for (const c of after) c.ws.terminate();
      app.proc.kill('SIGTERM');
      t.equal((await app.exited).code, 0, 'master exits 0');
    },
  );

  t.test(`${strategy}: ${N} WebSockets through a shutdown, app without drain code: 1001 for each`, async (t) => {
    const app = await start(t, strategy, '', 6000);
    const clients = await wsClients(app.port, N);
    app.proc.kill('SIGTERM');
    t.equal((await app.exited).code, 0, 'master exits 0: nothing had to be cut');
    await until(() => clients.every((c) => c.code !== undefined), 10_000, 'every WebSocket closed');
    t.same(closeCodes(clients), { 1001: N }, 'every socket closed with 1001 Going Away, none with 1006');
  });

  t.test(
    `${strategy}: onDrain closes the WebSockets: the app's code arrives, the workers exit well before gracefulTimeout`,
    async (t) => {
      const app = await start(t, strategy, 'close-ws', 60_000);
      const clients = await wsClients(app.port, N);
      const old = app.workers();
      app.send('reload');
      await app.waitFor('reload-ok', undefined, 60_000);
      await until(
        () => old.every((p) => !app.workers().includes(p)),
        30_000,
        'old workers to exit (gracefulTimeout is 60 s)',
      );
      await until(() => clients.every((c) => c.code !== undefined), 10_000, 'every WebSocket closed');
      t.same(closeCodes(clients), { 4000: N }, "every socket closed with the app's code");
      for (const d of app.events.filter((e) => e.ev === 'died'))
        t.equal(d.args[1], 0, `old worker ${d.args[0]} exited 0`);
      app.proc.kill('SIGTERM');
      t.equal((await app.exited).code, 0, 'master exits 0');
    },
  );
}
