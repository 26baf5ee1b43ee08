import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startApp, until, FIXTURES, type App } from './helpers/cluster';
import { h2Get, h2Load } from './helpers/long-lived';

const STRATEGIES = (process.env.C2_STRATEGIES ?? 'reuseport,round-robin,shared').split(',');

async function reloaded(app: App, n: number): Promise<void> {
  let seen = 0;
  app.send('reload');
  await app.waitFor('reload-ok', () => ++seen >= n, 60_000);
}

for (const strategy of STRATEGIES) {
  t.test(
    `${strategy}: 16 HTTP/2 streams in flight across two reloads: none fails, the client moves to new workers`,
    async (t) => {
      const app = await startApp(t, {
        fixture: 'drain-app.js',
        kind: 'h2',
        opts: { strategy, noWorkers: 2, gracefulTimeout: 10_000 },
        timeout: 30_000,
      });
      const first = new Set(app.workers());
      const load = h2Load(app.port, 16);
      await until(() => load.ok >= 50, 20_000, 'first answers');
      await reloaded(app, 1);
      await until(
        () => load.pids.length > 16 && load.pids.slice(-16).every((p) => !first.has(p)),
        30_000,
        'answers from new workers',
      );
      const second = new Set(app.workers());
      await reloaded(app, 2);
      await until(
        () => load.pids.length > 16 && load.pids.slice(-16).every((p) => !first.has(p) && !second.has(p)),
        30_000,
        'answers from the newest workers',
      );
      // The old workers left by themselves, before the deadline: GOAWAY moved the client.
      await until(() => [...first, ...second].every((p) => !app.workers().includes(p)), 30_000, 'old workers to exit');
      await load.stop();
      t.same(load.failed, [], 'no stream failed');
      t.ok(load.ok > 100, `streams answered (${load.ok}, ${load.retried} refused under GOAWAY and retried)`);
      const live = new Set(app.workers());
      t.ok(
        load.pids.slice(-16).every((p) => live.has(p)),
        'the last answers came from live workers',
      );
      for (const d of app.events.filter((e) => e.ev === 'died'))
        t.equal(d.args[1], 0, `worker ${d.args[0]} exited 0 (drained, not cut)`);
      app.proc.kill('SIGTERM');
      t.equal((await app.exited).code, 0, 'master exits 0');
    },
  );
}

const tls = { ca: fs.readFileSync(path.join(FIXTURES, 'tls', 'cert.pem')), rejectUnauthorized: false };
for (const kind of ['h2', 'h2-stream', 'h2s', 'h2s-http1', 'h2-http1']) {
  t.test(`ECV over HTTP/2 on the app port (${kind})`, async (t) => {
    const app = await startApp(t, {
      fixture: 'drain-app.js',
      kind,
      opts: { strategy: STRATEGIES[0], noWorkers: 1 },
      timeout: 30_000,
    });
    const url = `${kind.startsWith('h2s') ? 'https' : 'http'}://127.0.0.1:${app.port}`;
    const ecv = await h2Get(url, '/ecv', tls);
    t.equal(ecv.status, 200, 'ECV answers 200');
    t.match(ecv.body, /^status=AVAILABLE&ServeTraffic=true&ip=.*&port=\d+/, 'the ECV body');
    t.equal(ecv.headers['x-powered-by'], 'Cluster2', 'answered by cluster2, not the app');
    t.equal(ecv.headers.connection, undefined, 'no connection-specific header');
    const app2 = await h2Get(url, '/', tls);
    t.match(app2.body, /^hello \d+/, 'the app answers the rest');
    if (kind.endsWith('http1') && kind.startsWith('h2s')) {
      const https = await import('node:https');
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port: app.port, path: '/ecv', rejectUnauthorized: false }, (res) => {
            let b = '';
            res.on('data', (d) => {
              b += d;
            });
            res.on('end', () => resolve(b));
          })
          .on('error', reject);
      });
      t.match(body, /^status=AVAILABLE/, 'ECV over HTTP/1.1 on the same server (allowHTTP1)');
    }
    app.proc.kill('SIGTERM');
    t.equal((await app.exited).code, 0, 'master exits 0');
  });
}
