// Degraded is visible, and the monitor-port ECV tells the truth (issue #17): workers that exit 0 soon after they listen
// are respawned for ever; with none listening the master says "degraded",
// the monitor-port ECV answers 500 WARNING, and a warning names the exits.
import t from 'tap';
import { startApp, until } from './helpers/cluster';
import { freePort } from './helpers/native-util';
import { request } from './helpers/http';

t.test('no listening worker: status "degraded", ECV 500 WARNING, a warning with the exit codes', async (t) => {
  const monPort = await freePort();
  const app = await startApp(t, {
    opts: { monPort, noWorkers: 1, spare: false },
    env: { C2_EXIT_AFTER_LISTEN: '300' },
  });
  const warning = await app.waitFor('warning', (e) => /degraded: no worker is listening/.test(e.args[0]), 30_000);
  t.match(warning.args[0], /last exits: worker \d+ code 0/);
  // The back-off grows: a moment with no worker listening comes, and stays longer each time.
  const seen = await until(
    async () => {
      const [st, ecv] = await Promise.all([request(monPort, '/status'), request(monPort, '/ecv')]);
      const state = JSON.parse(st.body).state;
      return state === 'degraded' && ecv.status === 500 ? { state, ecv } : null;
    },
    30_000,
    'degraded status and ECV WARNING at the same moment',
  );
  t.equal(seen!.state, 'degraded');
  t.match(seen!.ecv.body, /^status=WARNING&ServeTraffic=false/);
});

t.test('a healthy master is "running" with ECV 200 on the monitor port', async (t) => {
  const monPort = await freePort();
  await startApp(t, { opts: { monPort, noWorkers: 1 } });
  t.equal(JSON.parse((await request(monPort, '/status')).body).state, 'running');
  t.equal((await request(monPort, '/ecv')).status, 200);
});

for (const cluster of [true, false]) {
  t.test(`an HTTPS app: the monitor-port ECV probes ecv.monitor over TLS (cluster: ${cluster})`, async (t) => {
    const monPort = await freePort();
    await startApp(t, { kind: 'https', opts: { monPort, noWorkers: 1, cluster, ecv: { monitor: '/health' } } });
    const r = await request(monPort, '/ecv');
    t.equal(r.status, 200, r.body);
    t.match(r.body, /^status=AVAILABLE/);
  });
}
