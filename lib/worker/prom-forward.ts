/**
 * The app's own prom-client metrics, sent to the master with each heartbeat
 * so its /metrics aggregates every worker's (prom-client's AggregatorRegistry
 * needs node:cluster, which cluster2 workers are not). Only when the app
 * itself loaded prom-client (a worker's cluster2 never does): nothing is
 * loaded for an app that did not.
 */
interface Registry {
  getMetricsAsJSON(): Promise<unknown[]> | unknown[];
}

const PROM_CLIENT = /[\\/]node_modules[\\/]prom-client[\\/]index\.js$/;
let found: Registry | null = null;
let scanned = 0;

/** The default registry of the prom-client the app loaded (its own copy), or null. */
export function appRegistry(): Registry | null {
  if (found) return found;
  // Look again only when modules were loaded since the last look.
  const files = Object.keys(require.cache);
  if (files.length === scanned) return null;
  scanned = files.length;
  for (const file of files) {
    const mod = require.cache[file];
    if (mod && PROM_CLIENT.test(file)) {
      const register = (mod.exports as { register?: Registry }).register;
      if (register && typeof register.getMetricsAsJSON === 'function') return (found = register);
    }
  }
  return null;
}

/** Send the app's metrics, if it has any; never throws. */
export function sendAppMetrics(send: (m: { c2: 'prom'; metrics: unknown[] }) => void): void {
  const r = appRegistry();
  if (!r) return;
  Promise.resolve()
    .then(() => r.getMetricsAsJSON())
    .then(
      (metrics) => send({ c2: 'prom', metrics }),
      () => {},
    );
}
