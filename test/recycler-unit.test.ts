// The Recycler (lib/master/recycle.ts) against fake worker processes: the
// recycle triggers (worker requests, heartbeat, maxMemory, maxAge), the queue
// (one recycle at a time, a reload reloadConcurrency at a time) and a reload
// meeting a resize or a shutdown. The real-process tests: recycle.test.ts,
// reload-concurrency.test.ts, stall.test.ts.
import { once } from 'node:events';
import t from 'tap';
import type { WorkerInfo } from '../dist/master/supervisor.js';
import { accepting, info, startListening, supervised, type Supervised } from './helpers/supervised';

/** Every worker forked from now on listens on the next turn of the loop, and exits 0 once told to drain. */
function compliant(s: Supervised): void {
  s.listener.onChild = (c) => {
    c.exitOnDrain = 0;
    setImmediate(() => c.listening());
  };
}

/** The recycled(old, neo, reason) events, as [oldPid, newPid, reason]. */
function recycledLog(s: Supervised): [number, number, string][] {
  const log: [number, number, string][] = [];
  s.sup.on('recycled', (o: WorkerInfo, n: WorkerInfo, reason: string) => log.push([o.pid, n.pid, reason]));
  return log;
}

/** The largest number of replacements starting at once (a worker forked and not yet listening, beside its slot's). */
function maxInFlight(s: Supervised): () => number {
  let now = 0;
  let max = 0;
  s.sup.on('forked', (w: WorkerInfo) => {
    if (!s.sup.accepting().includes(w)) max = Math.max(max, ++now);
  });
  s.sup.on('listening', () => (now = Math.max(0, now - 1)));
  s.sup.on('died', (w: WorkerInfo) => {
    if (!w.listened) now = Math.max(0, now - 1);
  });
  return () => max;
}

t.test('reload replaces every slot, one at a time up to 4 workers', async (t) => {
  const s = supervised(t, { noWorkers: 3 }, { recycler: true });
  const old = await startListening(s, 3);
  for (const c of old) c.exitOnDrain = 0;
  compliant(s);
  const log = recycledLog(s);
  const inFlight = maxInFlight(s);
  await s.recycler!.reload([0, 1, 2]);
  t.same(
    log.map(([o, , r]) => [o, r]),
    old.map((c) => [c.pid, 'reload']),
    'each old worker recycled, in slot order',
  );
  t.same(
    accepting(s.sup),
    log.map(([, n]) => n),
    'the replacements accept',
  );
  t.equal(inFlight(), 1, 'one replacement at a time');
  for (const c of old) t.equal((await c.received('drain')).reason, 'reload');
});

t.test('reloadConcurrency: that many at once, never two of one slot', async (t) => {
  const s = supervised(t, { noWorkers: 4, reloadConcurrency: 2 }, { recycler: true });
  const old = await startListening(s, 4);
  for (const c of old) c.exitOnDrain = 0;
  // The replacements listen only when the test says.
  const reloaded = s.recycler!.reload([0, 1, 2, 3]);
  t.same(
    s.listener.forks.slice(4).map((f) => f.slot),
    [0, 1],
    'two start at once',
  );
  s.listener.forks[5].child.listening();
  const third = await s.listener.nthFork(7);
  t.equal(s.listener.forks[6].slot, 2, 'the next one starts as one listens');
  s.listener.forks[4].child.listening();
  const fourth = await s.listener.nthFork(8);
  third.listening();
  fourth.listening();
  await reloaded;
  t.same(
    s.listener.forks.map((f) => f.slot),
    [0, 1, 2, 3, 0, 1, 2, 3],
  );
});

t.test('a reload stops at the first failure: the rest keep their old workers, the error says why', async (t) => {
  const s = supervised(t, { noWorkers: 3 }, { recycler: true });
  const old = await startListening(s, 3);
  const reloaded = s.recycler!.reload([0, 1, 2]);
  const neo = await s.listener.nthFork(4);
  neo.bootError("Cannot find module 'express'");
  neo.exit(1);
  await t.rejects(reloaded, {
    message: `cluster2: worker ${neo.pid} exited (code 1, signal null) before it was up: Cannot find module 'express'`,
  });
  t.equal(s.listener.forks.length, 4, 'no further replacement started');
  t.same(
    accepting(s.sup),
    old.map((c) => c.pid),
  );
  for (const c of old)
    t.same(
      c.sent.filter((m) => m.c2 === 'drain'),
      [],
      `worker ${c.pid} was not drained`,
    );
  t.same(s.errors, [], 'a reload failure goes to its caller, not to onError');
});

t.test('grow during a reload: the new slots get workers, the reload replaces the slots it was given', async (t) => {
  const s = supervised(t, { noWorkers: 2 }, { recycler: true });
  const old = await startListening(s, 2);
  for (const c of old) c.exitOnDrain = 0;
  const log = recycledLog(s);
  const reloaded = s.recycler!.reload([0, 1]);
  const first = await s.listener.nthFork(3); // slot 0's replacement, starting
  compliant(s);
  s.sup.resize(4);
  t.same(
    s.listener.forks.slice(3).map((f) => f.slot),
    [2, 3],
    'slots 2 and 3 forked at once',
  );
  first.listening();
  await reloaded;
  t.same(
    log.map(([o]) => o),
    old.map((c) => c.pid),
    'slots 0 and 1 replaced',
  );
  t.equal(s.sup.accepting().length, 4);
  t.same(
    s.listener.forks.map((f) => f.slot),
    [0, 1, 0, 2, 3, 1],
  );
});

t.test('shrink during a reload: the queued slots that are gone are skipped', async (t) => {
  const s = supervised(t, { noWorkers: 3 }, { recycler: true });
  const [a, b, c] = await startListening(s, 3);
  for (const x of [a, b, c]) x.exitOnDrain = 0;
  const reloaded = s.recycler!.reload([0, 1, 2]);
  const neo = await s.listener.nthFork(4);
  s.sup.resize(1);
  neo.listening();
  await reloaded;
  t.equal(s.listener.forks.length, 4, 'slots 1 and 2 were not replaced: they are gone');
  t.same(accepting(s.sup), [neo.pid]);
  await Promise.all([a.gone(), b.gone(), c.gone()]);
});

t.test('shrink during a reload removes the slot being replaced: "scaled to N meanwhile"', async (t) => {
  const s = supervised(t, { noWorkers: 2 }, { recycler: true });
  const [a, b] = await startListening(s, 2);
  b.exitOnDrain = 0;
  const reloaded = s.recycler!.reload([1, 0]);
  const neo = await s.listener.nthFork(3);
  neo.exitOnDrain = 0; // drained by the resize before it listened
  s.sup.resize(1);
  await t.rejects(reloaded, {
    message: 'the number of workers was scaled to 1 meanwhile (slot 1 is gone); not a failure of the new code',
  });
  t.equal(s.listener.forks.length, 3, 'slot 0 was not replaced after that');
  t.same(accepting(s.sup), [a.pid]);
});

t.test('a shutdown during a reload: queued replacements rejected, no new fork, empty once all exit', async (t) => {
  const s = supervised(t, { noWorkers: 3 }, { recycler: true });
  const old = await startListening(s, 3);
  for (const c of old) c.exitOnDrain = 0;
  const reloaded = s.recycler!.reload([0, 1, 2]);
  const rejected = t.rejects(reloaded, { message: 'cluster2: the cluster is shutting down' });
  const neo = await s.listener.nthFork(4); // its replacement in flight, not listening yet
  const recycled = recycledLog(s);
  const empty = once(s.sup, 'empty');
  s.recycler!.close();
  s.sup.end('drain');
  for (const c of [...old, neo]) t.equal((await c.received('drain')).reason, 'shutdown', `${c.pid} drains`);
  neo.listening(); // it had bound its socket before the drain reached it
  for (const c of old) await c.gone();
  neo.exit(0);
  await empty;
  await rejected;
  t.equal(s.listener.forks.length, 4, 'nothing forked after the shutdown began');
  t.same(recycled, [], 'nothing recycled');
  old[0].recycle('maxRequests'); // too late: ignored
  t.equal(s.listener.forks.length, 4);
});

t.test('a worker asks for a recycle: replaced once, however often it asks', async (t) => {
  const s = supervised(t, { noWorkers: 2 }, { recycler: true });
  const [a] = await startListening(s, 2);
  a.exitOnDrain = 0;
  const log = recycledLog(s);
  const recycled = once(s.sup, 'recycled');
  a.recycle('maxRequests');
  a.recycle('maxRequests');
  a.recycle('connThreshold');
  (await s.listener.nthFork(3)).listening();
  await recycled;
  t.equal((await a.received('drain')).reason, 'maxRequests');
  await a.gone();
  t.equal(s.listener.forks.length, 3, 'one replacement');
  t.same(
    log.map(([, , r]) => r),
    ['maxRequests'],
  );
});

t.test('a recycle asked while a reload replaces that worker does not replace its replacement', async (t) => {
  const s = supervised(t, { noWorkers: 1 }, { recycler: true });
  const [old] = await startListening(s, 1);
  const log = recycledLog(s);
  const reloaded = s.recycler!.reload([0]);
  const neo = await s.listener.nthFork(2);
  old.recycle('maxRequests'); // queued: its slot is being replaced
  neo.listening();
  await reloaded;
  t.equal((await old.received('drain')).reason, 'reload', 'the old one drains (and takes its time)');
  t.equal(s.listener.forks.length, 2, 'no replacement of the replacement');
  t.same(
    neo.sent.filter((m) => m.c2 === 'drain'),
    [],
    'the replacement serves on',
  );
  t.same(
    log.map(([o, n, r]) => [o, n, r]),
    [[old.pid, neo.pid, 'reload']],
  );
  old.exit(0);
});

t.test('recycles run one at a time', async (t) => {
  const s = supervised(t, { noWorkers: 3 }, { recycler: true });
  const old = await startListening(s, 3);
  for (const c of old) {
    c.exitOnDrain = 0;
    c.recycle('maxRequests');
  }
  t.equal(s.listener.forks.length, 4, 'one replacement started');
  for (let n = 4; n <= 6; n++) {
    (await s.listener.nthFork(n)).listening();
    await once(s.sup, 'recycled');
  }
  t.same(
    s.listener.forks.slice(3).map((f) => f.slot),
    [0, 1, 2],
  );
});

t.test('a failed recycle goes to onError; the worker keeps serving and can be recycled later', async (t) => {
  const s = supervised(t, { listenTimeout: 100 }, { recycler: true }); // the floor (options.ts FLOORS)
  const [w] = await startListening(s, 1);
  w.recycle('maxRequests');
  const neo = await s.listener.nthFork(2);
  neo.hung(); // never listens: killed at listenTimeout
  const error = await s.nextError();
  t.equal(error.message, `cluster2: worker ${neo.pid} did not listen within 100 ms`);
  t.same(neo.signals, ['SIGKILL']);
  t.same(accepting(s.sup), [w.pid]);
  w.exitOnDrain = 0;
  w.recycle('maxRequests');
  const again = await s.listener.nthFork(3);
  again.listening();
  await w.gone();
  t.same(accepting(s.sup), [again.pid]);
});

t.test('heartbeat: a worker that stops answering pings is replaced and killed (unresponsive)', async (t) => {
  const s = supervised(t, { noWorkers: 2, heartbeatTimeout: 100 }, { recycler: true });
  const [a, b] = await startListening(s, 2);
  compliant(s);
  a.hung();
  const [old, neo, reason] = (await once(s.sup, 'recycled')) as [WorkerInfo, WorkerInfo, string];
  t.same([old.pid, old.slot, reason], [a.pid, 0, 'unresponsive']);
  await a.gone();
  t.same(a.signals, ['SIGKILL'], 'killed: a hung worker cannot drain');
  t.same(accepting(s.sup), [neo.pid, b.pid], 'the worker that answers stays');
  t.ok(
    b.sent.some((m) => m.c2 === 'ping'),
    'pinged',
  );
});

t.test('maxMemory: a worker over it is recycled; a draining one over it is killed', async (t) => {
  const s = supervised(t, { noWorkers: 2, maxMemory: '100M', heartbeatTimeout: 200 }, { recycler: true });
  const [a, b] = await startListening(s, 2);
  compliant(s);
  const recycled = once(s.sup, 'recycled');
  a.exitOnDrain = 0;
  a.pong({ rss: 101 * 2 ** 20 });
  const [old, , reason] = (await recycled) as [WorkerInfo, WorkerInfo, string];
  t.same([old.pid, reason], [a.pid, 'maxMemory']);
  t.equal((await a.received('drain')).reason, 'maxMemory');
  // b drains (a resize, say) and grows: the recycler still pings it, and kills it.
  const warning = once(s.sup, 'warning');
  b.stats.rss = 300 * 2 ** 20;
  s.sup.drain(info(s.sup, b));
  t.same(await warning, [
    `cluster2: worker ${b.pid} is draining with 300 MB RSS, over its ceiling of 125 MB (maxMemory plus a quarter): killed`,
  ]);
  await b.gone();
  t.same(b.signals, ['SIGKILL']);
});

t.test('maxMemory: the worker recycled for it drains unharmed, until it grows a quarter more', async (t) => {
  const s = supervised(t, { noWorkers: 1, maxMemory: '100M', heartbeatTimeout: 200 }, { recycler: true });
  const [a] = await startListening(s, 1);
  compliant(s);
  const recycled = once(s.sup, 'recycled');
  a.pong({ rss: 110 * 2 ** 20 });
  await recycled;
  await a.received('drain');
  /** Resolves once the recycler has pinged `a` k more times (each ping answered with a.stats). */
  const pinged = (k: number) =>
    new Promise<void>((resolve) => {
      const seen = (m: { c2: string }) => {
        if (m.c2 === 'ping' && --k === 0) {
          a.off('sent', seen);
          resolve();
        }
      };
      a.on('sent', seen);
    });
  // Over maxMemory, which is why it drains, and within 110 + 25 MB: three rounds answered.
  a.stats.rss = 130 * 2 ** 20;
  await pinged(4);
  t.same(a.signals, [], 'not killed at 130 MB: its drain began at 110 MB');
  const warning = once(s.sup, 'warning');
  a.stats.rss = 140 * 2 ** 20;
  t.same(await warning, [
    `cluster2: worker ${a.pid} is draining with 140 MB RSS, over its ceiling of 135 MB (maxMemory plus a quarter): killed`,
  ]);
  await a.gone();
  t.same(a.signals, ['SIGKILL']);
});

t.test('maxAge: a worker older than that is recycled', async (t) => {
  const s = supervised(t, { maxAge: 1000, heartbeatTimeout: 100 }, { recycler: true }); // maxAge's floor
  const [w] = await startListening(s, 1);
  w.exitOnDrain = 0;
  const neo = await s.listener.nthFork(2);
  neo.listening();
  const [, , reason] = (await once(s.sup, 'recycled')) as [WorkerInfo, WorkerInfo, string];
  t.equal(reason, 'maxAge');
  s.recycler!.close(); // the replacement would be next
  await w.gone();
});

t.test('requests for a worker that is not listening are ignored', async (t) => {
  const s = supervised(t, { noWorkers: 2 }, { recycler: true });
  void s.sup.start(2);
  const [a, b] = s.listener.forks.map((f) => f.child);
  a.recycle('maxRequests'); // starting
  b.listening();
  s.sup.drain(info(s.sup, b));
  b.recycle('maxRequests'); // draining
  a.listening();
  await s.recycler!.reload([]);
  t.equal(s.listener.forks.length, 2, 'nothing forked');
  s.recycler!.close();
  b.exit(0);
});
