import type { EventEmitter } from 'node:events';
import type { DrainHandler, DrainInfo } from '../shared/events';
import { workerLife } from './lifecycle';

export type { DrainHandler, DrainInfo };

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
