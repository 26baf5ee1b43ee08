// Reload, drain and upgrade behaviour that does not depend on the strategy.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startApp, tmpdir, until } from './helpers/cluster';
import { request, startLoad } from './helpers/http';

const CONNECTIONS = 24;

t.test('c.reload() replaces workers with the code on disk; a failing new version leaves the old serving', async (t) => {
  const dir = tmpdir();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'version.js');
  const write = (body: string) => fs.writeFileSync(file, body);
  write("module.exports = (req, res) => res.end('v1 ' + process.pid);");
  const app = await startApp(t, { env: { C2_APP_FILE: file } });
  t.match((await request(app.port, '/')).body, /^v1 /);

  write("module.exports = (req, res) => res.end('v2 ' + process.pid);");
  const load = startLoad(app.port, { connections: CONNECTIONS });
  await load.served(500);
  app.send('reload');
  await app.waitFor('reload-ok');
  t.match((await request(app.port, '/')).body, /^v2 /, 'new code after reload');

  write("throw new Error('v3 is broken');");
  await until(() => app.workers().length === 2, 10_000, 'the v1 workers to be gone');
  const serving = app.workers();
  app.send('reload');
  const err = await app.waitFor('reload-error');
  t.match(err.args[0], /reload failed, the old workers keep serving: .*before it was up/);
  await app.waitFor('reloadFailed');
  t.same(app.workers().sort(), serving.sort(), 'the same workers serve');
  await load.served(500);
  const r = await load.stop();
  t.equal(r.failed, 0, `no failed request across both reloads (${JSON.stringify(r.errors)})`);
  t.match((await request(app.port, '/')).body, /^v2 /, 'still v2');
});

t.test('SIGHUP reload failure is reported as reloadFailed and a warning', async (t) => {
  const dir = tmpdir();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'version.js');
  fs.writeFileSync(file, "module.exports = (req, res) => res.end('v1 ' + process.pid);");
  const app = await startApp(t, { env: { C2_APP_FILE: file } });
  fs.writeFileSync(file, "throw new Error('broken on disk');");
  process.kill(app.pid, 'SIGHUP');
  const failed = await app.waitFor('reloadFailed');
  t.match(failed.args[0], /reload failed, the old workers keep serving/);
  await app.waitFor('warning', (e) => /reload failed/.test(e.args[0]));
  t.equal((await request(app.port, '/')).status, 200, 'still serving');
});

t.test('waitReady: a replacement counts only once it says ready', async (t) => {
  const dir = tmpdir();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const marker = path.join(dir, 'never-ready');
  const app = await startApp(t, {
    opts: { waitReady: true, listenTimeout: 1500, noWorkers: 1 },
    env: { C2_NEVER_READY: marker },
  });
  const [first] = app.workers();
  fs.writeFileSync(marker, '');
  app.send('reload');
  const err = await app.waitFor('reload-error');
  t.match(err.args[0], /did not send ready within 1500 ms/);
  await until(() => app.workers().length === 1, 10_000, 'the replacement that never got ready to be killed');
  t.same(app.workers(), [first], 'the old worker keeps serving');
  t.equal((await request(app.port, '/')).body, `hello ${first}`);
});

t.test('a draining worker keeps upgraded connections until gracefulTimeout', async (t) => {
  const app = await startApp(t, { opts: { noWorkers: 1, gracefulTimeout: 800 } });
  const net = await import('node:net');
  const s = net.connect(app.port, '127.0.0.1');
  s.write('GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n');
  await new Promise((r) => s.once('data', r));
  const closed = new Promise((r) => s.once('close', r));
  s.on('error', () => {});
  process.kill(app.pid, 'SIGTERM');
  s.write('ping');
  const echoed = await new Promise((r) => s.once('data', (d) => r(String(d))));
  t.equal(echoed, 'ping', 'the upgraded connection still works while draining');
  await closed;
  t.equal((await app.exited).code, 1, 'cut at gracefulTimeout: exit 1');
});
