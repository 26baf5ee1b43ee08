import t from 'tap';
import * as net from 'node:net';
import { alive, startApp, until } from './helpers/cluster';
import { request } from './helpers/http';

const portFree = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net
      .createServer()
      .once('error', () => resolve(false))
      .listen(port, () => s.close(() => resolve(true)));
  });

for (const strategy of ['reuseport', 'round-robin', 'shared']) {
  t.test(`${strategy}: when the master dies by SIGKILL, workers finish in-flight requests and exit`, async (t) => {
    const app = await startApp(t, { opts: { strategy } });
    const workers = app.workers();
    const slow = request(app.port, '/slow?ms=500&say=1');
    await app.waitFor('slow-start');
    process.kill(app.pid, 'SIGKILL');
    const r = await slow;
    t.equal(r.status, 200, 'the in-flight request was answered');
    await until(() => workers.every((w) => !alive(w)), 5000, 'every worker to exit by itself');
    t.pass('no orphan left');
    await until(() => portFree(app.port), 5000, 'the port to be free');
    t.pass('port free');
  });
}
