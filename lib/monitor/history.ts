import type { EventEmitter } from 'node:events';
import type { MasterStatus } from '../master/lifecycle';

/** One sample: time, cluster request total, and per slot the worker's pid, RSS and event-loop delay p99. */
export interface Sample {
  t: number;
  requests: number;
  workers: { slot: number; pid: number; rss: number; delayP99: number | null }[];
}

export interface HistoryJson {
  /** How far back samples go, in ms. */
  span: number;
  samples: Sample[];
  /** Recycles and reloads, for marks on the time axis. */
  marks: { t: number; kind: 'recycled' | 'reloaded'; label: string }[];
}

/** How far back the dashboard's charts go. */
export const HISTORY_MS = 5 * 60_000;
const EVERY_MS = 1000;

/**
 * The last five minutes of the master, for the dashboard's charts: one
 * snapshot a second from the status the master already keeps (no work in the
 * workers), and the times of recycles and reloads. Runs only while the
 * monitor does.
 */
export class History {
  private readonly samples: Sample[] = [];
  private readonly marks: HistoryJson['marks'] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly status: () => MasterStatus, events?: EventEmitter) {
    this.timer = setInterval(() => this.sample(), EVERY_MS);
    this.timer.unref();
    this.sample();
    events?.on('recycled', (oldPid: number, newPid: number, reason: string) => this.mark('recycled', `${oldPid} → ${newPid} (${reason})`));
    events?.on('reloaded', (pairs: unknown[]) => this.mark('reloaded', `reload of ${pairs.length} worker(s)`));
  }

  private mark(kind: 'recycled' | 'reloaded', label: string): void {
    this.marks.push({ t: Date.now(), kind, label });
    this.trim(Date.now());
  }

  private sample(): void {
    const s = this.status();
    const now = Date.now();
    let requests = s.retired?.requests ?? 0;
    const workers: Sample['workers'] = [];
    for (const w of s.workers) {
      requests += w.requests;
      if (w.state !== 'draining') workers.push({ slot: w.slot, pid: w.pid, rss: w.rss, delayP99: w.loopDelayP99 ?? null });
    }
    this.samples.push({ t: now, requests, workers });
    this.trim(now);
  }

  private trim(now: number): void {
    const from = now - HISTORY_MS;
    while (this.samples.length && this.samples[0].t < from) this.samples.shift();
    while (this.marks.length && this.marks[0].t < from) this.marks.shift();
  }

  json(): HistoryJson {
    return { span: HISTORY_MS, samples: this.samples, marks: this.marks };
  }

  close(): void {
    clearInterval(this.timer);
  }
}
