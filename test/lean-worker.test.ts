// A worker, and a spare once it is handed a slot, loads the worker runtime and
// nothing of the master (supervisor, monitor, control client, prom-client, the
// addon), whether it was started through `cluster2 start` or through the API;
// both load the same cluster2 modules. Checked from inside the worker: the app
// (test/fixtures/modules-app.js) answers with its process's require.cache.
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { FIXTURES, startApp, until } from './helpers/cluster';
import { run, startCli, statusOf } from './helpers/cli';
import { request } from './helpers/http';

const APP = path.join(FIXTURES, 'modules-app.js');
const DIST = path.join(__dirname, '..', 'dist');
/** The master's code, or code only the master, the single process or a control client needs. */
const MASTER_ONLY =
  /[/\\]dist[/\\](master|monitor|listen|client|service)[/\\]|[/\\]dist[/\\](single|cli[/\\]output|shared[/\\]native)\.js$|[/\\]prom-client[/\\]|\.node$/;
/** What differs by entry only: the CLI's own modules; the API's require('cluster2'). */
const ENTRY = new Set([
  path.join('cli', 'main.js'),
  path.join('cli', 'args.js'),
  path.join('cli', 'app-module.js'),
  'cjs.js',
  'index.js',
]);
/** What only a spare forked on a quiet machine loads, before it is a worker: its JIT warm-up. */
const SPARE_ONLY = new Set([path.join('worker', 'warm-up.js')]);

/** The modules each of `pids` has loaded, asking on fresh connections until each has answered. */
async function modulesOf(port: number, pids: number[]): Promise<Map<number, string[]>> {
  const seen = new Map<number, string[]>();
  await until(
    async () => {
      const all = await Promise.all(Array.from({ length: 8 }, () => request(port, '/')));
      for (const r of all) {
        const o = JSON.parse(r.body) as { pid: number; modules: string[] };
        seen.set(o.pid, o.modules);
      }
      return pids.every((p) => seen.has(p));
    },
    30_000,
    `an answer from each of ${pids.join(', ')}`,
  );
  return seen;
}

/** cluster2's own modules, relative to dist/, without the entry's. */
const own = (modules: string[]) =>
  modules
    .filter((m) => m.startsWith(DIST + path.sep))
    .map((m) => path.relative(DIST, m))
    .filter((m) => !ENTRY.has(m) && !SPARE_ONLY.has(m))
    .sort();

function lean(t: Test, what: string, modules: string[]): void {
  const bad = modules.filter((m) => MASTER_ONLY.test(m));
  t.same(bad, [], `${what}: no master, monitor, control, prom-client or addon code`);
  t.ok(
    modules.some((m) => m.endsWith(path.join('worker', 'runtime.js'))),
    `${what}: runs the worker runtime`,
  );
}

/** Modules of the first workers (fresh forks), then of the workers a reload made of spares. */
async function workersAndSpares(
  t: Test,
  port: number,
  first: number[],
  spare: () => Promise<number>,
  reload: () => Promise<number[]>,
) {
  const fresh = await modulesOf(port, first);
  for (const [pid, m] of fresh) lean(t, `worker ${pid} (forked)`, m);
  const sparePid = await spare();
  const after = await reload();
  t.ok(after.includes(sparePid), `the spare ${sparePid} became a worker`);
  const taken = await modulesOf(port, [sparePid]);
  lean(t, `worker ${sparePid} (was the spare)`, taken.get(sparePid)!);
  return { fresh: own(fresh.get(first[0])!), spare: own(taken.get(sparePid)!) };
}

t.test('workers through cluster2 start and through the API load the same, lean, modules', async (t) => {
  const cli = await startCli(t, { app: APP });
  const cliFirst = [...new Set(cli.lines.filter((l) => l.event === 'listening').map((l) => l.worker as number))];
  const viaCli = await workersAndSpares(
    t,
    cli.port,
    cliFirst,
    async () =>
      (await until(
        async () => (await statusOf(cli.pids))[0]?.spare?.booted && (await statusOf(cli.pids))[0].spare.pid,
        20_000,
        'a booted spare',
      ))!,
    async () => {
      const r = await run(['reload', '--pids', cli.pids, '--json']);
      t.equal(r.code, 0, `cluster2 reload exits 0 ${r.stderr}`);
      return JSON.parse(r.stdout)[0].result.workers;
    },
  );

  const api = await startApp(t, { fixture: 'modules-app.js' });
  const apiFirst = api.events.filter((e) => e.ev === 'listening').map((e) => e.args[0]);
  const viaApi = await workersAndSpares(
    t,
    api.port,
    apiFirst,
    () => api.waitFor('spare').then((e) => e.args[0]),
    async () => {
      api.send('reload');
      await api.waitFor('reloaded', undefined, 60_000);
      return api.workers();
    },
  );

  t.same(viaCli.fresh, viaApi.fresh, 'forked workers: the same cluster2 modules through the CLI and the API');
  t.same(viaCli.spare, viaApi.spare, 'workers made of spares: the same cluster2 modules through the CLI and the API');
  t.same(viaCli.spare, viaCli.fresh, 'a spare-made worker loads what a forked one does');
});
