import t from 'tap';
import { alive, startApp, until } from './helpers/cluster';
import { request, startLoad } from './helpers/http';

t.test('connThreshold: the worker is replaced, replacement first, recycled(old, new, "connThreshold")', async (t) => {
  const app = await startApp(t, { opts: { connThreshold: 20 } });
  const before = app.workers();
  for (let i = 0; i < 60; i++) t.equal((await request(app.port, '/')).status, 200, `request ${i}`);
  const ev = await app.waitFor('recycled');
  const [oldPid, newPid, reason] = ev.args;
  t.equal(reason, 'connThreshold');
  t.ok(before.includes(oldPid), 'an original worker was recycled');
  const listened = app.events.findIndex((e) => e.ev === 'listening' && e.args[0] === newPid);
  const died = app.events.findIndex((e) => e.ev === 'died' && e.args[0] === oldPid);
  t.ok(
    listened >= 0 && listened < app.events.indexOf(ev),
    'the replacement listened before the old one was told to go',
  );
  t.ok(died === -1 || died > listened, 'the old one died after the replacement listened');
  await until(() => !alive(oldPid), 10_000, 'old worker gone');
});

t.test('recycling under keep-alive load loses no request', async (t) => {
  const app = await startApp(t, { opts: { connThreshold: 30 } });
  const load = startLoad(app.port, { connections: 20 });
  await load.served(200);
  // Fresh connections push the workers over the threshold.
  for (let i = 0; i < 80; i++) await request(app.port, '/');
  await app.waitFor('recycled');
  await load.served(200);
  const r = await load.stop();
  t.equal(r.failed, 0, `no failed requests (${JSON.stringify(r.errors)}), ${r.ok} ok`);
});
