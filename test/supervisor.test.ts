import t from 'tap';
import { backoff } from '../dist/master/supervisor.js';
import { alive, nth, startApp, until } from './helpers/cluster';
import { request } from './helpers/http';

t.test('noWorkers workers are forked and serve', async (t) => {
  const app = await startApp(t, { opts: { noWorkers: 3 } });
  t.equal(app.workers().length, 3);
  const seen = new Set<string>();
  await until(
    async () => {
      seen.add((await request(app.port, '/')).body);
      return seen.size >= 2;
    },
    10_000,
    'answers from more than one worker',
  );
  t.pass(`answered by ${seen.size} workers`);
});

t.test('a worker killed with SIGKILL is replaced: died(pid, code, signal) then forked', async (t) => {
  const app = await startApp(t);
  const [victim] = app.workers();
  process.kill(victim, 'SIGKILL');
  const died = await app.waitFor('died', (e) => e.args[0] === victim);
  t.same(died.args, [victim, null, 'SIGKILL']);
  const forked = await nth(app, 'forked', 3);
  const i = app.events.indexOf(died);
  t.ok(app.events.indexOf(forked) > i, 'forked after died');
  await app.waitFor('listening', (e) => e.args[0] === forked.args[0]);
  t.equal(app.workers().length, 2, 'back to two workers');
  t.equal((await request(app.port, '/')).status, 200);
});

t.test('a worker that exits by itself is replaced too (died reports code 0)', async (t) => {
  const app = await startApp(t, { opts: { noWorkers: 1 } });
  const [w] = app.workers();
  process.kill(w, 'SIGTERM'); // a worker drains and exits 0 on SIGTERM
  const died = await app.waitFor('died', (e) => e.args[0] === w);
  t.same(died.args, [w, 0, null]);
  await nth(app, 'listening', 2);
});

t.test('respawn back-off grows exponentially and is capped', async (t) => {
  t.same([1, 2, 3, 4, 5, 6].map(backoff), [0, 100, 200, 400, 800, 1600]);
  t.equal(backoff(100), 10_000);
});

t.test('workers that die before listening five times in a row stop the master with exit 70', async (t) => {
  const app = await startApp(t, { env: { C2_BOOT_THROW: '1' }, listening: 0 });
  const { code } = await app.exited;
  t.equal(code, 70);
  t.match(app.stderr(), /boom at start/, 'the app error is on stderr');
  t.match(app.stderr(), /workers died 5 times in a row before listening \(last: [^)]+\); stopping with exit code 70/);
  const forks = app.events.filter((e) => e.ev === 'forked').length;
  t.ok(forks >= 5 && forks <= 6, `no fork storm: ${forks} forks`);
  for (const e of app.events.filter((x) => x.ev === 'forked')) t.notOk(alive(e.args[0]), `worker ${e.args[0]} is gone`);
});
