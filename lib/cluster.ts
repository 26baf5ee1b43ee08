import { EventEmitter } from 'node:events';
import type { ClusterEvent, ClusterEvents } from './events';
import { ENV } from './ipc';
import type { Master, MasterStatus } from './master/lifecycle';
import { resolveOptions, type ClusterOptions, type Resolved } from './options';
import type { Single } from './single';
import type { ListenCallback } from './worker/app-server';
import { runWorker } from './worker/runtime';

// The master's, the single process's and the control client's code is loaded
// only in the process that plays that role: a worker (forked at every recycle
// and reload) loads the worker runtime alone, which keeps its start short.
const lazy = {
  master: () => require('./master/lifecycle') as typeof import('./master/lifecycle'),
  single: () => require('./single') as typeof import('./single'),
  control: () => require('./control') as typeof import('./control'),
  supervisor: () => require('./master/supervisor') as typeof import('./master/supervisor'),
};

export type Role = 'master' | 'worker' | 'single' | 'client';

/** The listener methods of EventEmitter, typed by ClusterEvents (lib/events.ts); merged into the class below. */
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
    if (this.role === 'worker') {
      p = runWorker(this.options, fn);
    } else if (!this.options.cluster) {
      this.single = new (lazy.single().Single)(this, this.options);
      p = this.single.start(fn);
    } else {
      this.master = new (lazy.master().Master)(this, this.options);
      p = this.master.start();
    }
    // A failure is reported by the process itself (exit code, stderr); the promise is for those who await it.
    p.catch(() => {});
    return p;
  }

  /** Graceful: no new connections, in-flight requests finish, then exit. From another script: signal the master and wait. */
  shutdown(): Promise<void> {
    if (this.master) return this.master.shutdown();
    if (this.single) return this.single.shutdown();
    const o = this.options;
    const wait = o.drainDelay + o.gracefulTimeout + lazy.supervisor().KILL_GRACE_MS + 3000;
    return lazy.control().signalMasters(o.pids, 'SIGTERM', wait, 'shutdown').then(() => {});
  }

  /** Immediate: workers are killed and the master exits. */
  stop(): Promise<void> {
    if (this.master) return this.master.stop();
    if (this.single) return this.single.stop();
    return lazy.control().signalMasters(this.options.pids, 'SIGQUIT', STOP_WAIT_MS, 'stop').then(() => {});
  }

  /**
   * Replace every worker with one running the code on disk now, one at a time.
   * From another script: through the master's control socket; resolves when
   * the reload finished, rejects with the master's error when it failed.
   */
  reload(): Promise<void> {
    if (this.master) return this.master.reload();
    if (this.single) return Promise.reject(new Error('cluster2: reload() needs workers (cluster: true)'));
    return lazy.control().controlRequest(this.options.pids, { op: 'reload' }, CONTROL_WAIT_MS).then(() => {});
  }

  /**
   * In a worker, with `waitReady: true`: tell the master this worker is ready
   * (its replacement-first recycles and reloads wait for it). Same as PM2's
   * `process.send('ready')`, which works too.
   */
  ready(): void {
    if (this.role === 'worker' && process.connected) process.send!({ c2: 'ready' });
  }

  /** A snapshot of the running master: workers, strategy, ECV, recent events (from another script: asked over the control socket). */
  status(): Promise<MasterStatus | undefined> {
    if (this.master) return Promise.resolve(this.master.status());
    if (this.single) return Promise.resolve(this.single.status());
    return lazy.control().controlRequest(this.options.pids, { op: 'status' }, STATUS_WAIT_MS).then((a) => a[0].result);
  }

  /** Grow or shrink the number of workers; removed workers drain. From another script: resolves once the new size is reached. */
  resize(n: number): Promise<void> {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`cluster2: resize(${n}): the number of workers must be a whole number >= 1`);
    if (this.master) {
      this.master.resize(n);
      return Promise.resolve();
    }
    if (this.single) throw new Error('cluster2: resize() needs workers (cluster: true)');
    return lazy.control().controlRequest(this.options.pids, { op: 'scale', n }, CONTROL_WAIT_MS).then(() => {});
  }
}
