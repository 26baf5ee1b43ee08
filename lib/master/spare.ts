import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { ENV, isFromWorker, type ToSpare } from '../shared/ipc';
import type { Listener } from '../listen/strategy';
import { backoff } from './backoff';
import { whenQuiet } from './idle-cpu';

/** Deaths of the spare before it booted, in a row, after which replacements are forked fresh. */
export const SPARE_FAILURE_LIMIT = 5;

interface SpareProc {
  proc: ChildProcess;
  /** The slots it can take: 0..slots-1. */
  slots: number;
  /** It said it has booted (its message listener is there). */
  booted: boolean;
  /** A takeover sent before it booted waits here. */
  pending?: ToSpare;
  /** Handed to the supervisor as a worker: its exit is no longer ours. */
  taken: boolean;
}

/**
 * The spare worker processes: one, and during a reload one per replacement
 * about to start (setTarget). Each is booted ahead (Node started, cluster2's worker
 * runtime loaded, none of the app's code run) and handed to the next slot
 * that needs a worker: a recycle, a reload step, a respawn or a new slot then
 * costs an IPC round trip and the app's own start instead of a whole fork.
 * Owned by the supervisor, which decides when a spare is taken and when a new
 * one is forked (never while a worker is starting: it would compete with it
 * for the CPU). Events: forked(pid), died(pid, code, signal), warning(message).
 */
export class SpareKeeper extends EventEmitter {
  /** The spares now, oldest first. */
  private readonly pool: SpareProc[] = [];
  /** How many spares fill() keeps. */
  private target = 1;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Cancels the wait for a quiet machine before the usual spare is forked. */
  private waiting: (() => void) | undefined;
  private closed = false;
  /** Spare processes not yet exited (those in the pool, and those let go that are on their way out). */
  private readonly alive = new Set<ChildProcess>();

  constructor(
    private readonly listener: Listener,
    private readonly env: () => NodeJS.ProcessEnv,
    private enabled: boolean,
  ) {
    super();
  }

  /** The spare now (the oldest, when a reload keeps several), if any: its pid and whether it has booted. */
  status(): { pid: number; booted: boolean } | null {
    const s = this.pool[0];
    return s ? { pid: s.proc.pid ?? -1, booted: s.booted } : null;
  }

  /** Keep `n` spares (at least 1) from the next fill(); spares beyond it exit now. */
  setTarget(n: number): void {
    this.target = Math.max(1, n);
    while (this.pool.length > this.target) this.let(this.pool[this.pool.length - 1]);
  }

  /**
   * Fork spares up to the target (none while one is due after a failure).
   * The usual single spare waits until the machine is quiet (lib/master/quiet);
   * `now`, or several spares (a reload needs them), do not wait. A spare
   * forked on a machine with a core idle warms up its JIT while it waits
   * (`warm`): the compiling a new worker would otherwise do under load is
   * done with the idle CPU (lib/worker/warm-up). One forked because it is
   * needed now, or on a machine less idle than that, does not: its warm-up
   * would take the CPU from the workers serving.
   */
  fill(now = false, warm = false): void {
    if (!this.enabled || this.closed || this.timer || this.pool.length >= this.target) return;
    if (!now && this.target === 1) {
      this.waiting ??= whenQuiet((roomy) => {
        this.waiting = undefined;
        this.fill(true, roomy);
      });
      return;
    }
    this.stopWaiting();
    while (this.pool.length < this.target) this.forkOne(warm);
  }

  private stopWaiting(): void {
    this.waiting?.();
    this.waiting = undefined;
  }

  private forkOne(warm: boolean): void {
    const env = this.env();
    if (warm) env[ENV.spareWarm] = '1';
    const { proc, slots } = this.listener.forkSpare(env);
    const s: SpareProc = { proc, slots, booted: false, taken: false };
    proc.on('message', (m: unknown) => {
      if (!isFromWorker(m) || m.c2 !== 'spare') return;
      s.booted = true;
      if (this.pool.includes(s)) this.failures = 0;
      if (s.pending) this.send(s, s.pending);
    });
    proc.once('exit', () => {
      if (s.taken) return;
      this.forget(proc);
      this.onExit(s);
    });
    // A failed spawn (EAGAIN, ENOMEM) emits 'error' and no 'exit': no spare this time.
    proc.once('error', () => {
      if (proc.pid === undefined) this.onExit(s);
    });
    this.pool.push(s);
    if (proc.pid === undefined) return;
    this.alive.add(proc);
    this.emit('forked', proc.pid);
  }

  private onExit(s: SpareProc): void {
    const i = this.pool.indexOf(s);
    if (i < 0) return;
    this.pool.splice(i, 1);
    if (this.closed || !this.enabled) return;
    if (!s.booted && ++this.failures >= SPARE_FAILURE_LIMIT) {
      this.enabled = false;
      this.emit(
        'warning',
        `cluster2: the spare worker died ${this.failures} times in a row before it booted; ` +
          'replacements are forked afresh from now on',
      );
      return;
    }
    if (this.timer) return;
    // The back-off spaces the retries already: no wait for a quiet machine on top.
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fill(true);
    }, backoff(this.failures));
  }

  /**
   * The spare, told to become the worker of `slot` with this environment; from
   * now on it is the caller's. Null when there is no spare that can take it.
   */
  take(slot: number, env: NodeJS.ProcessEnv): ChildProcess | null {
    const can = this.pool.filter((x) => slot < x.slots && x.proc.connected);
    const s = can.find((x) => x.booted) ?? can[0];
    if (!s) return null;
    this.pool.splice(this.pool.indexOf(s), 1);
    s.taken = true;
    this.forget(s.proc);
    const hand = this.listener.takeover(slot);
    const all: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...env, ...hand.env })) if (v !== undefined) all[k] = v;
    const msg: ToSpare =
      hand.keepFd === undefined ? { c2: 'takeover', env: all } : { c2: 'takeover', env: all, keepFd: hand.keepFd };
    if (s.booted) this.send(s, msg);
    else s.pending = msg;
    return s.proc;
  }

  private send(s: SpareProc, m: ToSpare): void {
    s.pending = undefined;
    if (s.proc.connected)
      s.proc.send(m, (err: Error | null) => {
        void err; /* it died meanwhile: its exit is handled */
      });
  }

  private forget(proc: ChildProcess): void {
    this.alive.delete(proc);
    if (this.alive.size === 0) this.emit('empty');
  }

  /** Let the spares go (they hold the slots' sockets as they were): new ones are forked at the next fill(). */
  renew(): void {
    for (const s of this.pool.slice()) this.let(s);
  }

  private let(s: SpareProc): void {
    this.pool.splice(this.pool.indexOf(s), 1);
    // It runs no app code: it exits at once (SIGTERM lets it write its coverage in tests).
    s.proc.kill('SIGTERM');
  }

  /** The number of slots changed: spares that hold the slots' sockets (reuseport) are let go. */
  resized(): void {
    if (this.pool.some((s) => Number.isFinite(s.slots))) this.renew();
  }

  /** No spare from now on (a shutdown or a stop); the one there exits. */
  close(): void {
    this.closed = true;
    this.stopWaiting();
    clearTimeout(this.timer);
    this.timer = undefined;
    this.renew();
  }

  /** Resolves when no spare process is left. */
  empty(): Promise<void> {
    if (this.alive.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.once('empty', resolve));
  }
}
