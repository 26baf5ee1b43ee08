// A reload replaces reloadConcurrency workers at once (default: 1 up to 4
// workers, then 25% of them), each replacement first, with one spare per
// replacement about to start; nothing is lost.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { Cluster } from '../dist/index.js';
import { alive, startApp, tmpdir, until } from './helpers/cluster';
import { request, startLoad } from './helpers/http';

t.test('8 workers reload 2 at a time under load: 0 failed, spares keep pace, one spare after', async (t) => {
  const app = await startApp(t, { opts: { noWorkers: 8 }, timeout: 60_000 });
  const before = app.workers();
  const load = startLoad(app.port, { connections: 16 });
  await load.served(500, 30_000);
  const from = app.events.length;
  app.send('reload');
  await app.waitFor('reload-ok', undefined, 120_000);
  await load.served(500, 30_000);
  const r = await load.stop();
  t.equal(r.failed, 0, `0 failed of ${r.ok + r.failed} (${JSON.stringify(r.errors)})`);

  // Replacements in flight at once: forked (a new worker, or a spare handed a slot), not yet recycled.
  const during = app.events.slice(from);
  const spares = new Set(app.events.filter((e) => e.ev === 'spare').map((e) => e.args[0]));
  let inFlight = 0;
  let most = 0;
  let fromSpare = 0;
  let replacements = 0;
  for (const e of during) {
    if (e.ev === 'forked') {
      replacements++;
      if (spares.has(e.args[0])) fromSpare++;
      most = Math.max(most, ++inFlight);
    }
    if (e.ev === 'recycled') inFlight--;
  }
  t.equal(replacements, 8, 'one replacement per worker');
  t.equal(most, 2, 'two replacements in flight at once (25% of 8), never more');
  t.ok(fromSpare >= 6, `spares keep pace: ${fromSpare} of 8 replacements were spares`);
  const recycled = during.filter((e) => e.ev === 'recycled');
  t.equal(recycled.length, 8);
  t.ok(
    recycled.every((e) => e.args[2] === 'reload' && before.includes(e.args[0])),
    "every old worker recycled(old, new, 'reload')",
  );
  // Capacity: an old worker goes only after its replacement listens (recycled comes first).
  for (const e of recycled) {
    const gone = during.findIndex((d) => d.ev === 'died' && d.args[0] === e.args[0]);
    const listened = during.findIndex((d) => d.ev === 'listening' && d.args[0] === e.args[1]);
    t.ok(listened >= 0 && (gone < 0 || listened < gone), `${e.args[1]} listened before ${e.args[0]} went`);
  }
  await until(() => before.every((p) => !alive(p)), 30_000, 'the old workers to exit');

  // Back to the usual single spare, booted.
  const client = new Cluster({ pids: app.pids });
  await until(
    async () => {
      const s = await client.status();
      const workers = new Set(s?.workers.map((w) => w.pid));
      const all = app.events.filter((e) => e.ev === 'spare').map((e) => e.args[0] as number);
      const idle = all.filter((p) => alive(p) && !workers.has(p) && !app.workers().includes(p));
      return s?.spare?.booted && idle.length === 1 && s.workers.length === 8;
    },
    30_000,
    'one booted spare and 8 workers',
  );
  process.kill(app.pid, 'SIGTERM');
  t.equal((await app.exited).code, 0, 'a clean shutdown');
});

t.test('reloadConcurrency: 3 replaces 3 at once', async (t) => {
  const app = await startApp(t, { opts: { noWorkers: 4, reloadConcurrency: 3 }, timeout: 60_000 });
  const from = app.events.length;
  app.send('reload');
  await app.waitFor('reload-ok', undefined, 120_000);
  let inFlight = 0;
  let most = 0;
  for (const e of app.events.slice(from)) {
    if (e.ev === 'forked') most = Math.max(most, ++inFlight);
    if (e.ev === 'recycled') inFlight--;
  }
  t.equal(most, 3, 'three in flight at once');
  t.equal(app.events.slice(from).filter((e) => e.ev === 'recycled').length, 4);
});

t.test(
  'a failing new version stops a concurrent reload: no replacement starts after, the old workers serve',
  async (t) => {
    const dir = tmpdir();
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'version.js');
    fs.writeFileSync(file, "module.exports = (req, res) => res.end('v1 ' + process.pid);");
    const app = await startApp(t, {
      opts: { noWorkers: 6, reloadConcurrency: 2 },
      env: { C2_APP_FILE: file },
      timeout: 60_000,
    });
    const serving = app.workers().sort();
    const load = startLoad(app.port, { connections: 12 });
    await load.served(300, 30_000);
    fs.writeFileSync(file, "throw new Error('v2 is broken');");
    const from = app.events.length;
    app.send('reload');
    const err = await app.waitFor('reload-error', undefined, 60_000);
    t.match(err.args[0], /reload failed, the old workers keep serving: .*before it was up/);
    const forked = app.events.slice(from).filter((e) => e.ev === 'forked');
    t.equal(forked.length, 2, 'the two replacements in flight, and no more after the failure');
    await until(() => forked.every((e) => !alive(e.args[0])), 20_000, 'the failed replacements to be gone');
    t.same(app.workers().sort(), serving, 'the same six workers serve');
    await load.served(300, 30_000);
    const r = await load.stop();
    t.equal(r.failed, 0, `0 failed of ${r.ok + r.failed} (${JSON.stringify(r.errors)})`);
    t.match((await request(app.port, '/')).body, /^v1 /, 'still v1');
  },
);
