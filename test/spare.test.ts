// The spare worker (option spare, on by default): a process booted ahead that
// runs none of the app's code until the master hands it a slot; then it is the
// slot's worker (respawn, recycle, reload, resize) and a new spare follows.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t, { type Test } from 'tap';
import { Cluster } from '../dist/index.js';
import type { MasterStatus } from '../dist/shared/protocol.js';
import { alive, FIXTURES, startApp, tmpdir, until, type App } from './helpers/cluster';
import { request, startLoad } from './helpers/http';
import { addonBuilt } from './helpers/native-util';
import { nodeHasReusePort } from '../dist/shared/native.js';
import { node22 } from './helpers/fetched';

/** Pids that ran the app's code, from C2_LOADED_LOG. */
function loaded(file: string): number[] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => Number(l.split(' ')[0]));
  } catch {
    return [];
  }
}

/** The pid of the n-th 'spare' event (1-based), waiting for it. */
async function spare(app: App, n = 1): Promise<number> {
  let seen = 0;
  return (await app.waitFor('spare', () => ++seen === n, 15_000)).args[0];
}

/** The master's status once its spare has booted (loaded everything it loads before a takeover). */
async function booted(app: App): Promise<MasterStatus> {
  const client = new Cluster({ pids: app.pids });
  return (await until(
    async () => {
      const s = await client.status();
      return s?.spare?.booted ? s : null;
    },
    10_000,
    'the spare to boot',
  ))!;
}

/** The next worker forked from now on (not one already forked). */
function nextForked(app: App): Promise<number> {
  const known = new Set(app.events.filter((e) => e.ev === 'forked').map((e) => e.args[0]));
  return app.waitFor('forked', (e) => !known.has(e.args[0]), 15_000).then((e) => e.args[0]);
}

/** Requests on fresh connections until `pid` has answered one. */
async function servedBy(app: App, pid: number): Promise<void> {
  await until(
    async () => {
      const bodies = await Promise.all(Array.from({ length: 8 }, () => request(app.port, '/')));
      return bodies.some((b) => b.body === `hello ${pid}`);
    },
    20_000,
    `an answer from ${pid}`,
  );
}

/** SIGTERM: the master exits 0 and no spare is left. */
async function shutsDownClean(t: Test, app: App, spares: number[]): Promise<void> {
  process.kill(app.pid, 'SIGTERM');
  t.equal((await app.exited).code, 0, 'a clean shutdown');
  await until(() => spares.every((p) => !alive(p)), 5000, 'every spare to be gone');
}

const linux = process.platform === 'linux';
const variants: { name: string; strategy: string; native: string; skip?: string | false; exec?: string }[] = [
  {
    name: 'reuseport (addon)',
    strategy: 'reuseport',
    native: '1',
    skip: !(addonBuilt() && linux) && 'needs the addon on Linux',
  },
  {
    // Node's own reusePort (>= 22.12): this Node when it has it, else a Node 22 fetched from
    // npm (helpers/node22) runs the master and its workers.
    name: 'reuseport-node',
    strategy: 'reuseport',
    native: '0',
    skip: !linux && 'needs Linux',
    exec: nodeHasReusePort ? undefined : node22(),
  },
  { name: 'round-robin', strategy: 'round-robin', native: '1' },
  { name: 'shared', strategy: 'shared', native: '1' },
];

for (const v of variants) {
  t.test(
    `${v.name}: the spare runs no app code, takes the slot of a dead worker and serves; a new spare follows`,
    { skip: v.skip },
    async (t) => {
      const log = path.join(tmpdir(), 'loaded');
      const app = await startApp(t, {
        opts: { strategy: v.strategy },
        exec: v.exec,
        env: { CLUSTER2_NATIVE: v.native, C2_LOADED_LOG: log },
      });
      const first = await spare(app);
      t.ok(alive(first), `spare ${first} is up`);
      t.notOk(app.workers().includes(first), 'the spare is not one of the workers');
      await booted(app);
      t.notOk(loaded(log).includes(first), 'the booted spare has not run the app code');
      const [victim] = app.workers();
      const next = nextForked(app);
      process.kill(victim, 'SIGKILL');
      t.equal(await next, first, "the dead worker's slot went to the spare");
      await app.waitFor('listening', (e) => e.args[0] === first);
      t.ok(loaded(log).includes(first), 'it ran the app code once it had a slot');
      await servedBy(app, first);
      const second = await spare(app, 2);
      t.not(second, first, `a new spare ${second} follows`);
      const listenedAt = app.events.findIndex((e) => e.ev === 'listening' && e.args[0] === first);
      const spareAt = app.events.findIndex((e) => e.ev === 'spare' && e.args[0] === second);
      t.ok(listenedAt < spareAt, 'forked only after the replacement listened (not competing with it for the CPU)');
      await shutsDownClean(t, app, [second]);
    },
  );
}

t.test('an ES module app (top-level await) runs in a spare as its main script', async (t) => {
  const app = await startApp(t, { fixture: 'esm-app.mjs' });
  const first = await spare(app);
  const next = nextForked(app);
  process.kill(app.workers()[0], 'SIGKILL');
  t.equal(await next, first, 'the spare took the slot');
  await until(
    async () => {
      const bodies = await Promise.all(Array.from({ length: 8 }, () => request(app.port, '/')));
      return bodies.some((b) => b.body === `hello ${first} main`);
    },
    20_000,
    `an answer from ${first}`,
  );
});

t.test('recycle and reload take the spare, and the app code is loaded afresh from disk', async (t) => {
  const dir = tmpdir();
  const file = path.join(dir, 'version.js');
  const write = (v: string) =>
    fs.writeFileSync(file, `module.exports = (req, res) => res.end('${v} ' + process.pid);\n`);
  write('v1');
  const log = path.join(dir, 'loaded');
  const app = await startApp(t, { opts: { maxRequests: 30 }, env: { C2_APP_FILE: file, C2_LOADED_LOG: log } });
  const s1 = await spare(app);
  const load = startLoad(app.port, { connections: 20 });
  const rec = await app.waitFor('recycled', (e) => e.args[2] === 'maxRequests', 20_000);
  t.equal(rec.args[1], s1, 'the maxRequests recycle took the spare');
  write('v2');
  const s2 = await spare(app, 2);
  app.send('reload');
  await app.waitFor('reload-ok', undefined, 30_000);
  const reloaded = app.events.find((e) => e.ev === 'reloaded')!.args[0] as [number, number][];
  // maxRequests keeps recycling under the load meanwhile: some spare, not necessarily s2.
  const spares = new Set(app.events.filter((e) => e.ev === 'spare').map((e) => e.args[0]));
  t.ok(spares.has(s2), 'a second spare came');
  t.ok(
    reloaded.some(([, neo]) => spares.has(neo)),
    `a reload step took a spare: ${JSON.stringify(reloaded)}`,
  );
  const r = await load.stop();
  t.equal(r.failed, 0, `no failed requests (${JSON.stringify(r.errors)}), ${r.ok} ok`);
  for (let i = 0; i < 10; i++) t.match((await request(app.port, '/')).body, /^v2 /, 'the new code answers');
  await shutsDownClean(t, app, [...spares]);
});

t.test('status() reports the spare apart from the workers; shutdown leaves nothing', async (t) => {
  const app = await startApp(t);
  const pid = await spare(app);
  const st = await booted(app);
  t.same(st.spare, { pid, booted: true }, 'status().spare');
  t.notOk(
    st.workers.some((w) => w.pid === pid),
    'not among the workers',
  );
  t.equal(st.workers.length, 2);
  process.kill(app.pid, 'SIGTERM');
  t.equal((await app.exited).code, 0);
  await until(() => !alive(pid), 5000, 'the spare to exit');
});

t.test('the spare leaves when the master is killed', async (t) => {
  const app = await startApp(t);
  const pid = await spare(app);
  process.kill(app.pid, 'SIGKILL');
  await until(() => !alive(pid), 5000, 'the orphaned spare to exit');
  t.pass('gone');
});

t.test(
  'reuseport: a resize lets the spare go (it holds the sockets of the old slots); a new one follows',
  { skip: !(addonBuilt() && linux) && 'needs the addon on Linux' },
  async (t) => {
    const app = await startApp(t, { opts: { strategy: 'reuseport' } });
    const first = await spare(app);
    app.send('resize 3');
    const second = await spare(app, 2);
    t.not(second, first);
    await until(() => !alive(first), 5000, 'the old spare to exit');
    t.equal(app.workers().length, 3, 'three workers');
    app.send('resize 1');
    const third = await spare(app, 3);
    await until(() => app.workers().length === 1, 10_000, 'one worker');
    for (let i = 0; i < 20; i++) t.equal((await request(app.port, '/')).status, 200);
    t.ok(alive(third));
  },
);

t.test('round-robin: a resize keeps the spare (it holds no socket), and it can take a new slot', async (t) => {
  const app = await startApp(t, { opts: { strategy: 'round-robin' } });
  const first = await spare(app);
  const next = nextForked(app);
  app.send('resize 3');
  t.equal(await next, first, 'the new slot went to the spare');
  await servedBy(app, first);
  t.not(await spare(app, 2), first, 'a new spare follows');
  const second = (await booted(app)).spare!.pid;
  app.send('resize 2');
  await until(() => app.workers().length === 2, 10_000, 'two workers');
  // The master answers status after it has handled the worker's exit.
  t.equal(
    (await new Cluster({ pids: app.pids }).status())?.spare?.pid,
    second,
    'the spare was kept through the resize down',
  );
  t.equal(app.events.filter((e) => e.ev === 'spare').length, 2, 'no other spare forked');
});

t.test(
  'a spare killed is replaced; one that cannot boot is given up (replacements are forked) with a warning',
  async (t) => {
    const app = await startApp(t);
    const first = await spare(app);
    process.kill(first, 'SIGKILL');
    const second = await spare(app, 2);
    t.not(second, first, 'replaced');

    const killer = path.join(FIXTURES, 'spare-dies.js');
    const broken = await startApp(t, {
      env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${killer}` },
    });
    const w = await broken.waitFor('warning', (e) => /spare worker died 5 times/.test(e.args[0]), 20_000);
    t.match(w.args[0], /forked afresh/);
    const [victim] = broken.workers();
    const next = nextForked(broken);
    process.kill(victim, 'SIGKILL');
    const neo = await next;
    await broken.waitFor('listening', (e) => e.args[0] === neo);
    await servedBy(broken, neo);
  },
);

t.test('waitReady: the next spare waits until the replacement is ready, not just listening', async (t) => {
  const never = path.join(tmpdir(), 'never-ready');
  const app = await startApp(t, { opts: { waitReady: true }, env: { C2_NEVER_READY: never } });
  const first = await spare(app);
  fs.writeFileSync(never, '');
  const next = nextForked(app);
  process.kill(app.workers()[0], 'SIGKILL');
  t.equal(await next, first, 'the spare took the slot');
  await app.waitFor('listening', (e) => e.args[0] === first);
  // The master answers status after it has handled the replacement's 'listening'.
  const st = await new Cluster({ pids: app.pids }).status();
  t.equal(st?.spare ?? null, null, 'no new spare while the replacement is not ready');
  t.equal(app.events.filter((e) => e.ev === 'spare').length, 1, 'no spare event either');
});

t.test('spare: false keeps no spare', async (t) => {
  const app = await startApp(t, { opts: { spare: false } });
  const before = app.workers();
  const [victim] = before;
  process.kill(victim, 'SIGKILL');
  const neo = await until(
    () => app.workers().find((p) => p !== victim && !before.includes(p)),
    10_000,
    'a replacement',
  );
  await app.waitFor('listening', (e) => e.args[0] === neo);
  t.notOk(
    app.events.some((e) => e.ev === 'spare'),
    'no spare event',
  );
  t.equal((await new Cluster({ pids: app.pids }).status())?.spare, null);
});
