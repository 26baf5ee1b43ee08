import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { MasterStatus } from '../shared/protocol';
import type { DurationsSnapshot } from '../shared/durations';
import { aggregateAppMetrics, type WorkerProm } from './prom-aggregate';
import { clusterDurations } from './history';

/** Worker series are labelled by slot, which a replacement keeps: a recycle does not start new series. */
const WORKER = ['slot'] as const;

/**
 * Prometheus text for the cluster: one series per slot (the worker serving it;
 * its pid in cluster2_worker_info) from the stats the workers send with every heartbeat pong, cluster
 * totals that stay monotonic across recycles (workers that exited are counted
 * from the final counts they send as they exit), and the master process's own default metrics.
 * The recycle and exit counts come from the status too (the supervisor counts
 * them from the master's start), so a Metrics built at the first scrape misses none.
 * Everything is read from one status snapshot per scrape: nothing runs between scrapes.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly w: {
    info: Gauge<'slot' | 'pid'>;
    connections: Counter<'slot'>;
    requests: Counter<'slot'>;
    open: Gauge<'slot'>;
    rss: Gauge<'slot'>;
    heap: Gauge<'slot'>;
    start: Gauge<'slot'>;
    cpu: Counter<'slot'>;
    delay: Gauge<'slot' | 'quantile'>;
    utilization: Gauge<'slot'>;
  };
  private readonly c: {
    workers: Gauge<'state'>;
    connections: Counter;
    requests: Counter;
    open: Gauge;
    rss: Gauge;
    restarts: Counter;
    recycles: Counter<'reason'>;
    deaths: Counter;
    ecv: Gauge;
    up: Gauge<'state'>;
    start: Gauge;
  };
  constructor(
    private readonly status: () => MasterStatus,
    private readonly appMetrics: () => WorkerProm[] = () => [],
  ) {
    const registers = [this.registry];
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Gauge<L>({ name, help, labelNames, registers });
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
      new Counter<L>({ name, help, labelNames, registers });
    this.w = {
      info: gauge('cluster2_worker_info', 'The worker process serving each slot (1; labels slot and pid).', [
        'slot',
        'pid',
      ]),
      cpu: counter(
        'cluster2_worker_cpu_seconds_total',
        'User and system CPU time of the worker serving the slot, since it started.',
        WORKER,
      ),
      delay: gauge(
        'cluster2_worker_event_loop_delay_seconds',
        'Event-loop delay of the worker between its last two heartbeats, by quantile (0.5, 0.99).',
        ['slot', 'quantile'],
      ),
      utilization: gauge(
        'cluster2_worker_event_loop_utilization_ratio',
        'Event-loop utilization (0 to 1) of the worker between its last two heartbeats.',
        WORKER,
      ),
      connections: counter(
        'cluster2_worker_connections_total',
        'Connections accepted by the worker since it started.',
        WORKER,
      ),
      requests: counter(
        'cluster2_worker_requests_total',
        'HTTP requests served by the worker since it started.',
        WORKER,
      ),
      open: gauge('cluster2_worker_open_connections', 'Connections the worker has open now.', WORKER),
      rss: gauge('cluster2_worker_resident_memory_bytes', 'Resident set size of the worker.', WORKER),
      heap: gauge('cluster2_worker_heap_used_bytes', 'V8 heap used by the worker.', WORKER),
      start: gauge(
        'cluster2_worker_start_time_seconds',
        'When the worker was forked, in seconds since the epoch.',
        WORKER,
      ),
    };
    this.c = {
      workers: gauge('cluster2_workers', 'Workers by state (starting, listening, draining).', ['state']),
      connections: counter(
        'cluster2_connections_total',
        'Connections accepted by all workers, those that exited included.',
      ),
      requests: counter('cluster2_requests_total', 'HTTP requests served by all workers, those that exited included.'),
      open: gauge('cluster2_open_connections', 'Connections open now, all workers.'),
      rss: gauge('cluster2_workers_resident_memory_bytes', 'Resident set size of all workers together.'),
      restarts: counter('cluster2_restarts_total', 'Workers respawned after an unexpected exit.'),
      recycles: counter('cluster2_recycles_total', 'Workers replaced, by reason.', ['reason']),
      deaths: counter('cluster2_worker_exits_total', 'Worker processes that exited, for any reason.'),
      ecv: gauge('cluster2_ecv_enabled', '1 when ECV is enabled (the balancer may send traffic), 0 when disabled.'),
      up: gauge('cluster2_master_state', '1 for the state the master is in.', ['state']),
      start: gauge('cluster2_master_start_time_seconds', 'When the master started, in seconds since the epoch.'),
    };
    collectDefaultMetrics({ register: this.registry, prefix: 'cluster2_master_' });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of a fresh snapshot. */
  async text(): Promise<string> {
    const s = this.status();
    this.fill(s);
    const own = (await this.registry.metrics()) + durationsText(clusterDurations(s));
    const app = aggregateAppMetrics(this.appMetrics());
    return app ? own + (await app.metrics()) : own;
  }

  private fill(s: MasterStatus): void {
    const { w, c } = this;
    for (const m of Object.values(w)) m.reset();
    for (const m of Object.values(c)) m.reset();
    const states: Record<string, number> = { starting: 0, listening: 0, draining: 0 };
    let connections = s.retired?.connections ?? 0;
    let requests = s.retired?.requests ?? 0;
    let open = 0;
    let rss = 0;
    for (const x of s.workers) {
      states[x.state] = (states[x.state] ?? 0) + 1;
      connections += x.connections;
      requests += x.requests;
      open += x.open;
      rss += x.rss;
      // A draining worker's slot already has its replacement: the slot's series follow the replacement.
      if (x.state === 'draining') continue;
      const l = { slot: String(x.slot) };
      w.info.set({ ...l, pid: String(x.pid) }, 1);
      if (x.cpuSeconds !== undefined) w.cpu.inc(l, x.cpuSeconds);
      if (x.loopDelayP50 !== undefined) w.delay.set({ ...l, quantile: '0.5' }, x.loopDelayP50);
      if (x.loopDelayP99 !== undefined) w.delay.set({ ...l, quantile: '0.99' }, x.loopDelayP99);
      if (x.loopUtilization !== undefined) w.utilization.set(l, x.loopUtilization);
      w.connections.inc(l, x.connections);
      w.requests.inc(l, x.requests);
      w.open.set(l, x.open);
      w.rss.set(l, x.rss);
      w.heap.set(l, x.heapUsed);
      w.start.set(l, x.started / 1000);
    }
    for (const [state, n] of Object.entries(states)) c.workers.set({ state }, n);
    c.connections.inc(connections);
    c.requests.inc(requests);
    c.open.set(open);
    c.rss.set(rss);
    c.restarts.inc(s.restarts);
    for (const [reason, n] of Object.entries(s.recycles ?? {})) c.recycles.inc({ reason }, n);
    c.deaths.inc(s.exits ?? 0);
    c.ecv.set(s.ecv.enabled ? 1 : 0);
    c.up.set({ state: s.state }, 1);
    c.start.set(s.started / 1000);
  }
}

const HISTOGRAM = 'cluster2_http_request_duration_seconds';

/** The Prometheus text of the request duration histogram (cumulative buckets), or '' when it is off. */
function durationsText(d: DurationsSnapshot | undefined): string {
  if (!d) return '';
  const lines = [
    `# HELP ${HISTOGRAM} Time from a request to its response's end, all workers (option requestHistogram).`,
    `# TYPE ${HISTOGRAM} histogram`,
  ];
  let n = 0;
  d.le.forEach((le, i) => {
    n += d.counts[i];
    lines.push(`${HISTOGRAM}_bucket{le="${le}"} ${n}`);
  });
  n += d.counts[d.le.length];
  lines.push(`${HISTOGRAM}_bucket{le="+Inf"} ${n}`, `${HISTOGRAM}_sum ${d.sum}`, `${HISTOGRAM}_count ${n}`);
  return `${lines.join('\n')}\n`;
}
