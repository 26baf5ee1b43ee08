import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Cluster } from '../dist/index.js';
import { alive, startApp, tmpdir } from './helpers/cluster';
import { request } from './helpers/http';

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net
      .createServer()
      .once('error', () => resolve(false))
      .listen(port, () => s.close(() => resolve(true)));
  });

t.test('new Cluster({ pids }).shutdown() from another script: graceful, then nothing remains', async (t) => {
  const app = await startApp(t);
  const workers = app.workers();
  fs.writeFileSync(path.join(app.pids, 'master.999999.pid'), '999999\n'); // a stale file must not confuse it
  const slow = request(app.port, '/slow?ms=300&say=1');
  await app.waitFor('slow-start');
  await new Cluster({ pids: app.pids }).shutdown();
  t.equal((await slow).status, 200, 'the in-flight request finished');
  t.equal((await app.exited).code, 0);
  for (const w of workers) t.notOk(alive(w), `worker ${w} gone`);
  t.ok(await portFree(app.port), 'port free');
  t.same(fs.readdirSync(app.pids), [], 'pid dir empty');
});

t.test('new Cluster({ pids }).stop() from another script: immediate', async (t) => {
  const app = await startApp(t);
  const workers = app.workers();
  await new Cluster({ pids: app.pids }).stop();
  t.equal((await app.exited).code, 0);
  for (const w of workers) t.notOk(alive(w), `worker ${w} gone`);
  t.ok(await portFree(app.port), 'port free');
  t.same(fs.readdirSync(app.pids), [], 'pid dir empty');
});

t.test('shutdown() and stop() reject clearly when no master runs', async (t) => {
  const dir = tmpdir();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await t.rejects(
    new Cluster({ pids: dir }).shutdown(),
    /shutdown: no running master found in .*pid of a live process/,
  );
  await t.rejects(new Cluster({ pids: dir }).stop(), /stop: no running master found/);
});
