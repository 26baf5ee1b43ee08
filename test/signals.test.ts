import t from 'tap';
import { alive, startApp, until } from './helpers/cluster';
import { request } from './helpers/http';

t.test('SIGTERM shuts down gracefully: in-flight requests finish, exit 0, event emitted', async (t) => {
  const app = await startApp(t);
  const workers = app.workers();
  const slow = request(app.port, '/slow?ms=300&say=1');
  await app.waitFor('slow-start');
  process.kill(app.pid, 'SIGTERM');
  await app.waitFor('SIGTERM');
  const r = await slow;
  t.equal(r.status, 200);
  t.equal(r.headers.connection, 'close', 'answered with Connection: close while draining');
  t.equal((await app.exited).code, 0);
  for (const w of workers) t.notOk(alive(w));
});

t.test('SIGINT shuts down gracefully too', async (t) => {
  const app = await startApp(t);
  const slow = request(app.port, '/slow?ms=300&say=1');
  await app.waitFor('slow-start');
  process.kill(app.pid, 'SIGINT');
  await app.waitFor('SIGINT');
  t.equal((await slow).status, 200);
  t.equal((await app.exited).code, 0);
});

t.test('a second SIGINT stops at once', async (t) => {
  const app = await startApp(t);
  const workers = app.workers();
  const slow = request(app.port, '/slow?ms=5000&say=1').catch((e) => e);
  await app.waitFor('slow-start');
  process.kill(app.pid, 'SIGINT');
  await app.waitFor('SIGINT');
  process.kill(app.pid, 'SIGINT');
  t.equal((await app.exited).code, 0);
  t.type(await slow, Error, 'the 5 s request was cut');
  await until(() => workers.every((w) => !alive(w)), 5000, 'workers gone');
});

t.test('a shutdown that has to kill at gracefulTimeout exits 1', async (t) => {
  const app = await startApp(t, { opts: { gracefulTimeout: 300 } });
  const slow = request(app.port, '/slow?ms=5000&say=1').catch((e) => e);
  await app.waitFor('slow-start');
  process.kill(app.pid, 'SIGTERM');
  t.equal((await app.exited).code, 1);
  t.type(await slow, Error);
});
