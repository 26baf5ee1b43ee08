// HTTPS and secure WebSocket through a reload: a drain looks at (and writes to) the TLS
// socket over each connection, where http keeps its response and a WebSocket its frames.
// Before, every HTTPS connection looked idle to a drain: one with a response in progress
// was cut (ECONNRESET), and a wss client got no close frame.
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';
import t from 'tap';
import WebSocket from 'ws';
import { Cluster } from '../dist/index.js';
import { FIXTURES, startApp, until } from './helpers/cluster';

const ca = fs.readFileSync(path.join(FIXTURES, 'tls', 'cert.pem'));

/** Keep-alive HTTPS clients in a loop on /slow (each request in flight 50-300 ms); counts what failed. */
function httpsLoad(port: number, clients: number) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: clients, ca, rejectUnauthorized: false });
  const r = { ok: 0, failed: [] as string[], running: true };
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const ms = 50 + Math.floor(Math.random() * 250);
      https
        .get({ port, path: `/slow?ms=${ms}`, agent }, (res) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) r.ok++;
            else r.failed.push(`status ${res.statusCode}`);
            resolve();
          });
        })
        .on('error', (e: NodeJS.ErrnoException) => {
          r.failed.push(e.code ?? e.message);
          resolve();
        });
    });
  const loops = Array.from({ length: clients }, async () => {
    while (r.running) await one();
  });
  return {
    r,
    async stop() {
      r.running = false;
      await Promise.all(loops);
      agent.destroy();
      return r;
    },
  };
}

t.test('HTTPS: a reload under keep-alive load with requests in flight fails none', async (t) => {
  const app = await startApp(t, { kind: 'https' });
  const load = httpsLoad(app.port, 8);
  await until(() => load.r.ok >= 100, 30_000, 'answers before the reload');
  const before = app.workers();
  // A response longer than a drain's idle grace (1 s), in progress when the reload begins.
  const agent = new https.Agent({ keepAlive: true, ca, rejectUnauthorized: false });
  const long = new Promise<string>((resolve) => {
    https
      .get({ port: app.port, path: '/slow?ms=2500', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(`status ${res.statusCode}`));
      })
      .on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
  const open = async () => (await new Cluster({ pids: app.pids }).status())!.workers.reduce((n, w) => n + w.open, 0);
  await until(async () => (await open()) > 8, 10_000, 'the long request');
  process.kill(app.pid, 'SIGHUP');
  await app.waitFor('reloaded', undefined, 60_000);
  await until(() => before.every((p) => !app.workers().includes(p)), 30_000, 'the old workers to exit');
  const at = load.r.ok;
  await until(() => load.r.ok >= at + 100, 30_000, 'answers after the reload');
  const r = await load.stop();
  t.same(r.failed, [], `0 failed of ${r.ok + r.failed.length}`);
  t.equal(await long, 'status 200', 'the response in progress at the reload was finished, not cut');
  agent.destroy();
  for (const d of app.events.filter((e) => e.ev === 'died'))
    t.equal(d.args[1], 0, `worker ${d.args[0]} exited 0 (drained, not cut)`);
});

t.test('wss: a secure WebSocket gets its close frame (1012) at a reload', async (t) => {
  const app = await startApp(t, { fixture: 'drain-app.js', kind: 'wss', opts: { gracefulTimeout: 3000 } });
  const ws = new WebSocket(`wss://127.0.0.1:${app.port}/`, { ca, rejectUnauthorized: false });
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    ws.once('message', resolve);
    ws.once('error', reject);
  });
  app.send('reload');
  t.equal(await closed, 1012, 'closed with 1012 Service Restart, not cut (1006)');
  await app.waitFor('reload-ok', undefined, 60_000);
});
