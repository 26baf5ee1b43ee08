/**
 * Every message between the master and its workers, as one union.
 * All carry `c2` so they never collide with the app's own process.send() traffic.
 */

export type RecycleReason =
  'connThreshold' | 'maxRequests' | 'maxMemory' | 'maxAge' | 'unresponsive' | 'reload' | 'resize';

export interface WorkerStats {
  /** Connections accepted since start. */
  connections: number;
  /** Connections open now. */
  open: number;
  /** HTTP requests served since start. */
  requests: number;
  rss: number;
  heapUsed: number;
  /** CPU seconds, event-loop delay (s) and utilization: lib/worker/loop-stats.ts (absent before the first sample). */
  cpuSeconds?: number;
  /** Option requestHistogram: the request durations since the worker started (lib/worker/durations.ts). */
  durations?: import('./durations').DurationsSnapshot;
  loopDelayP50?: number;
  loopDelayP99?: number;
  loopUtilization?: number;
}

/** Why a worker drains, as its onDrain handlers are told: a recycle gives its trigger. */
export type DrainReason =
  | 'reload'
  | 'recycle'
  | 'resize'
  | 'shutdown'
  | 'upgrade'
  | 'master-gone'
  | Exclude<RecycleReason, 'reload' | 'resize'>;

/** Worker -> master. */
export type FromWorker =
  | { c2: 'listening'; address: { address: string; port: number; family: string } | string | null; tls?: boolean }
  | { c2: 'ready' }
  | { c2: 'pong'; seq: number; stats: WorkerStats }
  /** Its counts as it exits (sent from its exit handler): what it served after its last pong counts too. */
  | { c2: 'final'; stats: WorkerStats }
  | { c2: 'recycle'; reason: RecycleReason }
  | { c2: 'warning'; message: string }
  | { c2: 'boot-error'; message: string }
  | { c2: 'ecv-set'; enabled: boolean }
  /** The app's prom-client metrics (getMetricsAsJSON), after a pong: lib/worker/app-metrics.ts. */
  | { c2: 'prom'; metrics: unknown[] }
  /** A spare has booted and waits for a slot. */
  | { c2: 'spare' };

/** Master -> worker. */
export type ToWorker =
  | { c2: 'ping'; seq: number }
  /**
   * Stop accepting (after `acceptFor` ms: the queue of a socket just taken out of rotation), finish, exit.
   * `reason` and `deadline` (ms since the epoch: when the master cuts the worker) are for the app's onDrain handlers.
   */
  | { c2: 'drain'; acceptFor?: number; reason?: DrainReason; deadline?: number }
  | { c2: 'ecv'; enabled: boolean; since: number }
  /** The master is shutting down: a worker that got SIGTERM too waits for its drain (lib/worker/lifecycle.ts). */
  | { c2: 'stopping' };

/** Master -> spare (a worker process booted without a slot). */
export type ToSpare =
  /**
   * Become the worker of a slot: `env` completes the environment; `keepFd`: the slot's socket
   * among those the spare holds.
   */
  | { c2: 'takeover'; env: Record<string, string>; keepFd?: number }
  | { c2: 'drain'; reason?: DrainReason; deadline?: number };

function ours(m: unknown): boolean {
  return typeof m === 'object' && m !== null && typeof (m as { c2?: unknown }).c2 === 'string';
}
export const isFromWorker = ours as (m: unknown) => m is FromWorker;
export const isToWorker = ours as (m: unknown) => m is ToWorker;
export const isToSpare = ours as (m: unknown) => m is ToSpare;

/**
 * The stdio of every process a master starts (a worker, a spare, the master of an upgrade):
 * stdout and stderr shared, the IPC channel, and no stdin. A child given the master's stdin
 * would have libuv make that descriptor blocking in the child, and so in the master too (the
 * flag belongs to the open file both share): a master whose app reads its stdin (commands, a
 * REPL) would then block its whole event loop in a read. (Found by the chaos test: a keeper,
 * hung so in read(0), never saw its master exit.)
 */
export const CHILD_STDIO = ['ignore', 'inherit', 'inherit', 'ipc'] as const;

/** Environment variables the master hands a worker. */
export const ENV = {
  role: 'CLUSTER2_ROLE',
  slot: 'CLUSTER2_SLOT',
  strategy: 'CLUSTER2_STRATEGY',
  port: 'CLUSTER2_PORT',
  fd: 'CLUSTER2_FD',
  maxRequests: 'CLUSTER2_MAX_REQUESTS',
  pids: 'CLUSTER2_PIDS',
  ecv: 'CLUSTER2_ECV',
  /** A reuseport spare's descriptors, one per slot: "4,5,6". */
  spareFds: 'CLUSTER2_SPARE_FDS',
  /** "1": a spare forked on a quiet machine, which warms up its JIT while it waits (lib/worker/warm-up). */
  spareWarm: 'CLUSTER2_SPARE_WARM',
} as const;
