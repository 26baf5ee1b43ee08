import type { RecycleReason } from '../shared/ipc';
import { reloadConcurrencyFor, type Resolved } from '../shared/options';
import { HeartbeatClock } from './heartbeat-clock';
import type { Supervisor, WorkerInfo } from './supervisor';

interface Job {
  slot: number;
  /** The worker to replace; undefined: whoever holds the slot when the job runs (reload). */
  w?: WorkerInfo;
  reason: RecycleReason;
  done?: (e?: Error) => void;
}

/**
 * The recycle triggers (connThreshold and maxRequests reported by the worker;
 * maxMemory, maxAge and the heartbeat watched here) and the queue that
 * replaces workers through the supervisor: a recycle one at a time, a reload
 * reloadConcurrency at a time (never two replacements of one slot at once).
 */
export class Recycler {
  private readonly queue: Job[] = [];
  /** Replacements in flight, and their slots. */
  private readonly running = new Set<number>();
  private readonly timer: NodeJS.Timeout;
  private seq = 0;
  private readonly clock: HeartbeatClock;
  /** Workers a replacement was asked for (so a trigger fires once per worker). */
  private readonly flagged = new WeakSet<WorkerInfo>();

  constructor(
    private readonly sup: Supervisor,
    private readonly opts: Resolved,
    private readonly onError: (e: Error) => void,
  ) {
    sup.on('recycle', (w: WorkerInfo, reason: RecycleReason) => this.request(w, reason));
    if (opts.maxMemory) {
      sup.on('pong', (w: WorkerInfo) => {
        if (w.stats.rss <= opts.maxMemory) return;
        if (w.state !== 'draining') return this.request(w, 'maxMemory');
        // Draining is no licence to grow. A worker recycled for maxMemory is over it when
        // its drain begins, and what it still serves must not be cut for that: it is
        // killed only once it grows a quarter of maxMemory past where its drain began.
        const ceiling = drainCeiling(opts.maxMemory, w.drainRss);
        if (w.stats.rss <= ceiling) return;
        sup.emit(
          'warning',
          `cluster2: worker ${w.pid} is draining with ${Math.round(w.stats.rss / 2 ** 20)} MB RSS, ` +
            `over its ceiling of ${Math.round(ceiling / 2 ** 20)} MB (maxMemory plus a quarter): killed`,
        );
        sup.kill(w, 'SIGKILL');
      });
    }
    const hb = opts.heartbeatTimeout;
    const every = hb ? Math.min(1000, Math.max(20, Math.floor(hb / 4))) : 1000;
    this.clock = new HeartbeatClock(every);
    this.timer = setInterval(() => this.tick(), every);
    this.timer.unref();
  }

  private tick(): void {
    const now = Date.now();
    const { heartbeatTimeout, maxAge } = this.opts;
    const seq = ++this.seq;
    this.clock.tick();
    for (const w of this.sup.workers.values()) {
      // A draining worker is asked for its figures (maxMemory still applies), not judged.
      if (w.state === 'draining' && this.opts.maxMemory) this.sup.send(w, { c2: 'ping', seq });
      if (w.state !== 'listening') continue;
      if (heartbeatTimeout && this.clock.silence(w.lastPong, now) > heartbeatTimeout) this.request(w, 'unresponsive');
      else if (maxAge && now - w.listened > maxAge) this.request(w, 'maxAge');
      this.sup.send(w, { c2: 'ping', seq });
    }
  }

  /** Queue a replacement of w (once per worker). */
  request(w: WorkerInfo, reason: RecycleReason): void {
    if (this.sup.halted || this.flagged.has(w) || w.state !== 'listening') return;
    this.flagged.add(w);
    // A hung worker goes first: it is not serving.
    if (reason === 'unresponsive') this.queue.unshift({ slot: w.slot, w, reason });
    else this.queue.push({ slot: w.slot, w, reason });
    void this.next();
  }

  /**
   * Replace the worker of every slot, reloadConcurrency at a time. At the
   * first failure no further replacement starts; those in flight finish, then
   * it rejects with that failure (the workers not replaced keep serving).
   */
  /**
   * Reload every accepting worker (reload() below); resolves with the [old, new] pid of each
   * replacement, rejects with the first failure.
   */
  reloadAll(): Promise<[number, number][]> {
    const pairs: [number, number][] = [];
    const onRecycled = (old: WorkerInfo, neo: WorkerInfo, reason: RecycleReason) => {
      if (reason === 'reload') pairs.push([old.pid, neo.pid]);
    };
    this.sup.on('recycled', onRecycled);
    return this.reload(this.sup.accepting().map((w) => w.slot))
      .then(() => pairs)
      .finally(() => this.sup.off('recycled', onRecycled));
  }

  reload(slots: number[]): Promise<void> {
    if (slots.length === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let left = slots.length;
      let first: Error | undefined;
      const settle = (e?: Error) => {
        if (e && !first) {
          first = e;
          for (const j of jobs) {
            const i = this.queue.indexOf(j);
            if (i >= 0) {
              this.queue.splice(i, 1);
              left--;
            }
          }
        }
        if (--left === 0) {
          if (first) reject(first);
          else resolve();
        }
        this.wantSpares();
      };
      const jobs: Job[] = slots.map((slot) => ({ slot, reason: 'reload', done: settle }));
      this.queue.push(...jobs);
      this.next();
    });
  }

  /** While a reload runs, one spare per replacement about to start (up to reloadConcurrency); else the usual one. */
  private wantSpares(): void {
    const queued = this.queue.filter((j) => j.reason === 'reload').length;
    this.sup.wantSpares(Math.min(queued, reloadConcurrencyFor(this.opts, this.sup.size)));
  }

  /** Start what the queue allows: its head, when fewer than its limit run and its slot is not being replaced. */
  private next(): void {
    let reloading = false;
    for (;;) {
      const job = this.queue[0];
      if (!job) break;
      const limit = job.reason === 'reload' ? reloadConcurrencyFor(this.opts, this.sup.size) : 1;
      if (this.running.size >= limit || this.running.has(job.slot)) break;
      this.queue.shift();
      void this.run(job);
      reloading ||= job.reason === 'reload';
    }
    // The replacements just started took the spares there were: spares for the next ones boot meanwhile.
    if (reloading) this.wantSpares();
  }

  private async run(job: Job): Promise<void> {
    this.running.add(job.slot);
    let error: Error | undefined;
    try {
      if (this.sup.halted) throw new Error('cluster2: the cluster is shutting down');
      // A recycle is of its worker: not of the slot's next one, should a reload have replaced it meanwhile.
      if (!job.w || (this.sup.workers.has(job.w.pid) && job.w.state === 'listening'))
        await this.sup.replace(job.slot, job.reason, this.opts.listenTimeout);
    } catch (e) {
      error = e as Error;
      // A scale that removed the slot meanwhile drained its replacement: that is the cause, not the new code.
      if (job.slot >= this.sup.size) {
        error = new Error(
          `the number of workers was scaled to ${this.sup.size} meanwhile (slot ${job.slot} is gone); ` +
            'not a failure of the new code',
        );
      }
      if (job.w) this.flagged.delete(job.w);
      if (!job.done) this.onError(error);
    } finally {
      this.running.delete(job.slot);
      job.done?.(error);
      this.next();
    }
  }

  /** The master is ending: queued replacements fail with that reason; the triggers stop. */
  close(): void {
    for (const job of this.queue.splice(0)) job.done?.(new Error('cluster2: the cluster is shutting down'));
    clearInterval(this.timer);
  }
}

/**
 * The RSS a draining worker may reach before it is killed: a quarter of
 * maxMemory above the larger of maxMemory and its RSS when its drain began.
 */
export function drainCeiling(maxMemory: number, atDrain: number): number {
  return Math.max(maxMemory, atDrain) + maxMemory / 4;
}
