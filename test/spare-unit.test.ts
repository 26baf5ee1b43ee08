// The SpareKeeper (lib/master/spare.ts), through the Supervisor that owns it,
// against fake processes: the spare taken for a slot (booted or not yet), its
// death before it booted (refilled, then given up on with a warning), the
// spares a reload keeps, a resize and a shutdown. The real-process tests:
// spare.test.ts, quiet-spare.test.ts.
import { once } from 'node:events';
import t, { type Test } from 'tap';
import { SPARE_FAILURE_LIMIT } from '../dist/master/spare.js';
import type { FakeChild } from './helpers/fake-child';
import { accepting, startListening, supervised, type Supervised } from './helpers/supervised';

/** A supervisor with the spare option, its workers listening, its spare forked now (not once the machine is quiet). */
async function withSpare(t: Test, noWorkers = 1): Promise<Supervised & { spare: FakeChild }> {
  const s = supervised(t, { spare: true, noWorkers });
  await startListening(s, noWorkers);
  s.sup.wantSpares(1);
  return { ...s, spare: await s.listener.nthSpare(1) };
}

t.test('after the start, the spare is forked once the machine is quiet; it has no slot', async (t) => {
  const s = supervised(t, { spare: true });
  const forked = once(s.sup, 'spare');
  await startListening(s, 1);
  const spare = await s.listener.nthSpare(1);
  t.same(await forked, [spare.pid], 'spare(pid)');
  const env = s.listener.spareForks[0].env;
  t.same([env.CLUSTER2_ROLE, env.CLUSTER2_SLOT], ['worker', undefined]);
  t.same(s.sup.spares.status(), { pid: spare.pid, booted: false });
  spare.booted();
  t.same(s.sup.spares.status(), { pid: spare.pid, booted: true });
});

t.test('a respawn takes the booted spare: takeover with the slot, no fork', async (t) => {
  const s = await withSpare(t);
  s.spare.booted();
  const forked = once(s.sup, 'forked');
  s.listener.forks[0].child.exit(1);
  const m = await s.spare.received('takeover');
  t.equal(s.listener.forks.length, 1, 'nothing forked');
  t.same(s.listener.takeovers, [0]);
  const env = m.env as Record<string, string>;
  t.same([env.CLUSTER2_SLOT, env.CLUSTER2_FD, env.CLUSTER2_ROLE], ['0', '3', 'worker']);
  t.equal(((await forked)[0] as { pid: number }).pid, s.spare.pid, 'the spare is the slot worker');
  s.spare.listening();
  t.same(accepting(s.sup), [s.spare.pid]);
  t.same(s.sup.spares.status(), null, 'no spare until the next fill');
});

t.test('a spare taken before it booted gets its takeover once it has', async (t) => {
  const s = await withSpare(t);
  const replaced = s.sup.replace(0, 'reload', 5000);
  t.equal(s.listener.forks.length, 1, 'the replacement is the spare');
  t.same(s.spare.sent, [], 'nothing sent before it booted');
  s.spare.booted();
  t.equal((await s.spare.received('takeover')).c2, 'takeover');
  s.spare.listening();
  const r = await replaced;
  t.equal(r?.neo.pid, s.spare.pid);
});

t.test('a spare that dies before it booted is replaced', async (t) => {
  const s = await withSpare(t);
  s.spare.exit(1);
  const next = await s.listener.nthSpare(2);
  next.booted();
  t.same(s.sup.spares.status(), { pid: next.pid, booted: true });
});

t.test('a spare that fails to spawn is tried again', async (t) => {
  const s = supervised(t, { spare: true });
  await startListening(s, 1);
  s.listener.failSpawns = 1;
  const forked = once(s.sup, 'spare');
  s.sup.wantSpares(1);
  const spare = await s.listener.nthSpare(2);
  t.same(await forked, [spare.pid], 'spare(pid) for the one that spawned only');
  t.same(s.sup.spares.status(), { pid: spare.pid, booted: false });
});

t.test(`a spare that dies ${SPARE_FAILURE_LIMIT} times before it booted: warning, then fresh forks`, async (t) => {
  const s = await withSpare(t);
  const warning = once(s.sup, 'warning');
  for (let n = 1; n <= SPARE_FAILURE_LIMIT; n++) {
    const spare = await s.listener.nthSpare(n);
    spare.bootError('spare: cannot load cluster2');
    spare.exit(1);
  }
  t.same(await warning, [
    `cluster2: the spare worker died ${SPARE_FAILURE_LIMIT} times in a row before it booted; ` +
      'replacements are forked afresh from now on',
  ]);
  t.equal(s.sup.spares.status(), null);
  s.listener.forks[0].child.exit(1);
  const fresh = await s.listener.nthFork(2);
  t.equal(s.listener.spareForks.length, SPARE_FAILURE_LIMIT, 'no spare forked after the limit');
  fresh.listening();
  s.sup.wantSpares(2);
  t.equal(s.listener.spareForks.length, SPARE_FAILURE_LIMIT, 'not even for a reload');
});

t.test('a spare that booted breaks the run of deaths before booting', async (t) => {
  const s = await withSpare(t);
  s.sup.on('warning', (m: string) => t.fail(m));
  let n = 0;
  const dies = async (boot: boolean) => {
    const spare = await s.listener.nthSpare(++n);
    if (boot) spare.booted();
    spare.exit(1);
  };
  for (let i = 1; i < SPARE_FAILURE_LIMIT; i++) await dies(false);
  await dies(true);
  for (let i = 1; i < SPARE_FAILURE_LIMIT; i++) await dies(false);
  const next = await s.listener.nthSpare(++n);
  t.equal(n, 2 * SPARE_FAILURE_LIMIT, 'still refilled');
  next.booted();
});

t.test('a reload keeps one spare per replacement about to start; after it, one', async (t) => {
  const s = await withSpare(t, 2);
  s.sup.wantSpares(3);
  t.equal(s.listener.spareForks.length, 3, 'two more, at once');
  const [, second, third] = s.listener.spareForks.map((f) => f.child);
  s.sup.wantSpares(0);
  await Promise.all([second.gone(), third.gone()]);
  t.same([second.signals, third.signals], [['SIGTERM'], ['SIGTERM']], 'the extra ones let go');
  t.equal(s.sup.spares.status()?.pid, s.spare.pid, 'the oldest stays');
  t.equal(s.listener.spareForks.length, 3, 'none forked for them');
});

t.test('reuseport: a spare can take only the slots it holds sockets for; a resize lets it go', async (t) => {
  const s = supervised(t, { spare: true, noWorkers: 2 });
  s.listener.spareSlots = 2;
  await startListening(s, 2);
  s.sup.wantSpares(1);
  const spare = await s.listener.nthSpare(1);
  spare.booted();
  s.sup.resize(3);
  await spare.gone();
  t.same(spare.signals, ['SIGTERM'], 'it holds the sockets of 2 slots: let go');
  t.equal(s.listener.forks.length, 3, 'slot 2 forked afresh');
  t.same(s.listener.takeovers, []);
});

t.test('drainAll(): the spare exits and empty() waits for it too', async (t) => {
  const s = await withSpare(t);
  s.listener.forks[0].child.exitOnDrain = 0;
  s.spare.hung(); // takes its time to go
  s.sup.end('drain');
  t.same(s.spare.signals, ['SIGTERM']);
  let empty = false;
  const p = s.sup.empty().then(() => (empty = true));
  await s.listener.forks[0].child.gone();
  await new Promise(setImmediate);
  t.notOk(empty, 'not while the spare lives');
  s.spare.exit(0);
  await p;
  s.sup.wantSpares(2);
  t.equal(s.listener.spareForks.length, 1, 'no spare after a shutdown');
});
