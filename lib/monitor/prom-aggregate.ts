import type { Registry } from 'prom-client';

/**
 * The app's prom-client metrics of one live worker, as its last heartbeat brought them
 * (lib/worker/prom-forward.ts); the master keeps them with the worker.
 */
export interface WorkerProm {
  slot: number;
  metrics: unknown[];
}

interface Json {
  name: string;
  type: string;
  aggregator?: string;
  values?: { labels?: Record<string, unknown> }[];
}

/**
 * One registry of every worker's app metrics: counters summed, histograms
 * merged (bucket by bucket), gauges per worker (a `slot` label added), by
 * prom-client's own AggregatorRegistry.aggregate. null when no worker sent any.
 */
export function aggregateAppMetrics(appMetrics: WorkerProm[]): Registry | null {
  if (appMetrics.length === 0) return null;
  const { AggregatorRegistry } = require('prom-client') as typeof import('prom-client');
  const perWorker = appMetrics.map(({ slot, metrics }) =>
    (metrics as Json[]).map((m) =>
      m.type !== 'gauge'
        ? m
        : {
            ...m,
            aggregator: 'sum',
            values: (m.values ?? []).map((v) => ({ ...v, labels: { ...v.labels, slot: String(slot) } })),
          },
    ),
  );
  return AggregatorRegistry.aggregate(perWorker as Parameters<typeof AggregatorRegistry.aggregate>[0]);
}
