import type * as http from 'node:http';
import { performance } from 'node:perf_hooks';

/** prom-client's default buckets, in seconds. */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * A request duration histogram's state: upper bounds, a count per bucket (the last is +Inf, not
 * cumulative), the sum of seconds.
 */
export interface DurationsSnapshot {
  le: number[];
  counts: number[];
  sum: number;
}

/**
 * The option requestHistogram in a worker: each response's time from the
 * request to 'finish' goes into one bucket. Off (no object, no listener) by
 * default; on, a timestamp and one 'finish' listener per request.
 */
export class Durations {
  private readonly counts: number[];
  private sum = 0;

  constructor(private readonly le: number[]) {
    this.counts = new Array<number>(le.length + 1).fill(0);
  }

  watch(res: http.ServerResponse): void {
    const t0 = performance.now();
    res.once('finish', () => this.add((performance.now() - t0) / 1000));
  }

  private add(seconds: number): void {
    const le = this.le;
    let i = 0;
    while (i < le.length && seconds > le[i]) i++;
    this.counts[i]++;
    this.sum += seconds;
  }

  snapshot(): DurationsSnapshot {
    return { le: this.le, counts: this.counts.slice(), sum: this.sum };
  }
}

/** Add b into a (same buckets); returns a. */
export function addDurations(
  a: DurationsSnapshot | undefined,
  b: DurationsSnapshot | undefined,
): DurationsSnapshot | undefined {
  if (!b) return a;
  if (!a) return { le: b.le, counts: b.counts.slice(), sum: b.sum };
  for (let i = 0; i < a.counts.length; i++) a.counts[i] += b.counts[i] ?? 0;
  a.sum += b.sum;
  return a;
}
