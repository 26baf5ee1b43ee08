export { Cluster, type Role } from './cluster';
export {
  EXIT_CODES, EXIT_CRASH_LOOP, EXIT_KILLED, EXIT_OK, EXIT_PORT_BUSY, EXIT_USAGE,
} from './exit-codes';
export { type ClusterOptions, type EcvOptions, type Strategy, STRATEGIES } from './options';
export type { RecycleReason } from './ipc';
export type { AppServer, ListenCallback } from './worker/app-server';
export { implementation } from './native';
