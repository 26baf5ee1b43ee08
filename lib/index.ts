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
} from './shared/exit-codes';
export { StartError } from './shared/start-error';
export { type ClusterOptions, type EcvOptions, type MetricsOptions, type Strategy, STRATEGIES } from './shared/options';
export type { Resolved as ResolvedOptions, ResolvedEcv } from './shared/options';
export type { ClusterEvent, ClusterEvents } from './shared/events';
export type { MasterStatus } from './shared/protocol';
export type { DrainReason, RecycleReason } from './shared/ipc';
export type { DrainHandler, DrainInfo } from './worker/on-drain';
export type { AppServer, ListenCallback } from './worker/app-server';

/**
 * 'native' when the SO_REUSEPORT addon is in use, 'js' for the fallback. Read
 * lazily: a worker, which gets its socket from the master, never loads the addon.
 */
export declare const implementation: 'native' | 'js';
Object.defineProperty(exports, 'implementation', {
  enumerable: true,
  get: () => (require('./shared/native') as typeof import('./shared/native')).implementation,
});
