import { EventEmitter } from 'node:events';
import {
  ENV,
  isFromWorker,
  type DrainReason,
  type FromWorker,
  type RecycleReason,
  type ToWorker,
  type WorkerStats,
} from '../shared/ipc';
import type { Listener } from '../listen/strategy';
import type { Resolved } from '../shared/options';
import { removePidFile } from '../shared/pids-dir';
import { safeText } from '../shared/safe-text';
import { endGroup, leadsGroup, signalGroup } from '../shared/process-group';
import { backoff } from './backoff';
import { SpareKeeper } from './spare';
import type { WorkerInfo } from './worker-info';

export type { WorkerInfo } from './worker-info';

/** Deaths before listening, in a row, that make the master give up (exit 70). */
export const BOOT_FAILURE_LIMIT = 5;
/** A worker that lived less than this counts as a quick death for the back-off. */
export const QUICK_DEATH_MS = 10_000;
/** Beyond gracefulTimeout, before the master kills a draining worker that did not exit. */
export const KILL_GRACE_MS = 2000;
/** After a worker's exit, how long its last messages may take to be read (see fork). */
const CHANNEL_WAIT_MS = 1000;

export { backoff };

const NO_STATS: WorkerStats = { connections: 0, open: 0, requests: 0, rss: 0, heapUsed: 0 };

/**
 * The worker table and the only code that forks or kills (with its spare
 * keeper). Events:
 *   forked(w), listening(w, address), died(w, code, signal), warning(message),
 *   recycle(w, reason), ecv(enabled), pong(w), crashLoop(lastError), empty(),
 *   spare(pid): a spare was forked, ready(w): a worker is up, resized(n), halted
 */
export class Supervisor extends EventEmitter {
  /** Every live worker, by pid (a slot may have two while one replaces the other). */
  readonly workers = new Map<number, WorkerInfo>();
  /** The worker that accepts for each slot. */
  private readonly current: (WorkerInfo | undefined)[] = [];
  private readonly quickDeaths: number[] = [];
  private readonly respawnTimers = new Map<number, NodeJS.Timeout>();
  /** Groups of exited workers being ended (SIGTERM, a grace, SIGKILL): the master waits for them. */
  private readonly groupsEnding = new Set<Promise<void>>();
  private bootFailures = 0;
  /** A worker was found in another's process group: said once. */
  private toldGroup = false;
  /** Slots 0..size-1 are kept filled. */
  size = 0;
  private stopped = false;
  /** The master's ECV state, handed to every worker at fork. */
  ecv = { enabled: true, since: Date.now() };
  restarts = 0;
  /** Workers replaced, by reason, and worker processes that exited: counted from the start, for the metrics. */
  readonly recycles: Partial<Record<RecycleReason, number>> = {};
  exits = 0;
  /** Respawns after an unexpected exit, per slot. */
  readonly slotRestarts: number[] = [];
  /** The booted worker process that the next slot in need gets (option spare). */
  readonly spares: SpareKeeper;

  constructor(
    private readonly opts: Resolved,
    private readonly listener: Listener,
  ) {
    super();
    this.spares = new SpareKeeper(listener, () => this.env(), opts.spare);
    this.spares.on('forked', (pid: number) => this.emit('spare', pid));
    this.spares.on('warning', (message: string) => this.emit('warning', message));
  }

  /**
   * Fork `n` workers; resolves once every slot (of the size as it is then: a resize may
   * come meanwhile) has a worker that is up, respawned ones included. Never resolves once
   * halted (the master's ending answers the start).
   */
  start(n: number): Promise<void> {
    this.size = n;
    for (let slot = 0; slot < n; slot++) this.spawn(slot);
    return new Promise((resolve) => {
      const check = () => {
        if (this.stopped) return;
        for (let slot = 0; slot < this.size; slot++) if (!this.current[slot]?.ready) return;
        this.off('ready', check);
        this.off('resized', check);
        resolve();
        this.refillSpare();
      };
      this.on('ready', check);
      this.on('resized', check);
      check();
    });
  }

  /** The master is ending: no worker is forked any more (respawn, replacement, spare). */
  get halted(): boolean {
    return this.stopped;
  }

  /**
   * A new spare, once no worker is starting (it would slow that one down): all are up
   * (listening, or ready with waitReady).
   */
  private refillSpare(): void {
    if (this.stopped) return;
    for (const w of this.workers.values()) if (w.state !== 'draining' && !w.ready) return;
    this.spares.fill();
  }

  /**
   * A reload has `n` replacements about to start: keep that many spares (the
   * usual one when n is 0) and fork them now, while the replacements in flight
   * start. Each would be forked for its replacement anyway; forked ahead, it
   * has booted by the time its replacement starts.
   */
  wantSpares(n: number): void {
    this.spares.setTarget(n);
    if (n > 0 && !this.stopped) this.spares.fill(true);
  }

  /** The environment of every worker process; with a slot, of the worker of that slot. */
  private env(slot?: number): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      [ENV.role]: 'worker',
      [ENV.strategy]: this.listener.name,
      [ENV.port]: String(this.listener.port),
    };
    if (slot === undefined) return env;
    const o = this.opts;
    const jitter = o.maxRequests && o.maxRequestsJitter ? Math.floor(Math.random() * (o.maxRequestsJitter + 1)) : 0;
    env[ENV.slot] = String(slot);
    env[ENV.maxRequests] = String(o.maxRequests ? o.maxRequests + jitter : 0);
    env[ENV.ecv] = `${this.ecv.enabled ? 1 : 0}:${this.ecv.since}`;
    return env;
  }

  /** Fork a worker that becomes the slot's worker at once (start, respawn, resize). */
  private spawn(slot: number): WorkerInfo {
    const w = this.fork(slot);
    this.current[slot] = w;
    this.bootDeadline(w);
    return w;
  }

  /**
   * listenTimeout bounds the first start and respawns too (a replacement has
   * its own in listening()): a worker that has not listened by then is killed
   * and counts as a boot failure, with that reason.
   */
  private bootDeadline(w: WorkerInfo): void {
    const ms = this.opts.listenTimeout;
    const timer = setTimeout(() => {
      if (w.listened || !this.workers.has(w.pid)) return;
      w.bootError = `worker ${w.pid} did not listen within ${ms} ms`;
      this.kill(w, 'SIGKILL');
    }, ms);
    timer.unref();
    w.proc.once('exit', () => clearTimeout(timer));
  }

  /** A worker for the slot: the spare if there is one that can take it, else a fresh fork. */
  private fork(slot: number): WorkerInfo {
    const env = this.env(slot);
    const proc = this.spares.take(slot, env) ?? this.listener.fork(slot, env);
    const now = Date.now();
    const w: WorkerInfo = {
      slot,
      pid: proc.pid ?? -1,
      proc,
      state: 'starting',
      started: now,
      listened: 0,
      ready: 0,
      saidReady: false,
      lastPong: now,
      stats: NO_STATS,
      drainRss: 0,
      group: leadsGroup(proc.pid),
    };
    if (w.group === false && !this.toldGroup) {
      this.toldGroup = true;
      this.emit(
        'warning',
        `cluster2: worker ${w.pid} (strategy ${this.listener.name}) does not lead its own process group: ` +
          'processes a worker starts may outlive it and the cluster',
      );
    }
    if (proc.pid !== undefined) this.workers.set(proc.pid, w);
    proc.on('message', (m: unknown) => {
      if (isFromWorker(m)) this.onMessage(w, m);
      else if (m === 'ready') this.onMessage(w, { c2: 'ready' }); // PM2's convention: process.send('ready')
    });
    // 'exit' may come before the worker's last messages are read (its final counts, sent as it exits):
    // then its channel is still open, and 'close' comes once it is read to its end. CHANNEL_WAIT_MS
    // bounds the wait, for a channel a process the worker started may hold open.
    proc.once('exit', (code, signal) => {
      if (!proc.connected) return this.onExit(w, code, signal);
      let handled = false;
      const handle = () => {
        if (handled) return;
        handled = true;
        clearTimeout(timer);
        this.onExit(w, code, signal);
      };
      const timer = setTimeout(handle, CHANNEL_WAIT_MS);
      proc.once('close', handle);
    });
    // A failed spawn (EAGAIN, ENOMEM) emits 'error' and no 'exit'.
    proc.once('error', (e) => {
      if (proc.pid === undefined) this.onExit(w, null, null, e);
    });
    this.emit('forked', w);
    return w;
  }

  private onMessage(w: WorkerInfo, m: FromWorker): void {
    switch (m.c2) {
      case 'listening':
        w.listened = w.lastPong = Date.now();
        w.tls = m.tls === true;
        if (w.state === 'starting') w.state = 'listening';
        this.bootFailures = 0;
        this.emit('listening', w, m.address);
        if (!this.opts.waitReady || w.saidReady) this.onMessage(w, { c2: 'ready' });
        break;
      case 'ready':
        w.saidReady = true;
        if (!w.ready && w.listened) {
          w.ready = Date.now();
          this.emit('ready', w);
          this.refillSpare();
        }
        break;
      case 'pong':
        w.lastPong = Date.now();
        w.stats = m.stats;
        this.emit('pong', w);
        break;
      case 'final':
        w.stats = m.stats;
        break;
      case 'recycle':
        this.emit('recycle', w, m.reason);
        break;
      // The app's text (an error message, an onDrain handler's failure): escaped as it enters the
      // master, so no line printed from it (a warning, the crash-loop reason, a failed reload) drives a terminal.
      case 'warning':
        this.emit('warning', safeText(m.message));
        break;
      case 'boot-error':
        w.bootError = safeText(m.message);
        break;
      case 'ecv-set':
        this.emit('ecv', m.enabled);
        break;
      case 'prom':
        w.prom = m.metrics;
        break;
    }
  }

  private onExit(w: WorkerInfo, code: number | null, signal: NodeJS.Signals | null, error?: Error): void {
    this.workers.delete(w.pid);
    this.exits++;
    clearTimeout(w.killTimer);
    // What the worker started goes with it. A worker that led no group has none: a group of its pid would be another's.
    if (w.group !== false) this.endGroupOf(w.pid);
    removePidFile(this.opts.pids, 'worker', w.pid);
    if (error) w.bootError = error.message;
    this.emit('died', w, code, signal);
    const slot = w.slot;
    const unexpected = this.current[slot] === w && w.state !== 'draining';
    if (this.current[slot] === w) this.current[slot] = undefined;
    if (unexpected && !this.stopped && slot < this.size) {
      const heir = this.replacementOf(slot);
      if (heir) {
        // A replacement of the slot is starting (replace()): it takes the slot now, instead of a respawn.
        this.current[slot] = heir;
      } else if (!w.listened && ++this.bootFailures >= BOOT_FAILURE_LIMIT) {
        // Not respawned: the master decides (its ending halts this supervisor).
        this.emit('crashLoop', w.bootError || `exit code ${code}${signal ? `, signal ${signal}` : ''}`);
      } else {
        const quick = !w.listened || Date.now() - w.started < QUICK_DEATH_MS;
        const n = (this.quickDeaths[slot] = quick ? (this.quickDeaths[slot] ?? 0) + 1 : 0);
        this.scheduleRespawn(slot, backoff(n));
      }
    }
    if (this.workers.size === 0) this.emit('empty');
    // A replacement that failed, or a worker not respawned, leaves no one starting.
    else this.refillSpare();
  }

  /** The replacement of the slot that replace() is starting, if any (the slot's own worker has gone). */
  private replacementOf(slot: number): WorkerInfo | undefined {
    for (const w of this.workers.values()) if (w.slot === slot && w.state === 'starting') return w;
    return undefined;
  }

  private scheduleRespawn(slot: number, delay: number): void {
    if (this.respawnTimers.has(slot)) return;
    const t = setTimeout(() => {
      this.respawnTimers.delete(slot);
      if (!this.stopped && slot < this.size && !this.current[slot]) {
        this.restarts++;
        this.slotRestarts[slot] = (this.slotRestarts[slot] ?? 0) + 1;
        this.spawn(slot);
      }
    }, delay);
    this.respawnTimers.set(slot, t);
  }

  /**
   * Resolves when the worker is up (listening, or ready with waitReady); rejects if it exits
   * first or is not up within `timeout`.
   */
  listening(w: WorkerInfo, timeout = 0): Promise<void> {
    if (w.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const done = (err?: Error) => {
        clearTimeout(timer);
        this.off('ready', onReady);
        this.off('died', onDied);
        if (err) reject(err);
        else resolve();
      };
      const onReady = (x: WorkerInfo) => {
        if (x === w) done();
      };
      const onDied = (x: WorkerInfo, code: number | null, signal: string | null) => {
        if (x !== w) return;
        const why = w.bootError ? `: ${w.bootError}` : '';
        done(new Error(`cluster2: worker ${w.pid} exited (code ${code}, signal ${signal}) before it was up${why}`));
      };
      this.on('ready', onReady);
      this.on('died', onDied);
      if (timeout > 0) {
        timer = setTimeout(() => {
          done(
            new Error(
              `cluster2: worker ${w.pid} did not ${this.opts.waitReady ? 'send ready' : 'listen'} within ${timeout} ms`,
            ),
          );
          this.kill(w, 'SIGKILL');
        }, timeout);
      }
    });
  }

  /**
   * Replace the slot's worker, replacement first: fork, wait until it listens,
   * then drain the old one (or kill it: a hung worker cannot drain).
   * Rejects, leaving the old worker serving, when the replacement fails.
   */
  async replace(
    slot: number,
    reason: RecycleReason,
    timeout: number,
  ): Promise<{ old: WorkerInfo; neo: WorkerInfo } | null> {
    const old = this.current[slot];
    if (!old || old.state !== 'listening' || this.stopped) return null;
    const neo = this.fork(slot);
    await this.listening(neo, timeout);
    if (this.current[slot] !== old || this.stopped) {
      // The old one died meanwhile (neo took its slot then), a resize removed the slot (neo drains
      // already), or a shutdown began.
      if (this.current[slot] !== neo) this.drain(neo, true, 0, this.stopped ? 'shutdown' : reason);
      return null;
    }
    this.current[slot] = neo;
    if (reason === 'unresponsive') this.kill(old, 'SIGKILL');
    else this.drain(old, true, 0, reason);
    this.recycles[reason] = (this.recycles[reason] ?? 0) + 1;
    this.emit('recycled', old, neo, reason);
    return { old, neo };
  }

  /** Tell a worker to drain; kill it if it is still there KILL_GRACE_MS after gracefulTimeout. */
  drain(
    w: WorkerInfo,
    backstop = true,
    acceptFor = 0,
    reason: DrainReason = 'recycle',
    deadline = Date.now() + this.opts.gracefulTimeout,
  ): void {
    if (w.state === 'draining') return;
    w.state = 'draining';
    w.drainRss = w.stats.rss;
    // `deadline`, what the worker's onDrain handlers see (and its WebSocket closes are spread up to):
    // when this master cuts it (a shutdown's, given by the master) or starts to (the backstop).
    this.send(w, acceptFor ? { c2: 'drain', acceptFor, reason, deadline } : { c2: 'drain', reason, deadline });
    if (backstop) {
      w.killTimer = setTimeout(() => this.kill(w, 'SIGKILL'), this.opts.gracefulTimeout + KILL_GRACE_MS);
    }
  }

  kill(w: WorkerInfo, signal: NodeJS.Signals): void {
    // What a worker killed outright started is told at once, not only once its exit is seen
    // (endGroup, from onExit): a master SIGKILLed in between would leave it running.
    if (signal === 'SIGKILL' && w.group !== false) signalGroup(w.pid, 'SIGTERM');
    try {
      w.proc.kill(signal);
    } catch {
      /* already gone */
    }
  }

  send(w: WorkerInfo, m: ToWorker): void {
    if (w.proc.connected)
      w.proc.send(m, (err: Error | null) => {
        void err; /* it died meanwhile: its exit is handled */
      });
  }

  broadcast(m: ToWorker): void {
    for (const w of this.workers.values()) this.send(w, m);
  }

  /** Grow or shrink to n slots; a removed worker drains. */
  resize(n: number): void {
    const before = this.size;
    this.size = n;
    // A reuseport spare holds the sockets of the slots as they were: a new one comes once the new workers listen.
    this.spares.resized();
    const acceptFor = this.listener.resize(n);
    for (let slot = before; slot < n; slot++) if (!this.current[slot]) this.spawn(slot);
    for (let slot = n; slot < before; slot++) {
      clearTimeout(this.respawnTimers.get(slot));
      this.respawnTimers.delete(slot);
      this.current[slot] = undefined;
      for (const w of this.workers.values()) if (w.slot === slot) this.drain(w, true, acceptFor, 'resize');
    }
    this.refillSpare();
    this.emit('resized', n);
  }

  /** Fork nothing more: no respawn, replacement or spare (the spares go). The workers stay. Emits 'halted'. */
  halt(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.emit('halted');
    this.spares.close();
    for (const t of this.respawnTimers.values()) clearTimeout(t);
    this.respawnTimers.clear();
  }

  /** Halt, and drain every worker (a shutdown; the master's cut at gracefulTimeout backs it) or kill each. */
  end(how: 'drain' | 'kill', reason: 'shutdown' | 'upgrade' = 'shutdown', deadline?: number): void {
    this.halt();
    for (const w of this.workers.values()) {
      if (how === 'drain') this.drain(w, false, 0, reason, deadline);
      else this.kill(w, 'SIGKILL');
    }
  }

  /**
   * End the group of a worker that exited (lib/shared/process-group.ts): at once when the worker
   * ended it itself, else SIGTERM, then SIGKILL after a grace. empty() waits for it.
   */
  private endGroupOf(pid: number): void {
    const ending = endGroup(pid).finally(() => this.groupsEnding.delete(ending));
    this.groupsEnding.add(ending);
  }

  /** Resolves when no worker (and no spare) is left, nor any process a worker started. */
  async empty(): Promise<void> {
    const workers =
      this.workers.size === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.once('empty', resolve));
    await Promise.all([workers, this.spares.empty()]);
    await Promise.all(this.groupsEnding);
  }

  /** Slots' accepting workers, in slot order. */
  accepting(): WorkerInfo[] {
    return this.current.filter((w): w is WorkerInfo => w !== undefined);
  }
}
