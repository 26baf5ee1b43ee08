import type { EventEmitter } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MasterStatus } from '../shared/protocol';
import { listenFailure } from '../shared/bind-errors';
import type { Resolved } from '../shared/options';
import type { WorkerProm } from './prom-aggregate';

/**
 * The `metrics` option: GET /metrics alone on its own host:port, so a
 * Prometheus elsewhere can scrape it without the monitor's /logs and /deps
 * being exposed. Emits 'metrics' with the address. A port that cannot be had
 * is a StartError with the code of any failed bind (lib/shared/bind-errors.ts
 * bindExitCode). After an upgrade it serves on the socket the replaced master
 * handed over: the port is never closed, and there is no bind to fail.
 */
export async function startMetricsServer(
  c: EventEmitter,
  o: Resolved,
  src: { status(): MasterStatus; appMetrics?(): WorkerProm[] },
  /** A listening socket inherited from the master this one replaces (an upgrade), used when on the same port. */
  fd?: number,
): Promise<http.Server | undefined> {
  if (o.metrics === undefined) return undefined;
  const { host, port } = o.metrics;
  // prom-client is loaded only by a master that serves metrics.
  const metrics = new (require('./metrics') as typeof import('./metrics')).Metrics(
    () => src.status(),
    () => src.appMetrics?.() ?? [],
  );
  const server = http.createServer(
    { requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5000 },
    (req, res) => {
      const path = (req.url ?? '').split('?')[0];
      const head = { 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' };
      if (path !== '/metrics') {
        res.writeHead(404, { ...head, 'content-type': 'text/plain' }).end('not found: only /metrics is served here\n');
      } else if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { ...head, allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n');
      } else {
        metrics.text().then(
          (text) => {
            res.writeHead(200, {
              ...head,
              'content-type': metrics.contentType,
              'content-length': Buffer.byteLength(text),
            });
            res.end(req.method === 'HEAD' ? undefined : text);
          },
          (e: Error) =>
            res.writeHead(500, { ...head, 'content-type': 'text/plain' }).end(`metrics error: ${e.message}\n`),
        );
      }
    },
  );
  server.unref();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      const done = () => {
        server.off('error', reject);
        resolve();
      };
      if (fd === undefined) server.listen(port, host, done);
      else server.listen({ fd }, done);
    });
  } catch (e) {
    throw listenFailure('the metrics server', host ?? '*', port, e, o.portBusyExitCode);
  }
  c.emit('metrics', server.address() as AddressInfo);
  return server;
}
