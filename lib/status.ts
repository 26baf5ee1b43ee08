// What the master shows of itself, shared by the master, the monitor, the control
// client and server, and the CLI: a leaf module (types and constants only), so
// none of them imports the master's code to know the shape of its answers.
import type { ActiveStrategy } from './listen/strategy';
import type { DurationsSnapshot } from './worker/durations';

/** Signals the master handles; each is also emitted as an event of that name. */
export const MASTER_SIGNALS: NodeJS.Signals[] = [
  'SIGTERM',
  'SIGINT',
  'SIGQUIT',
  'SIGHUP',
  'SIGTTIN',
  'SIGTTOU',
  'SIGUSR2',
];

/**
 * The master's state (lib/master/master.ts): idle -> starting -> running,
 * running <-> reloading and running <-> upgrading, then draining (a shutdown:
 * the workers finish what they have) and stopped (the workers are killed or
 * gone; the process exits). The single process is running, then draining.
 */
export type MasterState = 'idle' | 'starting' | 'running' | 'reloading' | 'upgrading' | 'draining' | 'stopped';

/** A snapshot of the master for the monitor, the control socket and `cluster2 status`. */
export interface MasterStatus {
  pid: number;
  /** 'degraded': running, but no worker listens (lib/master/degraded.ts). */
  state: MasterState | 'degraded';
  strategy: ActiveStrategy | undefined;
  implementation: string;
  port: number;
  started: number;
  size: number;
  restarts: number;
  ecv: { enabled: boolean; since: number };
  /** Counts of the workers that exited (from their last pong), for cluster totals that never go back. */
  retired: { connections: number; requests: number; durations?: DurationsSnapshot };
  workers: {
    pid: number;
    slot: number;
    state: string;
    started: number;
    listened: number;
    /** Respawns of this worker's slot after unexpected exits. */
    restarts: number;
    connections: number;
    open: number;
    requests: number;
    rss: number;
    heapUsed: number;
    /** From the worker's last pong (lib/worker/loop-stats.ts). */
    cpuSeconds?: number;
    loopDelayP50?: number;
    loopDelayP99?: number;
    loopUtilization?: number;
    durations?: DurationsSnapshot;
  }[];
  /** The spare worker process (option spare): booted, or still starting; null when there is none. */
  spare: { pid: number; booted: boolean } | null;
  events: { time: number; event: string; args: unknown[] }[];
}
