import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';

/** What a worker adds to its stats for the metrics: CPU time and event-loop health since the last sample. */
export interface LoopSample {
  /** User + system CPU time of the process since it started, in seconds. */
  cpuSeconds: number;
  /** Event-loop delay percentiles since the last sample, in seconds. */
  loopDelayP50: number;
  loopDelayP99: number;
  /** Event-loop utilization (0..1) since the last sample. */
  loopUtilization: number;
}

/**
 * Samples the event loop from the first call on: a delay histogram sampled by
 * libuv every 10 ms (no work on the request path), reset at each sample, and
 * the utilization since the previous one.
 */
export class LoopStats {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });
  private elu: EventLoopUtilization = performance.eventLoopUtilization();

  constructor() {
    this.delay.enable();
  }

  sample(): LoopSample {
    const cpu = process.cpuUsage();
    const elu = performance.eventLoopUtilization();
    const since = performance.eventLoopUtilization(elu, this.elu);
    this.elu = elu;
    const h = this.delay;
    // Percentiles are in nanoseconds; an empty histogram (no sample yet) reads 0.
    const p = (q: number) => (h.count > 0 ? h.percentile(q) / 1e9 : 0);
    const out = {
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      loopDelayP50: p(50),
      loopDelayP99: p(99),
      loopUtilization: since.utilization,
    };
    h.reset();
    return out;
  }
}
