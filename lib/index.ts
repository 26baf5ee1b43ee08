export { Cluster, type Role } from './cluster';
export {
  EXIT_CANTCREAT,
  EXIT_CODES,
  EXIT_CRASH_LOOP,
  EXIT_KILLED,
  EXIT_NOHOST,
  EXIT_OK,
  EXIT_PORT_BUSY,
  EXIT_USAGE,
} from './exit-codes';
export { StartError } from './start-error';
export { type ClusterOptions, type EcvOptions, type MetricsOptions, type Strategy, STRATEGIES } from './options';
export type { Resolved as ResolvedOptions, ResolvedEcv } from './options';
export type { ClusterEvent, ClusterEvents } from './events';
export type { MasterStatus } from './status';
export type { DrainReason, RecycleReason } from './ipc';
export type { DrainHandler, DrainInfo } from './worker/drain-hooks';
export type { AppServer, ListenCallback } from './worker/app-server';

/**
 * 'native' when the SO_REUSEPORT addon is in use, 'js' for the fallback. Read
 * lazily: a worker, which gets its socket from the master, never loads the addon.
 */
export declare const implementation: 'native' | 'js';
Object.defineProperty(exports, 'implementation', {
  enumerable: true,
  get: () => (require('./native') as typeof import('./native')).implementation,
});
