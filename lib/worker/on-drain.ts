import type { EventEmitter } from 'node:events';
import type { DrainHandler, DrainInfo, DrainReason } from '../shared/events';
import { workerLife } from './lifecycle';

export type { DrainHandler, DrainInfo, DrainReason };

// The handlers, the Clusters that get the 'drain' event and the signal they share live in
// this process's WorkerLife (lib/worker/lifecycle.ts): one per process (a worker, or the single
// process of `cluster: false`), whichever copy of cluster2 registers them.

export function addDrainHandler(emitter: EventEmitter, handler: DrainHandler): void {
  if (typeof handler !== 'function') {
    throw new TypeError(
      'cluster2: onDrain(handler): handler must be a function like ({ reason, deadline, signal }) => {...}; ' +
        `got ${handler === null ? 'null' : typeof handler}`,
    );
  }
  const life = workerLife();
  life.handlers.push(handler);
  life.emitters.add(emitter);
}

/** A Cluster that listens in this process gets the 'drain' event. */
export function watchDrain(emitter: EventEmitter): void {
  workerLife().emitters.add(emitter);
}

/** The signal the handlers get, available before the drain (aborted when it starts). */
export function drainSignal(): AbortSignal {
  return workerLife().controller.signal;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Start the app's part of a drain, once per process: abort the signal, call
 * every onDrain handler and every 'drain' listener. Resolves when all have
 * settled; a handler that throws or rejects is reported through `warn` and
 * counts as settled.
 */
export function runDrainHooks(reason: DrainReason, deadline: number, warn: (message: string) => void): Promise<void> {
  const r = workerLife();
  if (r.drainInfo) return Promise.resolve();
  const info: DrainInfo = { reason, deadline, signal: r.controller.signal };
  r.drainInfo = info;
  r.controller.abort(new DrainAbort(reason));
  const failed = (e: unknown) => warn(`cluster2: worker ${process.pid}: an onDrain handler failed: ${message(e)}`);
  const calls: Promise<unknown>[] = [];
  const call = (fn: (info: DrainInfo) => unknown, self?: unknown) => {
    try {
      const v = fn.call(self, info);
      if (v && typeof (v as Promise<unknown>).then === 'function') calls.push(Promise.resolve(v).catch(failed));
    } catch (e) {
      failed(e);
    }
  };
  for (const h of r.handlers) call(h);
  // rawListeners: a once() wrapper removes itself when called, as with emit().
  for (const e of r.emitters) for (const l of e.rawListeners('drain')) call(l as DrainHandler, e);
  return Promise.all(calls).then(() => undefined);
}

/** The reason an aborted drain signal carries (`signal.reason`). */
export class DrainAbort extends Error {
  override readonly name = 'AbortError';
  constructor(readonly reason: DrainReason) {
    super(`cluster2: the worker is draining (${reason})`);
  }
}
