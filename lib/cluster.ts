import { EventEmitter } from 'node:events';
import type { ClusterEvent, ClusterEvents } from './shared/events';
import { ENV } from './shared/ipc';
import type { Master } from './master/master';
import type { MasterStatus } from './shared/protocol';
import { resolveOptions, type ClusterOptions, type Resolved } from './shared/options';
import type { Single } from './single';
import type { ListenCallback } from './worker/app-server';
import { addDrainHandler, drainSignal, watchDrain, type DrainHandler } from './worker/on-drain';
import { runWorker } from './worker/runtime';
import { exitUnlessAwaited } from './shared/start-error';
import { exitProcess } from './shared/exit-codes';

// The master's, the single process's and the control client's code is loaded
// only in the process that plays that role: a worker (forked at every recycle
// and reload) loads the worker runtime alone, which keeps its start short.
const lazy = {
  master: () => require('./master/master') as typeof import('./master/master'),
  single: () => require('./single') as typeof import('./single'),
  control: () => require('./client/control') as typeof import('./client/control'),
  supervisor: () => require('./master/supervisor') as typeof import('./master/supervisor'),
};

export type Role = 'master' | 'worker' | 'single' | 'client';

/** The listener methods of EventEmitter, typed by ClusterEvents (lib/shared/events.ts); merged into the class below. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export interface Cluster {
  on<K extends ClusterEvent>(event: K, listener: ClusterEvents[K]): this;
  once<K extends ClusterEvent>(event: K, listener: ClusterEvents[K]): this;
  off<K extends ClusterEvent>(event: K, listener: ClusterEvents[K]): this;
  addListener<K extends ClusterEvent>(event: K, listener: ClusterEvents[K]): this;
  removeListener<K extends ClusterEvent>(event: K, listener: ClusterEvents[K]): this;
  prependListener<K extends ClusterEvent>(event: K, listener: ClusterEvents[K]): this;
  prependOnceListener<K extends ClusterEvent>(event: K, listener: ClusterEvents[K]): this;
}

/** How long stop() from another script waits for the master to go. */
const STOP_WAIT_MS = 10_000;
/** How long reload() and resize() from another script wait for the master to finish. */
const CONTROL_WAIT_MS = 300_000;
/** How long status() from another script waits for the answer. */
const STATUS_WAIT_MS = 10_000;

/**
 * A cluster of workers running one server. The same script runs in the master
 * and in every worker (as with node:cluster): `listen()` decides the role.
 * A Cluster that never listens is a control client of a running master:
 * `new Cluster({ pids }).shutdown()` from another script.
 */
// The interface above only types the listener methods:
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Cluster extends EventEmitter {
  readonly options: Resolved;
  private master?: Master;
  private single?: Single;

  constructor(options?: ClusterOptions) {
    super();
    this.options = resolveOptions(options);
  }

  /** 'worker' in a worker process; 'master' or 'single' once listening; 'client' before. */
  get role(): Role {
    if (process.env[ENV.role] === 'worker') return 'worker';
    if (this.master) return 'master';
    if (this.single) return 'single';
    return 'client';
  }

  get isWorker(): boolean {
    return this.role === 'worker';
  }

  get isMaster(): boolean {
    return !this.isWorker;
  }

  /** The listen strategy in use (master), once started. */
  get strategy(): string | undefined {
    return this.master ? this.master.strategy : this.single ? 'single' : undefined;
  }

  /** The app port, resolved (port 0 becomes the port picked). */
  get port(): number | undefined {
    return this.master?.port;
  }

  /**
   * Start: in the master, check ports and fork the workers (resolves when all
   * listen); in a worker, run `fn` and listen on what the master gives.
   */
  listen(fn: ListenCallback): Promise<void> {
    let p: Promise<void>;
    if (this.role === 'worker' || !this.options.cluster) watchDrain(this);
    if (this.role === 'worker') {
      p = runWorker(this.options, fn);
    } else if (!this.options.cluster) {
      this.single = new (lazy.single().Single)(this, this.options, exitProcess);
      p = this.single.start(fn);
    } else {
      this.master = new (lazy.master().Master)(this, this.options, exitProcess);
      p = this.master.start();
    }
    // The promise is for those who await it; when nobody does, a failure is printed
    // and the process exits with its code.
    return exitUnlessAwaited(p);
  }

  /**
   * Graceful: no new connections, in-flight requests finish, then exit.
   * From another script: signal the master and wait.
   */
  shutdown(): Promise<void> {
    if (this.master) return this.master.request({ op: 'shutdown', origin: 'api' }).then(() => {});
    if (this.single) return this.single.shutdown();
    const o = this.options;
    const wait = o.drainDelay + o.gracefulTimeout + lazy.supervisor().KILL_GRACE_MS + 3000;
    return lazy
      .control()
      .signalMasters(o.pids, 'SIGTERM', wait, 'shutdown')
      .then(() => {});
  }

  /** Immediate: workers are killed and the master exits. */
  stop(): Promise<void> {
    if (this.master) return this.master.request({ op: 'stop', origin: 'api' }).then(() => {});
    if (this.single) return this.single.stop();
    return lazy
      .control()
      .signalMasters(this.options.pids, 'SIGQUIT', STOP_WAIT_MS, 'stop')
      .then(() => {});
  }

  /**
   * Replace every worker with one running the code on disk now, reloadConcurrency at a time.
   * From another script: through the master's control socket; resolves when
   * the reload finished, rejects with the master's error when it failed.
   */
  reload(): Promise<void> {
    if (this.master) return this.master.request({ op: 'reload', origin: 'api' }).then(() => {});
    if (this.single) return Promise.reject(new Error('cluster2: reload() needs workers (cluster: true)'));
    return lazy
      .control()
      .controlRequest(this.options.pids, { op: 'reload' }, CONTROL_WAIT_MS)
      .then(() => {});
  }

  /**
   * In a worker, with `waitReady: true`: tell the master this worker is ready
   * (its replacement-first recycles and reloads wait for it). Same as PM2's
   * `process.send('ready')`, which works too.
   */
  ready(): void {
    if (this.role === 'worker' && process.connected) process.send!({ c2: 'ready' });
  }

  /**
   * In a worker (or the process of `cluster: false`): call `handler` when this
   * process starts to drain (reload, recycle, resize, shutdown, master gone),
   * with `{ reason, deadline, signal }`. The process exits once every handler
   * has settled and its connections are done, or at the deadline. A handler
   * that throws or rejects is reported as a warning (in the master) and does
   * not stop the drain. The 'drain' event is the same. In the master: never called.
   */
  onDrain(handler: DrainHandler): this {
    addDrainHandler(this, handler);
    return this;
  }

  /** Aborted when this worker (or single process) starts to drain: for SSE loops, long polls, fetches. */
  get drainSignal(): AbortSignal {
    return drainSignal();
  }

  /**
   * Replace the master itself: a new master (the node binary on PATH, or
   * `node`; the code on disk now) inherits the listening sockets and starts
   * its workers, then the old master drains its workers and exits 0. From
   * another script: resolves once the old master has exited; rejects, with
   * the old master still serving, when the new one fails.
   */
  upgrade(node?: string): Promise<{ from: number; to: number; node: string }> {
    if (node !== undefined && (typeof node !== 'string' || node === '')) {
      throw new TypeError(
        'cluster2: upgrade(node): node must be the path of a node binary (a non-empty string); ' +
          `got ${typeof node === 'string' ? '""' : typeof node}`,
      );
    }
    if (this.master) return this.master.request({ op: 'upgrade', node, origin: 'api' });
    if (this.single) return Promise.reject(new Error('cluster2: upgrade() needs workers (cluster: true)'));
    return lazy.control().upgradeMasters(this.options.pids, node, CONTROL_WAIT_MS);
  }

  /**
   * A snapshot of the running master: workers, strategy, ECV, recent events
   * (from another script: asked over the control socket).
   */
  status(): Promise<MasterStatus | undefined> {
    // After an upgrade this process keeps the master that serves: that one answers.
    const keeps = this.master?.keeps;
    if (keeps !== undefined)
      return lazy
        .control()
        .askMaster(this.options.pids, keeps, { op: 'status' }, STATUS_WAIT_MS)
        .catch(() => undefined);
    if (this.master) return Promise.resolve(this.master.status());
    if (this.single) return Promise.resolve(this.single.status());
    return lazy
      .control()
      .controlRequest(this.options.pids, { op: 'status' }, STATUS_WAIT_MS)
      .then((a) => a[0].result);
  }

  /**
   * Grow or shrink the number of workers; removed workers drain.
   * From another script: resolves once the new size is reached.
   */
  resize(n: number): Promise<void> {
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`cluster2: resize(${n}): the number of workers must be a whole number >= 1`);
    if (this.master) return this.master.request({ op: 'scale', n, origin: 'api' }).then(() => {});
    if (this.single) throw new Error('cluster2: resize() needs workers (cluster: true)');
    return lazy
      .control()
      .controlRequest(this.options.pids, { op: 'scale', n }, CONTROL_WAIT_MS)
      .then(() => {});
  }
}
