// The Supervisor (lib/master/supervisor.ts) against fake worker processes: the
// worker table, respawn and its back-off, the crash loop, replace(), resize()
// and drainAll(). The real-process tests of the same behaviour: supervisor.test.ts.
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import t from 'tap';
import { backoff, BOOT_FAILURE_LIMIT, KILL_GRACE_MS, type WorkerInfo } from '../dist/master/supervisor.js';
import { accepting, info, startListening, supervised } from './helpers/supervised';

/** Timers may fire up to a millisecond early (libuv rounds the loop time): a lower bound allows for it. */
const EARLY_MS = 2;

/**
 * Resolves once every timer of at most `ms` set before the call has fired (Node
 * runs timers in order of expiry, and those of one duration in the order set):
 * to show that something due by then did not happen. Not a wait for a process.
 */
function timersDue(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms + 1));
}

t.test('start(n) forks n workers with their slots and resolves once all listen', async (t) => {
  const s = supervised(t);
  const forked: number[] = [];
  s.sup.on('forked', (w: WorkerInfo) => forked.push(w.pid));
  let started = false;
  const p = s.sup.start(3).then(() => (started = true));
  t.same(
    s.listener.forks.map((f) => [f.slot, f.env.CLUSTER2_SLOT, f.env.CLUSTER2_ROLE]),
    [
      [0, '0', 'worker'],
      [1, '1', 'worker'],
      [2, '2', 'worker'],
    ],
  );
  t.same(
    forked,
    s.listener.forks.map((f) => f.child.pid),
    'forked(w) for each',
  );
  const [a, b, c] = s.listener.forks.map((f) => f.child);
  a.listening();
  b.listening();
  await new Promise(setImmediate);
  t.notOk(started, 'not before the last one listens');
  c.listening();
  await p;
  t.same(accepting(s.sup), [a.pid, b.pid, c.pid]);
  t.same(
    [...s.sup.workers.values()].map((w) => w.state),
    ['listening', 'listening', 'listening'],
  );
});

t.test('a worker that dies is replaced in its slot; died(w, code, signal) first', async (t) => {
  const s = supervised(t, { noWorkers: 2 });
  const [, b] = await startListening(s, 2);
  const died = once(s.sup, 'died');
  b.exit(3);
  const [w, code, signal] = (await died) as [WorkerInfo, number, null];
  t.same([w.pid, w.slot, code, signal], [b.pid, 1, 3, null]);
  const neo = await s.listener.nthFork(3);
  t.equal(s.listener.forks[2].slot, 1, 'forked for slot 1');
  t.equal(s.sup.restarts, 1);
  t.same(s.sup.slotRestarts[1], 1);
  neo.listening();
  t.equal(accepting(s.sup)[1], neo.pid);
});

t.test(
  `${BOOT_FAILURE_LIMIT} deaths before listening: crashLoop with the last boot error, respawn stops`,
  async (t) => {
    const s = supervised(t);
    const loops: string[] = [];
    s.sup.on('crashLoop', (last: string) => loops.push(last));
    s.listener.on('fork', (c) => {
      // Like a worker whose app throws at start: it says why, then exits 1.
      setImmediate(() => {
        c.bootError(`boom ${s.listener.forks.length}`);
        c.exit(1);
      });
    });
    const crash = once(s.sup, 'crashLoop');
    const empty = once(s.sup, 'empty');
    void s.sup.start(1);
    const [last] = await crash;
    t.equal(last, `boom ${BOOT_FAILURE_LIMIT}`, 'the last boot error');
    await empty;
    t.equal(s.listener.forks.length, BOOT_FAILURE_LIMIT, 'no fork after the limit');
    t.equal(s.sup.halted, false, 'it does not halt itself: its master decides (and halts it)');
    t.equal(s.sup.workers.size, 0);
    t.same(loops, [last], 'crashLoop once');
  },
);

t.test('a worker that never listens is killed at listenTimeout; the crash loop names that', async (t) => {
  const s = supervised(t, { listenTimeout: 100 }); // the floor (lib/shared/options.ts FLOORS)
  s.listener.on('fork', (c) => c.hung());
  void s.sup.start(1);
  const [last] = await once(s.sup, 'crashLoop');
  t.equal(s.listener.forks.length, BOOT_FAILURE_LIMIT);
  const killed = s.listener.forks[BOOT_FAILURE_LIMIT - 1].child;
  t.equal(last, `worker ${killed.pid} did not listen within 100 ms`);
  t.same(
    s.listener.forks.map((f) => f.child.signals),
    Array(BOOT_FAILURE_LIMIT).fill(['SIGKILL']),
    'each killed with SIGKILL',
  );
});

t.test('forks that fail to spawn (no pid, an error event) count as boot failures', async (t) => {
  const s = supervised(t);
  s.listener.failSpawns = BOOT_FAILURE_LIMIT;
  s.listener.spawnError = 'spawn /usr/bin/node EAGAIN';
  const died: (number | null)[] = [];
  s.sup.on('died', (w: WorkerInfo, code: number | null) => died.push(code));
  void s.sup.start(1);
  t.same(await once(s.sup, 'crashLoop'), ['spawn /usr/bin/node EAGAIN']);
  t.same(died, Array(BOOT_FAILURE_LIMIT).fill(null), 'died for each');
  t.equal(s.sup.workers.size, 0, 'none in the table');
});

t.test('a crash loop counts deaths in a row: a worker that listens resets the count', async (t) => {
  const s = supervised(t, { noWorkers: 2 });
  s.sup.on('crashLoop', () => t.fail('no crash loop'));
  void s.sup.start(2);
  const slot1 = s.listener.forks[1].child;
  // Slot 0 dies before listening BOOT_FAILURE_LIMIT - 1 times in a row...
  for (let n = 1; n < BOOT_FAILURE_LIMIT; n++) {
    const c = s.listener.forks.filter((f) => f.slot === 0)[n - 1].child;
    c.exit(1);
    await once(s.listener, 'fork');
  }
  // ... then slot 1 listens: the next death of slot 0 is the first of a new run.
  slot1.listening();
  const forks = s.listener.forks.length;
  s.listener.forks[forks - 1].child.exit(1);
  t.equal(s.sup.halted, false, 'still respawning');
  const next = await s.listener.nthFork(forks + 1);
  t.equal(s.listener.forks[forks].slot, 0, 'slot 0 respawned');
  next.listening();
});

t.test('quick deaths of a slot back off: 0, then 100, 200 ms before the next fork', async (t) => {
  const s = supervised(t);
  await startListening(s, 1);
  const waits: number[] = [];
  for (let n = 1; n <= 3; n++) {
    const c = s.listener.forks[n - 1].child;
    const at = performance.now();
    c.exit(1); // dies soon after it listened: a quick death
    await s.listener.nthFork(n + 1);
    waits.push(performance.now() - at);
    s.listener.forks[n].child.listening();
  }
  for (let n = 1; n <= 3; n++) {
    t.ok(
      waits[n - 1] >= backoff(n) - EARLY_MS,
      `death ${n}: forked after ${waits[n - 1].toFixed(1)} ms >= ${backoff(n)}`,
    );
  }
  t.equal(s.sup.restarts, 3);
});

t.test('replace(): the replacement first, then the old one drains; recycled(old, neo, reason)', async (t) => {
  const s = supervised(t, { gracefulTimeout: 5000 });
  const [old] = await startListening(s, 1);
  const recycled = once(s.sup, 'recycled');
  const replaced = s.sup.replace(0, 'maxAge', 1000);
  const neo = await s.listener.nthFork(2);
  t.same(old.sent, [], 'the old one is not told anything before the replacement listens');
  t.same(accepting(s.sup), [old.pid], 'the old one accepts meanwhile');
  neo.listening();
  const r = await replaced;
  t.same([r?.old.pid, r?.neo.pid], [old.pid, neo.pid]);
  const [o, n, reason] = (await recycled) as [WorkerInfo, WorkerInfo, string];
  t.same([o.pid, n.pid, reason], [old.pid, neo.pid, 'maxAge']);
  const drain = await old.received('drain');
  t.equal(drain.reason, 'maxAge');
  t.ok((drain.deadline as number) > Date.now() + 4000, 'deadline: gracefulTimeout from now');
  t.same(accepting(s.sup), [neo.pid]);
  old.exit(0);
  t.same([...s.sup.workers.keys()], [neo.pid]);
  t.equal(s.listener.forks.length, 2, 'a drained worker that exits is not respawned');
});

t.test('replace() of an unresponsive worker kills it instead of draining it', async (t) => {
  const s = supervised(t);
  const [old] = await startListening(s, 1);
  old.hung();
  const replaced = s.sup.replace(0, 'unresponsive', 1000);
  (await s.listener.nthFork(2)).listening();
  await replaced;
  await old.gone();
  t.same(old.signals, ['SIGKILL']);
  t.equal(old.sent.filter((m) => m.c2 === 'drain').length, 0, 'no drain message');
});

t.test('replace() returns null when there is nothing to replace', async (t) => {
  const s = supervised(t);
  const [w] = await startListening(s, 1);
  t.equal(await s.sup.replace(1, 'reload', 1000), null, 'a slot without a worker');
  s.sup.drain(info(s.sup, w));
  t.equal(await s.sup.replace(0, 'reload', 1000), null, 'a draining worker');
  t.equal(s.listener.forks.length, 1, 'nothing forked');
});

t.test('the old worker dies before its replacement listens: the replacement takes the slot', async (t) => {
  const s = supervised(t);
  const [old] = await startListening(s, 1);
  const replaced = s.sup.replace(0, 'reload', 5000);
  const neo = await s.listener.nthFork(2);
  old.exit(1);
  // The replacement takes its time to listen: longer than the slot's respawn back-off.
  await timersDue(backoff(1));
  neo.listening();
  t.equal(await replaced, null, 'nothing was recycled: the old one died');
  t.same(accepting(s.sup), [neo.pid], 'the replacement is the worker of the slot');
  t.same([...s.sup.workers.keys()], [neo.pid], 'no other worker');
  t.equal(s.listener.forks.length, 2, 'no respawn fork besides the replacement');
  t.same(
    neo.sent.filter((m) => m.c2 === 'drain'),
    [],
    'the replacement is not drained',
  );
});

t.test('the old worker dies, then its replacement fails: the slot is respawned', async (t) => {
  const s = supervised(t);
  const [old] = await startListening(s, 1);
  const replaced = s.sup.replace(0, 'reload', 5000);
  const neo = await s.listener.nthFork(2);
  old.exit(1);
  neo.bootError('new code is broken');
  neo.exit(1);
  await t.rejects(replaced, { message: /exited \(code 1, signal null\) before it was up: new code is broken/ });
  const third = await s.listener.nthFork(3);
  t.equal(s.listener.forks[2].slot, 0);
  third.listening();
  t.same(accepting(s.sup), [third.pid]);
});

t.test('a replacement that exits before listening: rejected, the old one keeps serving', async (t) => {
  const s = supervised(t);
  const [old] = await startListening(s, 1);
  const replaced = s.sup.replace(0, 'reload', 5000);
  const neo = await s.listener.nthFork(2);
  neo.bootError('SyntaxError: Unexpected token');
  neo.exit(1);
  await t.rejects(replaced, {
    message: `cluster2: worker ${neo.pid} exited (code 1, signal null) before it was up: SyntaxError: Unexpected token`,
  });
  t.same(accepting(s.sup), [old.pid]);
  t.equal(info(s.sup, old).state, 'listening');
  t.same(old.sent, [], 'the old one was told nothing');
  t.equal(s.sup.restarts, 0, 'a failed replacement is not respawned');
  t.equal(s.listener.forks.length, 2);
});

t.test("a replacement's failure names its own boot error, never an earlier worker's", async (t) => {
  const s = supervised(t);
  void s.sup.start(1);
  const first = s.listener.forks[0].child;
  first.bootError('boom at start');
  first.exit(1);
  (await s.listener.nthFork(2)).listening();
  const replaced = s.sup.replace(0, 'reload', 5000);
  const neo = await s.listener.nthFork(3);
  neo.exit(null, 'SIGSEGV'); // says nothing
  await t.rejects(replaced, {
    message: /^cluster2: worker \d+ exited \(code null, signal SIGSEGV\) before it was up$/,
  });
});

t.test("a crash loop names the last worker's failure, not a boot error from before a worker listened", async (t) => {
  const s = supervised(t, { noWorkers: 2 });
  void s.sup.start(2);
  const first = s.listener.forks[0].child;
  first.bootError('boom at start');
  first.exit(1);
  (await s.listener.nthFork(3)).listening();
  const crash = once(s.sup, 'crashLoop');
  s.listener.on('fork', (c) => setImmediate(() => c.exit(2)));
  s.listener.forks[1].child.exit(2);
  t.same(await crash, ['exit code 2']);
});

t.test('a replacement that does not listen in time: killed, rejected, the old one keeps serving', async (t) => {
  const s = supervised(t);
  const [old] = await startListening(s, 1);
  const replaced = s.sup.replace(0, 'reload', 50);
  const neo = await s.listener.nthFork(2);
  await t.rejects(replaced, { message: `cluster2: worker ${neo.pid} did not listen within 50 ms` });
  await neo.gone();
  t.same(neo.signals, ['SIGKILL']);
  t.same(accepting(s.sup), [old.pid]);
  t.same([...s.sup.workers.keys()], [old.pid]);
});

t.test('waitReady: a worker is up once it listened and said ready, in either order', async (t) => {
  const s = supervised(t, { noWorkers: 2, waitReady: true });
  let started = false;
  const p = s.sup.start(2).then(() => (started = true));
  const [a, b] = s.listener.forks.map((f) => f.child);
  a.listening();
  b.say('ready'); // PM2's convention: process.send('ready')
  await new Promise(setImmediate);
  t.notOk(started);
  a.ready();
  b.listening();
  await p;
});

t.test('resize(): grow forks the new slots, shrink drains the removed ones with acceptFor', async (t) => {
  const s = supervised(t, { noWorkers: 2 });
  const [a, b] = await startListening(s, 2);
  s.sup.resize(4);
  t.same(s.listener.sizes, [4]);
  t.same(
    s.listener.forks.slice(2).map((f) => f.slot),
    [2, 3],
  );
  for (const f of s.listener.forks.slice(2)) f.child.listening();
  s.listener.acceptFor = 250;
  s.sup.resize(1);
  t.same(accepting(s.sup), [a.pid]);
  for (const c of [b, ...s.listener.forks.slice(2).map((f) => f.child)]) {
    const m = await c.received('drain');
    t.same([m.reason, m.acceptFor], ['resize', 250], `worker of slot ${info(s.sup, c).slot} drains`);
    c.exit(0);
  }
  t.same([...s.sup.workers.keys()], [a.pid]);
  t.equal(s.listener.forks.length, 4, 'removed slots are not respawned');
});

t.test('resize() down cancels the pending respawn of a removed slot', async (t) => {
  const s = supervised(t, { noWorkers: 2 });
  const [, b] = await startListening(s, 2);
  b.exit(1); // the respawn of slot 1 is due at once (backoff 0), on the next turn of the timers
  s.sup.resize(1);
  await timersDue(backoff(1));
  t.equal(s.listener.forks.length, 2, 'slot 1 not respawned');
  s.sup.resize(2);
  t.equal(s.listener.forks.length, 3, 'growing again forks slot 1');
  t.equal(s.listener.forks[2].slot, 1);
});

t.test(
  'resize() down while a removed slot is being replaced: the replacement drains, the slot stays gone',
  async (t) => {
    const s = supervised(t, { noWorkers: 2 });
    const [a, b] = await startListening(s, 2);
    const replaced = s.sup.replace(1, 'reload', 5000);
    const neo = await s.listener.nthFork(3);
    s.sup.resize(1);
    t.equal((await neo.received('drain')).reason, 'resize', 'the replacement in flight drains');
    neo.listening(); // it had bound its socket already
    t.equal(await replaced, null);
    t.same(accepting(s.sup), [a.pid], 'only slot 0 accepts');
    // Growing again while the replacement still drains: slot 1 gets a worker of its own.
    s.sup.resize(2);
    t.equal(s.listener.forks.length, 4, 'growing again forks a worker for slot 1');
    const back = s.listener.forks[3].child;
    t.equal(s.listener.forks[3].slot, 1);
    b.exit(0);
    neo.exit(0);
    back.listening();
    t.same(accepting(s.sup), [a.pid, back.pid]);
  },
);

t.test('drain(): a worker that does not exit is killed KILL_GRACE_MS after gracefulTimeout', async (t) => {
  const s = supervised(t, { gracefulTimeout: 20 });
  const [w] = await startListening(s, 1);
  w.hung();
  const at = performance.now();
  s.sup.drain(info(s.sup, w));
  await w.gone();
  const waited = performance.now() - at;
  t.same(w.signals, ['SIGKILL']);
  t.ok(waited >= 20 + KILL_GRACE_MS - EARLY_MS, `killed after ${waited.toFixed(0)} ms`);
});

t.test("end('drain'): every worker drains for shutdown, none is respawned, empty once all exit", async (t) => {
  const s = supervised(t, { noWorkers: 3 });
  const children = await startListening(s, 3);
  let empties = 0;
  s.sup.on('empty', () => empties++);
  s.sup.end('drain');
  t.equal(s.sup.halted, true);
  for (const c of children) t.equal((await c.received('drain')).reason, 'shutdown');
  children[0].exit(0);
  children[1].exit(1); // even an error exit is not respawned now
  t.equal(empties, 0);
  children[2].exit(null, 'SIGTERM');
  t.equal(empties, 1, 'empty, once');
  await s.sup.empty();
  t.equal(s.listener.forks.length, 3, 'nothing forked');
});

t.test("end('kill'): SIGKILL to every worker, no respawn", async (t) => {
  const s = supervised(t, { noWorkers: 2 });
  const children = await startListening(s, 2);
  children[0].exit(1); // its respawn is pending (backoff 0) when killAll comes
  s.sup.end('kill');
  await s.sup.empty();
  t.same(children[1].signals, ['SIGKILL']);
  t.equal(s.listener.forks.length, 2);
});

t.test('worker messages: pong stats, warning, ecv-set, recycle, prom reach the supervisor', async (t) => {
  const s = supervised(t);
  const [w] = await startListening(s, 1);
  const pong = once(s.sup, 'pong');
  w.pong({ rss: 1234, requests: 7 });
  const [pw] = (await pong) as [WorkerInfo];
  t.same([pw.stats.rss, pw.stats.requests], [1234, 7]);
  const warning = once(s.sup, 'warning');
  w.say({ c2: 'warning', message: 'idle socket closed' });
  t.same(await warning, ['idle socket closed']);
  const ecv = once(s.sup, 'ecv');
  w.say({ c2: 'ecv-set', enabled: false });
  t.same(await ecv, [false]);
  const recycle = once(s.sup, 'recycle');
  w.recycle('maxRequests');
  const [rw, reason] = (await recycle) as [WorkerInfo, string];
  t.same([rw.pid, reason], [w.pid, 'maxRequests']);
  const metrics = [{ name: 'app_jobs_total', type: 'counter', values: [{ value: 3, labels: {} }] }];
  w.say({ c2: 'prom', metrics });
  t.same(s.sup.workers.get(w.pid)?.prom, metrics, "the app's metrics, kept with the worker for the metrics endpoint");
  s.sup.ecv = { enabled: false, since: 42 };
  s.sup.broadcast({ c2: 'ecv', enabled: false, since: 42 });
  t.same(await w.received('ecv'), { c2: 'ecv', enabled: false, since: 42 });
  w.exit(1);
  t.notOk(s.sup.workers.has(w.pid), 'forgotten with the worker when it exits');
  await s.listener.nthFork(2);
  t.equal(s.listener.forks[1].env.CLUSTER2_ECV, '0:42', 'a new worker gets the ECV state');
});

t.test("a worker's final counts, read after its 'exit', count: died waits for its channel's end", async (t) => {
  const s = supervised(t);
  const [w] = await startListening(s, 1);
  w.pong({ requests: 3 });
  const died: WorkerInfo[] = [];
  s.sup.on('died', (x: WorkerInfo) => died.push(x));
  w.exitUnread(0);
  await new Promise(setImmediate);
  t.same(died, [], "not at 'exit': its last message is still in the channel");
  w.say({ c2: 'final', stats: { ...w.stats, requests: 8 } });
  w.closeChannel();
  t.equal(died.length, 1, "died once the channel is read to its end ('close')");
  t.equal(died[0].stats.requests, 8, 'with its final counts');
  t.equal(s.sup.exits, 1, 'one exit counted');

  // A channel that stays open (a process the worker started holds it): died all the same, a bit later.
  const b = await s.listener.nthFork(2);
  b.listening();
  await s.sup.listening(info(s.sup, b));
  t.teardown(() => b.closeChannel());
  const later = once(s.sup, 'died');
  b.exitUnread(1);
  const [x] = (await later) as [WorkerInfo];
  t.equal(x.pid, b.pid, 'died without the channel closing');
  t.equal(s.sup.exits, 2);
});
