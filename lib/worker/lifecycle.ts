import type { EventEmitter } from 'node:events';
import { exitProcess, WORKER_DRAINED, WORKER_FAILED } from '../shared/exit-codes';
import { isToWorker, type DrainReason, type ToWorker } from '../shared/ipc';
import type { DrainHandler, DrainInfo } from '../shared/events';
import { drain as drainConnections } from './drain-connections';
import { startDrain } from './drain-long-lived';
import type { Instrumented } from './instrument';

/** Beyond drainDelay: how long a worker that got SIGTERM waits to hear that its master shuts down. */
export const SIGTERM_WAIT_MS = 1000;
/** The backstop beyond gracefulTimeout, for when the master is not there to kill us. */
const ORPHAN_GRACE_MS = 1000;

export type DrainMessage = Extract<ToWorker, { c2: 'drain' }>;

/**
 * booting: the app's listen callback runs (a drain asked now is kept for when it serves);
 * serving: the runtime answers the master; draining: it leaves, once.
 */
export type WorkerState = 'booting' | 'serving' | 'draining';

/** What the runtime serves with (lib/worker/runtime.ts). */
export interface Serving {
  /** The app's server, instrumented: what a drain closes and waits for. */
  inst: Instrumented;
  gracefulTimeout: number;
  /** How long it stays after it stopped accepting (round-robin's hand-offs still in the pipe). */
  settle: number;
  warn(message: string): void;
  ping(msg: Extract<ToWorker, { c2: 'ping' }>): void;
  ecv(enabled: boolean, since: number): void;
}

/**
 * The one owner of a worker process's lifecycle (in single mode, of the one process, which is
 * its own worker): its state, what the master said before the runtime served (a drain, an ECV
 * change), whether the master is shutting down (for SIGTERM), and the app's onDrain handlers
 * (lib/worker/on-drain.ts). It is the one listener of the master's messages, the master's
 * disappearance and SIGTERM, and dispatches them by state, as node's cluster primary does
 * with its message table.
 *
 * One per process, also when two copies of cluster2 are loaded (the worker entry's and the
 * app's own require): it lives on globalThis (workerLife()).
 */
export class WorkerLife {
  state: WorkerState = 'booting';
  /** A drain asked before the runtime served: carried out once it does (it then never listens). */
  private asked: { reason: DrainReason; msg?: DrainMessage } | undefined;
  /** The last ECV change told before the runtime served (it overrides the state given at fork). */
  ecvTold: { enabled: boolean; since: number } | undefined;
  /** The master said it shuts down ('stopping'): a SIGTERM waits for its drain message. */
  private masterStopping = false;
  private sigtermTimer: NodeJS.Timeout | undefined;
  private serving: Serving | undefined;
  private listening = false;
  private hearing = false;

  // ---- the app's part of a drain (lib/worker/on-drain.ts) ----
  readonly handlers: DrainHandler[] = [];
  /** Clusters that listened or asked for onDrain: each gets the 'drain' event. */
  readonly emitters = new Set<EventEmitter>();
  readonly controller = new AbortController();
  /** The drain the handlers were called for. */
  drainInfo: DrainInfo | undefined;

  /**
   * Listen to the master (its messages, its disappearance) and to SIGTERM, once. `drainDelay`
   * bounds how long a SIGTERM waits for the master's word (see sigterm()).
   */
  listen(drainDelay: number): void {
    if (this.listening) return;
    this.listening = true;
    this.listenToMaster();
    // The master is gone (even SIGKILL): finish what is in flight and leave.
    process.on('disconnect', () => this.drain('master-gone'));
    process.on('SIGTERM', () => this.sigterm(drainDelay));
  }

  /**
   * The master's messages, from the worker's first line (lib/worker/entry.ts: an ESM app loads
   * asynchronously, and a drain may come before the runtime is there), once.
   */
  listenToMaster(): void {
    if (this.hearing) return;
    this.hearing = true;
    process.on('message', (m: unknown) => {
      if (isToWorker(m)) this.message(m);
    });
  }

  private message(m: ToWorker): void {
    switch (m.c2) {
      case 'drain':
        return this.drain(m.reason ?? 'shutdown', m);
      case 'stopping':
        this.masterStopping = true;
        return;
      case 'ecv':
        if (this.serving) this.serving.ecv(m.enabled, m.since);
        else this.ecvTold = { enabled: m.enabled, since: m.since };
        return;
      case 'ping':
        this.serving?.ping(m);
        return;
    }
  }

  /** A drain the master asked for (`msg`), or the master is gone: now when serving, else once it serves. */
  drain(reason: DrainReason, msg?: DrainMessage): void {
    if (this.state === 'draining') return;
    if (!this.serving) {
      this.asked = { reason, msg }; // the last word: a drain message, or the master gone since
      return;
    }
    this.state = 'draining';
    this.leave(this.serving, reason, msg);
  }

  /**
   * Drain, once, then exit: 0 when nothing had to be cut. Told by the master (`msg`: its
   * acceptFor and deadline; the master kills it at the deadline), or on its own (the master
   * gone, a SIGTERM): by gracefulTimeout, its own backstop.
   */
  private leave(s: Serving, reason: DrainReason, msg?: DrainMessage): void {
    const timeout = msg ? s.gracefulTimeout + ORPHAN_GRACE_MS : s.gracefulTimeout;
    const deadline = msg?.deadline ?? Date.now() + s.gracefulTimeout;
    const cutAt = Date.now() + timeout;
    // The app's onDrain handlers, GOAWAY for HTTP/2, close frames for WebSockets.
    const hooks = this.runHooks(reason, deadline, s.warn);
    const started = startDrain(s.inst, { reason, deadline, warn: s.warn, hooks });
    const acceptFor = msg?.acceptFor ?? 0;
    void drainConnections(s.inst, { gracefulTimeout: timeout, acceptFor, settle: s.settle }).then(async (clean) => {
      const settled = await started.settled(cutAt);
      exitProcess(clean && settled ? WORKER_DRAINED : WORKER_FAILED);
    });
  }

  /**
   * The app's part of a drain, once per process: abort the signal, call every onDrain handler
   * and every 'drain' listener. Resolves when all have settled; a handler that throws or
   * rejects is reported through `warn` and counts as settled.
   */
  runHooks(reason: DrainReason, deadline: number, warn: (message: string) => void): Promise<void> {
    if (this.drainInfo) return Promise.resolve();
    const info: DrainInfo = { reason, deadline, signal: this.controller.signal };
    this.drainInfo = info;
    this.controller.abort(new DrainAbort(reason));
    const failed = (e: unknown) =>
      warn(`cluster2: worker ${process.pid}: an onDrain handler failed: ${e instanceof Error ? e.message : String(e)}`);
    const calls: Promise<unknown>[] = [];
    const call = (fn: (info: DrainInfo) => unknown, self?: unknown) => {
      try {
        const v = fn.call(self, info);
        if (v && typeof (v as Promise<unknown>).then === 'function') calls.push(Promise.resolve(v).catch(failed));
      } catch (e) {
        failed(e);
      }
    };
    for (const h of this.handlers) call(h);
    // rawListeners: a once() wrapper removes itself when called, as with emit().
    for (const e of this.emitters) for (const l of e.rawListeners('drain')) call(l as DrainHandler, e);
    return Promise.all(calls).then(() => undefined);
  }

  /**
   * systemd's default KillMode (and `kill` of a process group) signals the master and every
   * worker at once: the master then shuts down (it says 'stopping') and tells each worker when
   * to drain, once every connection the kernel accepted has reached one (lib/service/quiesce.ts).
   * A worker that drained at once would close its listener first. So while the master is there,
   * a worker that got SIGTERM waits: for its drain message when the master shuts down, or, when
   * the master says nothing within drainDelay + SIGTERM_WAIT_MS (the signal was for this worker
   * alone), it drains by itself. Without a master it drains at once.
   */
  private sigterm(drainDelay: number): void {
    if (!process.connected) return this.drain('shutdown');
    if (this.masterStopping || this.sigtermTimer) return;
    this.sigtermTimer = setTimeout(() => {
      if (!this.masterStopping) this.drain('shutdown');
    }, drainDelay + SIGTERM_WAIT_MS);
  }

  /**
   * The runtime serves: from now on the master's messages reach `s`. A drain asked before
   * is carried out now; then the state is 'draining' and the worker must not listen.
   */
  serve(s: Serving): WorkerState {
    this.serving = s;
    this.state = 'serving';
    const asked = this.asked ?? (process.connected ? undefined : { reason: 'master-gone' as const });
    if (asked) this.drain(asked.reason, asked.msg);
    return this.state;
  }
}

/** The reason an aborted drain signal carries (`signal.reason`). */
export class DrainAbort extends Error {
  override readonly name = 'AbortError';
  constructor(readonly reason: DrainReason) {
    super(`cluster2: the worker is draining (${reason})`);
  }
}

/** This process's WorkerLife (one per process, whichever copy of cluster2 asks). */
export function workerLife(): WorkerLife {
  const key = Symbol.for('cluster2.workerLife');
  const g = globalThis as unknown as Record<symbol, WorkerLife | undefined>;
  return (g[key] ??= new WorkerLife());
}
