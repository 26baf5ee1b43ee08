import type { RecycleReason } from '../ipc';
import type { Resolved } from '../options';
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
 * replaces one worker at a time through the supervisor.
 */
export class Recycler {
  private readonly queue: Job[] = [];
  private busy = false;
  private readonly timer: NodeJS.Timeout;
  private seq = 0;
  private readonly clock: HeartbeatClock;
  stopped = false;

  constructor(private readonly sup: Supervisor, private readonly opts: Resolved, private readonly onError: (e: Error) => void) {
    sup.on('recycle', (w: WorkerInfo, reason: RecycleReason) => this.request(w, reason));
    if (opts.maxMemory) {
      sup.on('pong', (w: WorkerInfo) => {
        if (w.stats.rss <= opts.maxMemory) return;
        if (w.state !== 'draining') return this.request(w, 'maxMemory');
        // Draining is no licence to grow: over the limit while draining means killed.
        sup.emit('warning', `cluster2: worker ${w.pid} is draining with ${Math.round(w.stats.rss / 2 ** 20)} MB RSS, over maxMemory: killed`);
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
    if (this.stopped || w.flagged || w.state !== 'listening') return;
    w.flagged = true;
    // A hung worker goes first: it is not serving.
    if (reason === 'unresponsive') this.queue.unshift({ slot: w.slot, w, reason });
    else this.queue.push({ slot: w.slot, w, reason });
    void this.next();
  }

  /** Replace the worker of every slot, one after another; rejects at the first that fails (the rest keep serving). */
  async reload(slots: number[]): Promise<void> {
    for (const slot of slots) {
      await new Promise<void>((resolve, reject) => {
        this.queue.push({ slot, reason: 'reload', done: (e) => (e ? reject(e) : resolve()) });
        void this.next();
      });
    }
  }

  private async next(): Promise<void> {
    if (this.busy) return;
    const job = this.queue.shift();
    if (!job) return;
    this.busy = true;
    let error: Error | undefined;
    try {
      if (this.stopped) throw new Error('cluster2: the cluster is shutting down');
      if (!job.w || this.sup.workers.has(job.w.pid)) await this.sup.replace(job.slot, job.reason, this.opts.listenTimeout);
    } catch (e) {
      error = e as Error;
      // A scale that removed the slot meanwhile drained its replacement: that is the cause, not the new code.
      if (job.slot >= this.sup.size) {
        error = new Error(`the number of workers was scaled to ${this.sup.size} meanwhile (slot ${job.slot} is gone); not a failure of the new code`);
      }
      if (job.w) job.w.flagged = false;
      if (!job.done) this.onError(error);
    } finally {
      this.busy = false;
      job.done?.(error);
      void this.next();
    }
  }

  stop(): void {
    this.stopped = true;
    for (const job of this.queue.splice(0)) job.done?.(new Error('cluster2: the cluster is shutting down'));
    clearInterval(this.timer);
  }
}
