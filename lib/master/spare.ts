import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { isFromWorker, type ToSpare } from '../ipc';
import type { Listener } from '../listen/strategy';
import { backoff } from './backoff';

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
 * One spare worker process, booted ahead (Node started, cluster2's worker
 * runtime loaded, none of the app's code run) and handed to the next slot
 * that needs a worker: a recycle, a reload step, a respawn or a new slot then
 * costs an IPC round trip and the app's own start instead of a whole fork.
 * Owned by the supervisor, which decides when a spare is taken and when a new
 * one is forked (never while a worker is starting: it would compete with it
 * for the CPU). Events: forked(pid), died(pid, code, signal), warning(message).
 */
export class SpareKeeper extends EventEmitter {
  private current: SpareProc | undefined;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Spare processes not yet exited (the current one, and one let go that is on its way out). */
  private readonly alive = new Set<ChildProcess>();

  constructor(private readonly listener: Listener, private readonly env: () => NodeJS.ProcessEnv, private enabled: boolean) {
    super();
  }

  /** The spare now, if any: its pid and whether it has booted. */
  status(): { pid: number; booted: boolean } | null {
    const s = this.current;
    return s ? { pid: s.proc.pid ?? -1, booted: s.booted } : null;
  }

  /** Fork a spare unless there is one (or one is due after a failure). */
  fill(): void {
    if (!this.enabled || this.closed || this.current || this.timer) return;
    const { proc, slots } = this.listener.forkSpare(this.env());
    const s: SpareProc = { proc, slots, booted: false, taken: false };
    proc.on('message', (m: unknown) => {
      if (!isFromWorker(m) || m.c2 !== 'spare') return;
      s.booted = true;
      if (this.current === s) this.failures = 0;
      if (s.pending) this.send(s, s.pending);
    });
    proc.once('exit', () => {
      if (s.taken) return;
      this.forget(proc);
      this.onExit(s);
    });
    // A failed spawn (EAGAIN, ENOMEM) emits 'error' and no 'exit': no spare this time.
    proc.once('error', () => { if (proc.pid === undefined) this.onExit(s); });
    this.current = s;
    if (proc.pid === undefined) return;
    this.alive.add(proc);
    this.emit('forked', proc.pid);
  }

  private onExit(s: SpareProc): void {
    if (this.current !== s) return;
    this.current = undefined;
    if (this.closed) return;
    if (!s.booted && ++this.failures >= SPARE_FAILURE_LIMIT) {
      this.enabled = false;
      this.emit('warning', `cluster2: the spare worker died ${this.failures} times in a row before it booted; replacements are forked afresh from now on`);
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.fill();
    }, backoff(this.failures));
  }

  /**
   * The spare, told to become the worker of `slot` with this environment; from
   * now on it is the caller's. Null when there is no spare that can take it.
   */
  take(slot: number, env: NodeJS.ProcessEnv): ChildProcess | null {
    const s = this.current;
    if (!s || slot >= s.slots || !s.proc.connected) return null;
    this.current = undefined;
    s.taken = true;
    this.forget(s.proc);
    const hand = this.listener.takeover(slot);
    const all: Record<string, string> = {};
    for (const [k, v] of Object.entries({ ...env, ...hand.env })) if (v !== undefined) all[k] = v;
    const msg: ToSpare = hand.keepFd === undefined ? { c2: 'takeover', env: all } : { c2: 'takeover', env: all, keepFd: hand.keepFd };
    if (s.booted) this.send(s, msg);
    else s.pending = msg;
    return s.proc;
  }

  private send(s: SpareProc, m: ToSpare): void {
    s.pending = undefined;
    if (s.proc.connected) s.proc.send(m, (err: Error | null) => { void err; /* it died meanwhile: its exit is handled */ });
  }

  private forget(proc: ChildProcess): void {
    this.alive.delete(proc);
    if (this.alive.size === 0) this.emit('empty');
  }

  /** Let the spare go (it holds the slots' sockets as they were): a new one is forked at the next fill(). */
  renew(): void {
    const s = this.current;
    if (!s) return;
    this.current = undefined;
    // It runs no app code: it exits at once (SIGTERM lets it write its coverage in tests).
    s.proc.kill('SIGTERM');
  }

  /** The number of slots changed: a spare that holds the slots' sockets (reuseport) is let go. */
  resized(): void {
    if (this.current && Number.isFinite(this.current.slots)) this.renew();
  }

  /** No spare from now on (a shutdown or a stop); the one there exits. */
  close(): void {
    this.closed = true;
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
