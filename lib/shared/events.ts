import type { AddressInfo } from 'node:net';
import type { DrainReason, RecycleReason } from './ipc';

export type { DrainReason };

/** What an onDrain handler (and a 'drain' listener) gets. */
export interface DrainInfo {
  /**
   * Why: 'reload', 'resize', 'shutdown', 'upgrade' (a new master took over), 'master-gone', or the recycle trigger ('maxRequests',
   * 'maxAge', ...; 'recycle' otherwise).
   */
  reason: DrainReason;
  /** When (ms since the epoch) the worker is cut: whatever is still open then is closed. */
  deadline: number;
  /** Aborted when the drain starts (already aborted when the handler runs): for SSE loops, long polls, fetches. */
  signal: AbortSignal;
}

/** May be async: the worker waits for it (up to the deadline) before it exits. */
export type DrainHandler = (info: DrainInfo) => unknown;

/**
 * The events of a master's (or single process's) Cluster object and their
 * listeners' arguments: `c.on('died', (pid, code, signal) => ...)` is checked.
 */
export interface ClusterEvents {
  /** A worker started for a slot (a fresh fork, or the spare handed the slot). */
  forked: (pid: number) => void;
  /** A spare worker was forked. */
  spare: (pid: number) => void;
  listening: (pid: number, address: AddressInfo | string | null) => void;
  /** Also for a clean exit (code 0). */
  died: (pid: number, code: number | null, signal: NodeJS.Signals | null) => void;
  recycled: (oldPid: number, newPid: number, reason: RecycleReason) => void;
  /** A rolling reload finished: [oldPid, newPid] per slot. */
  reloaded: (pairs: [oldPid: number, newPid: number][]) => void;
  reloadFailed: (message: string) => void;
  /** The monitor server's address. */
  monitor: (address: AddressInfo) => void;
  /** The metrics server's address (option metrics). */
  metrics: (address: AddressInfo) => void;
  /** The listen strategy in use and the resolved port. */
  strategy: (name: string, port: number) => void;
  ecv: (enabled: boolean) => void;
  warning: (message: string) => void;
  /** Just before the master exits. */
  exit: (code: number) => void;
  /** A command came in over the control socket ('reload', 'scale', ...). */
  control: (op: string) => void;
  SIGTERM: () => void;
  SIGINT: () => void;
  SIGQUIT: () => void;
  SIGHUP: () => void;
  SIGTTIN: () => void;
  SIGTTOU: () => void;
  SIGUSR2: () => void;
  /** An upgrade of the master began: the new master's pid and its node binary. */
  upgrading: (pid: number, node: string) => void;
  /** The new master is up and serves; this one drains its workers. */
  upgraded: (from: number, to: number) => void;
  /**
   * This master's workers are gone after an upgrade: it exits, or, when it is the process
   * that started the service, it stays as the keeper of the new master (see 'keeping').
   */
  retired: (from: number, to: number) => void;
  /** This process (the one that started the service) keeps the master `pid`: it forwards signals to it. */
  keeping: (pid: number) => void;
  upgradeFailed: (message: string) => void;
  /** In a worker (or the process of `cluster: false`): it starts to drain (see onDrain). */
  drain: (info: DrainInfo) => unknown;
}

export type ClusterEvent = keyof ClusterEvents;
