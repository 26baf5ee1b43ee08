import t from 'tap';
import * as net from 'node:net';
import { startApp } from './helpers/cluster';
import { request } from './helpers/http';

t.test('cluster: false runs one process with the same API', async (t) => {
  const app = await startApp(t, { opts: { cluster: false, timeout: 1000 } });
  t.equal(app.events.filter((e) => e.ev === 'forked').length, 0, 'no worker forked');
  const r = await request(app.port, '/');
  t.equal(r.body, `hello ${app.pid}`, 'the master itself answers');
  t.equal((await request(app.port, '/ecv')).status, 200, 'ECV works');
  // idle timeout
  const s = net.connect(app.port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise((resolve) => s.once('close', resolve));
  await app.waitFor('warning', (e) => /idle for 1000 ms/.test(e.args[0]));
  // graceful shutdown
  // Far shorter than the 1000 ms idle timeout: a request without a byte for that long is cut,
  // as Node's server.timeout cuts it, and a busy machine may delay a 120 ms timer by 100 ms or more.
  const slow = request(app.port, '/slow?ms=120&say=1');
  await app.waitFor('slow-start');
  process.kill(app.pid, 'SIGTERM');
  t.equal((await slow).status, 200, 'in-flight request finished');
  t.equal((await app.exited).code, 0);
});
