import type { ChildProcess } from 'node:child_process';
import type { WorkerStats } from '../shared/ipc';

/** A worker, as its master's supervisor (lib/master/supervisor.ts) keeps it. */
export type WorkerState = 'starting' | 'listening' | 'draining';

export interface WorkerInfo {
  slot: number;
  pid: number;
  proc: ChildProcess;
  state: WorkerState;
  started: number;
  /** When it reported listening; 0 before. */
  listened: number;
  /** When it was up: listening, or with waitReady its ready message; 0 before. */
  ready: number;
  /** It sent ready (it may do so before its listening message arrives). */
  saidReady: boolean;
  lastPong: number;
  /** It serves TLS (https), as it said when it listened. */
  tls?: boolean;
  stats: WorkerStats;
  /** Its RSS (the last figure known) when it was told to drain; 0 until then. */
  drainRss: number;
  /** It leads its own process group, as read at fork (lib/shared/process-group.ts); undefined: cannot be told here. */
  group?: boolean;
  /** Why it failed to start: as it said (boot-error), or as the master saw it (spawn error, listenTimeout). */
  bootError?: string;
  killTimer?: NodeJS.Timeout;
  /** The app's prom-client metrics, as its last heartbeat brought them (lib/worker/prom-forward.ts). */
  prom?: unknown[];
}
