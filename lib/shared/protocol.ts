// What the master says and answers, shared by the master, the monitor, the
// control client and server, and the CLI: the status, the signals it handles,
// and the control protocol. A leaf module, so none of them imports the
// master's code to know the shape of its answers.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RecycleReason } from './ipc';
import type { DurationsSnapshot } from './durations';

/** The strategy in use, as reported: 'reuseport-node' is reuseport through Node's own listen option. */
export type ActiveStrategy = 'reuseport' | 'reuseport-node' | 'round-robin' | 'shared' | 'single';

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
 * The master's state (lib/master/lifecycle.ts has the table): idle -> starting ->
 * running, running <-> reloading and running <-> upgrading, upgrading ->
 * handing-over (a new master serves; this one's workers drain), then draining
 * (a shutdown: the workers finish what they have) and stopped (the workers are
 * killed or gone; the process exits). The single process is running, then draining.
 */
export type MasterState =
  'idle' | 'starting' | 'running' | 'reloading' | 'upgrading' | 'handing-over' | 'draining' | 'stopped';

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
  /** Workers replaced since the master started, by reason. */
  recycles: Partial<Record<RecycleReason, number>>;
  /** Worker processes that exited since the master started, for any reason. */
  exits: number;
  ecv: { enabled: boolean; since: number };
  /** Counts of the workers that exited (their final counts), for cluster totals that never go back. */
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

/**
 * The control protocol: each master listens on `<pids>/master.<pid>.sock`, a
 * Unix socket with mode 0600 (only its own user and root can connect); a
 * client (lib/client/control.ts) sends one request as a JSON line and reads
 * one answer as a JSON line (lib/master/control-server.ts).
 */
export type ControlRequest =
  | { op: 'status' }
  | { op: 'reload' }
  /** `n`: that many workers; `delta`: that many more (or fewer, negative). */
  | { op: 'scale'; n?: number; delta?: number }
  | { op: 'shutdown' }
  | { op: 'stop' }
  /** ECV on or off (`cluster2 ecv enable|disable`): the control socket's 0600 is the access check. */
  | { op: 'ecv'; enabled: boolean }
  /** `node`: the new master's node binary (default: node on the master's PATH). */
  | { op: 'upgrade'; node?: string };

export type ControlOp = ControlRequest['op'];
export const CONTROL_OPS: readonly ControlOp[] = ['status', 'reload', 'scale', 'shutdown', 'stop', 'ecv', 'upgrade'];

/** What a master answers, per request. */
export interface ControlResults {
  status: MasterStatus;
  /** The pids of the workers serving once the reload finished. */
  reload: { workers: number[] };
  scale: { size: number; workers: number[] };
  /** The master's exit code (1: it had to kill workers at gracefulTimeout); null when it went before telling. */
  shutdown: { exitCode: number | null };
  stop: { exitCode: number | null };
  ecv: { enabled: boolean; since: number };
  /** Answered once the new master is up; the old one then drains and exits. */
  upgrade: { from: number; to: number; node: string };
}

/** One line from the master. */
export type ControlAnswerLine<T = unknown> = ({ ok: true; result: T } | { ok: false; error: string }) & {
  /** The answering master's pid: a client checks it is the one its pid file names. */
  pid?: number;
};

export interface ControlAnswer<T> {
  pid: number;
  result: T;
}

/** `<pids>/master.<pid>.sock`. */
export function controlSocketFile(pids: string, pid: number): string {
  return path.join(pids, `master.${pid}.sock`);
}

/**
 * A Unix socket path must fit sun_path (108 bytes on Linux, 104 on macOS,
 * with the terminating NUL). A longer pids path is reached on Linux through
 * /proc/self/fd/<fd of the directory>/<name>, which the kernel resolves
 * without that limit; release() once the socket is bound or connected.
 */
export function socketAddress(file: string): { address: string; release(): void } {
  if (Buffer.byteLength(file) < 104) return { address: file, release() {} };
  if (process.platform !== 'linux') {
    throw new Error(
      `cluster2: the control socket path ${file} is longer than a Unix socket allows (103 bytes); ` +
        'use a shorter pids directory',
    );
  }
  let fd: number | undefined = fs.openSync(path.dirname(file), 'r');
  const release = () => {
    if (fd !== undefined) fs.closeSync(fd);
    fd = undefined; // once: the number may be reused by then
  };
  return { address: `/proc/self/fd/${fd}/${path.basename(file)}`, release };
}
