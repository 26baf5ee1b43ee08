// The real Supervisor (and Recycler) over a FakeListener, with options
// resolved as the master resolves them, taken down at the end of the test:
// every fake killed and gone, and none left that the supervisor lost track of.
import { EventEmitter, once } from 'node:events';
import type { Test } from 'tap';
import { Supervisor, type WorkerInfo } from '../../dist/master/supervisor.js';
import { Recycler } from '../../dist/master/recycle.js';
import { resolveOptions, type ClusterOptions } from '../../dist/shared/options.js';
import { FakeListener, type FakeChild } from './fake-child';

export interface Supervised {
  sup: Supervisor;
  listener: FakeListener;
  /** Errors of the recycles the recycler ran on its own (its onError). */
  errors: Error[];
  /** The next such error, waiting for it. */
  nextError(): Promise<Error>;
  recycler?: Recycler;
}

/**
 * A supervisor with fakes. Defaults keep the timers short and leave the spare
 * out (`spare: true` to test it); `recycler: true` adds a Recycler.
 */
export function supervised(
  t: Test,
  options: ClusterOptions = {},
  { recycler = false, strategy }: { recycler?: boolean; strategy?: FakeListener['name'] } = {},
): Supervised {
  const opts = resolveOptions({
    noWorkers: 1,
    spare: false,
    listenTimeout: 2000,
    gracefulTimeout: 1000,
    pids: t.testdir(),
    ...options,
  });
  const listener = new FakeListener(strategy);
  const sup = new Supervisor(opts, listener);
  const errors: Error[] = [];
  const reported = new EventEmitter();
  const onError = (e: Error) => {
    errors.push(e);
    reported.emit('failed', e);
  };
  const r = recycler ? new Recycler(sup, opts, onError) : undefined;
  t.teardown(async () => {
    r?.close();
    sup.end('kill');
    await sup.empty();
    const left = listener.live();
    for (const c of left) c.exit(null, 'SIGKILL');
    if (left.length) throw new Error(`fakes the supervisor lost track of: ${left.map((c) => c.pid).join(', ')}`);
  });
  const nextError = async () => ((await once(reported, 'failed')) as [Error])[0];
  return { sup, listener, errors, nextError, recycler: r };
}

/** The supervisor's record of a fake. */
export function info(sup: Supervisor, child: FakeChild): WorkerInfo {
  const w = sup.workers.get(child.pid);
  if (!w) throw new Error(`worker ${child.pid} is not in the table`);
  return w;
}

/** Pids of the slots' accepting workers, in slot order. */
export function accepting(sup: Supervisor): number[] {
  return sup.accepting().map((w) => w.pid);
}

/** Start n workers, each saying listening as soon as it is forked; resolves with them. */
export async function startListening(s: Supervised, n: number): Promise<FakeChild[]> {
  const first = s.listener.forks.length;
  const started = s.sup.start(n);
  const children = s.listener.forks.slice(first).map((f) => f.child);
  for (const c of children) c.listening();
  await started;
  return children;
}
