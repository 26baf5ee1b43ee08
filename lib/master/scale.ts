import type { ControlResults } from '../shared/protocol';
import type { Request } from './lifecycle';
import type { Supervisor } from './supervisor';

/** The most workers a master runs (options.ts's noWorkers range). */
const MAX_WORKERS = 1024;

/** The pids of the workers that accept connections now. */
export function serving(sup: Supervisor): number[] {
  return sup.accepting().map((w) => w.pid);
}

/**
 * Grow or shrink (signals: by one, never below one); resolves once exactly that many workers
 * listen, rejects when the master ends meanwhile (`ending`) or the size changes again.
 */
export function scale(
  sup: Supervisor,
  req: Extract<Request, { op: 'scale' }>,
  ending: () => boolean,
): Promise<ControlResults['scale']> {
  const n = req.n ?? sup.size + (req.delta ?? 0);
  if (req.origin === 'signal' && n < 1) return Promise.resolve({ size: sup.size, workers: serving(sup) });
  if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) {
    return Promise.reject(
      new RangeError(
        `cluster2: scale: the number of workers must be a whole number from 1 to ${MAX_WORKERS}; asked for ${n}`,
      ),
    );
  }
  sup.resize(n);
  return settled(sup, n, ending).then(() => ({ size: n, workers: serving(sup) }));
}

/** Resolves when exactly n workers run and all are up (removed ones have exited); rejects if the master ends. */
function settled(sup: Supervisor, n: number, ending: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (ending()) return done(new Error('cluster2: scale: the master is stopping'));
      if (sup.size !== n) return done(new Error(`cluster2: scale: the size changed to ${sup.size} meanwhile`));
      const ws = [...sup.workers.values()];
      if (ws.length === n && ws.every((w) => w.state === 'listening' && w.ready)) done();
    };
    const done = (e?: Error) => {
      sup.off('ready', check);
      sup.off('died', check);
      sup.off('halted', check);
      if (e) reject(e);
      else resolve();
    };
    sup.on('ready', check);
    sup.on('died', check);
    sup.on('halted', check);
    check();
  });
}
