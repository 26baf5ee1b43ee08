import type { EventEmitter } from 'node:events';
import type { MasterStatus } from '../shared/protocol';
import { addDurations, type DurationsSnapshot } from '../shared/durations';

/** One sample: time, cluster request total, and per slot the worker's pid, RSS and event-loop delay p99. */
export interface Sample {
  t: number;
  requests: number;
  workers: { slot: number; pid: number; rss: number; delayP99: number | null }[];
  /**
   * Option requestHistogram: request duration p99 (s) since the previous sample, by the buckets; null
   * when none ended.
   */
  p99?: number | null;
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
 * The most marks kept: a recycle storm (many workers, a small maxRequests) makes thousands in five
 * minutes, which a chart 560 pixels wide cannot show apart, and the master would keep them all.
 */
export const MAX_MARKS = 500;

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
  private last: DurationsSnapshot | undefined;

  constructor(
    private readonly status: () => MasterStatus,
    events?: EventEmitter,
  ) {
    this.timer = setInterval(() => this.sample(), EVERY_MS);
    this.timer.unref();
    this.sample();
    events?.on('recycled', (oldPid: number, newPid: number, reason: string) =>
      this.mark('recycled', `${oldPid} → ${newPid} (${reason})`),
    );
    events?.on('reloaded', (pairs: unknown[]) => this.mark('reloaded', `reload of ${pairs.length} worker(s)`));
  }

  private mark(kind: 'recycled' | 'reloaded', label: string): void {
    this.marks.push({ t: Date.now(), kind, label });
    if (this.marks.length > MAX_MARKS) this.marks.shift();
    this.trim(Date.now());
  }

  private sample(): void {
    const s = this.status();
    const now = Date.now();
    let requests = s.retired?.requests ?? 0;
    const workers: Sample['workers'] = [];
    for (const w of s.workers) {
      requests += w.requests;
      if (w.state !== 'draining')
        workers.push({ slot: w.slot, pid: w.pid, rss: w.rss, delayP99: w.loopDelayP99 ?? null });
    }
    const sample: Sample = { t: now, requests, workers };
    const d = clusterDurations(s);
    if (d) {
      sample.p99 = this.last ? p99Between(this.last, d) : null;
      this.last = d;
    }
    this.samples.push(sample);
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

/**
 * The 99th percentile of the requests that ended between two cumulative
 * snapshots, linearly within its bucket (as Prometheus' histogram_quantile);
 * null when none ended. Past the last bound: the last bound.
 */
export function p99Between(a: DurationsSnapshot, b: DurationsSnapshot): number | null {
  const diff = b.counts.map((c, i) => Math.max(0, c - (a.counts[i] ?? 0)));
  const total = diff.reduce((x, y) => x + y, 0);
  if (total === 0) return null;
  const rank = 0.99 * total;
  let seen = 0;
  for (let i = 0; i < diff.length; i++) {
    if (seen + diff[i] >= rank) {
      if (i === b.le.length) return b.le[b.le.length - 1];
      const lo = i === 0 ? 0 : b.le[i - 1];
      return lo + (b.le[i] - lo) * ((rank - seen) / diff[i]);
    }
    seen += diff[i];
  }
  return b.le[b.le.length - 1];
}

/** Option requestHistogram: every worker's request durations, those that exited included (undefined when off). */
export function clusterDurations(s: MasterStatus): DurationsSnapshot | undefined {
  let all = addDurations(undefined, s.retired?.durations);
  for (const w of s.workers) all = addDurations(all, w.durations);
  return all;
}
