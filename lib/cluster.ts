import { EventEmitter } from 'node:events';
import { ENV } from './ipc';
import { KILL_GRACE_MS } from './master/supervisor';
import { Master, type MasterStatus } from './master/lifecycle';
import { resolveOptions, type ClusterOptions, type Resolved } from './options';
import { Single } from './single';
import { signalMasters } from './control';
import type { ListenCallback } from './worker/app-server';
import { runWorker } from './worker/runtime';

export type Role = 'master' | 'worker' | 'single' | 'client';

/** How long stop() from another script waits for the master to go. */
const STOP_WAIT_MS = 10_000;

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
      this.single = new Single(this, this.options);
      p = this.single.start(fn);
    } else {
      this.master = new Master(this, this.options);
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
    return signalMasters(o.pids, 'SIGTERM', o.drainDelay + o.gracefulTimeout + KILL_GRACE_MS + 3000, 'shutdown').then(() => {});
  }

  /** Immediate: workers are killed and the master exits. */
  stop(): Promise<void> {
    if (this.master) return this.master.stop();
    if (this.single) return this.single.stop();
    return signalMasters(this.options.pids, 'SIGQUIT', STOP_WAIT_MS, 'stop').then(() => {});
  }

  /** Replace every worker with one running the code on disk now, one at a time. */
  reload(): Promise<void> {
    if (this.master) return this.master.reload();
    return Promise.reject(new Error('cluster2: reload() needs a running master in this process'));
  }

  /** A snapshot of the running master: workers, strategy, ECV, recent events. */
  status(): MasterStatus | undefined {
    return this.master?.status();
  }

  /** Grow or shrink the number of workers; removed workers drain. */
  resize(n: number): void {
    if (!this.master) throw new Error('cluster2: resize() needs a running master in this process');
    this.master.resize(n);
  }
}
