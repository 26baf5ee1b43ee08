import type { EventEmitter } from 'node:events';
import * as http from 'node:http';
import type * as net from 'node:net';
import * as os from 'node:os';
import { createEcvFront, type EcvState } from '../shared/ecv';
import type { MasterStatus } from '../shared/protocol';
import { listenFailure } from '../shared/bind-errors';
import { safeLines, safeText } from '../shared/safe-text';
import type { Resolved, ResolvedEcv } from '../shared/options';
import type { FrontHandler } from '../shared/front';
import { DASHBOARD_CSP, DASHBOARD_HTML } from './dashboard';
import { Deps } from './deps';
import { guardConnections } from './conn-guard';
import { History } from './history';
import { LogFiles, type LogEntry } from './logs';
import type { Metrics } from './metrics';
import type { WorkerProm } from './prom-aggregate';

/** What the monitor shows and controls: the master (or the single process). */
export interface MonitorSource {
  status(): MasterStatus;
  ecv: EcvState;
  /** false: refused (a shutdown is under way). */
  setEcv(enabled: boolean): boolean;
  /** false: no worker listens (ECV here says WARNING); absent: always serving. */
  serving?(): boolean;
  /** The app serves TLS: ECV here fetches `ecv.monitor` over https. */
  appTls?(): boolean;
  /** The app's prom-client metrics of each worker (lib/monitor/prom-aggregate.ts). */
  appMetrics?(): WorkerProm[];
}

export interface MonitorOptions {
  host: string;
  port: number;
  /** The logs directory shown under /logs; none unless the `logs` option names one. */
  logs: string | undefined;
  ecv: ResolvedEcv | false;
  /** Where ECV fetches `ecv.monitor` (the app's host; loopback when it binds every interface). */
  appHost: string;
  /** The app's root (package.json); found from process.argv[1] by default. */
  root?: string;
  /** The Cluster, whose events the history marks (recycles, reloads). */
  events?: EventEmitter;
  /** An inherited listening socket to serve on instead of binding host:port (upgrade, socket activation). */
  fd?: number;
}

const COMMON: http.OutgoingHttpHeaders = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};
/** Connections the monitor holds, per client address and in all (lib/monitor/conn-guard.ts). */
const CONNECTION_LIMITS = { perAddress: 128, total: 1024 };
/** How long a client may take to send a request's headers. */
const HEADERS_TIMEOUT_MS = 10_000;
const TEXT = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
const HTML = 'text/html; charset=utf-8';
/** A log file is shown, never run: no script, no plugin, no same-origin access even if it holds HTML. */
const FILE_CSP = "default-src 'none'; sandbox";

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

function send(
  res: http.ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  extra: http.OutgoingHttpHeaders = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  // JSON carries the app's and the filesystem's text (event messages, file names, package names), read
  // with curl on a terminal too: every control character as a JSON escape (JSON.stringify leaves C1 and
  // the Unicode line and bidi controls raw). The value parsed is the same; pretty-printing's newlines stay.
  if (type === JSON_TYPE && typeof body === 'string') body = safeLines(body);
  res.writeHead(status, { ...COMMON, 'content-type': type, 'content-length': Buffer.byteLength(body), ...extra });
  res.end(body);
}

function fail(res: http.ServerResponse, status: number, message: string, extra: http.OutgoingHttpHeaders = {}): void {
  send(res, status, TEXT, `${safeText(message)}\n`, { connection: 'close', ...extra });
}

/** Text for HTML: markup characters as references, control characters as visible escapes (\u001b). */
function escapeHtml(s: string): string {
  return safeText(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Split a request target into decoded path segments: '/logs/a%20b.log' ->
 * ['logs', 'a b.log']. null when it is not an origin-form path or does not
 * decode. No normalisation: a '..' stays a '..' for the route to refuse.
 */
export function segments(url: string): { parts: string[]; query: URLSearchParams } | null {
  if (!url.startsWith('/')) return null;
  const q = url.indexOf('?');
  const raw = q === -1 ? url.slice(1) : url.slice(1, q);
  const parts: string[] = [];
  for (const s of raw.split('/')) {
    try {
      parts.push(decodeURIComponent(s));
    } catch {
      return null;
    }
  }
  // '/logs/' and '/logs' name the same thing.
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  return { parts, query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)) };
}

/**
 * The monitor, on monPort (bound to monHost, loopback by default):
 *   /          the live dashboard (HTML, polls /status)
 *   /status    the master's status as JSON
 *   /history   the last five minutes, sampled each second, for the dashboard's charts
 *   /metrics   Prometheus text
 *   /logs      the logs directory (HTML, or JSON with ?format=json); /logs/<name> a file in it (?tail=<bytes>)
 *   /deps      the app's dependencies from package.json and its lockfile (?all=1 for the whole tree)
 *   <ecv.path> ECV for the cluster, the same routes as on the app port (the only ECV for plain net servers)
 * It runs in the master, reads only snapshots the master already keeps, does
 * its file work asynchronously, and answers bad requests with 4xx.
 */
export class Monitor {
  readonly server: http.Server;
  private readonly logs: LogFiles | null;
  private readonly deps: Deps;
  private metrics?: Metrics;
  private readonly history: History;
  private readonly front: FrontHandler | null;
  private readonly hostnames: Set<string> | null;

  constructor(
    private readonly src: MonitorSource,
    private readonly o: MonitorOptions,
  ) {
    this.logs = o.logs === undefined ? null : new LogFiles(o.logs);
    this.deps = new Deps(o.root);
    this.history = new History(() => src.status(), o.events);
    this.front = o.ecv
      ? createEcvFront(o.ecv, src.ecv, (enabled) => src.setEcv(enabled), {
          port: () => src.status().port,
          target: () => ({ host: o.appHost, port: src.status().port, tls: src.appTls?.() === true }),
          serving: src.serving && (() => src.serving!()),
        })
      : null;
    // Bound to loopback, the only names a real client uses are loopback ones,
    // IP literals and this host's name; any other Host is a DNS-rebinding page.
    this.hostnames = isLoopback(o.host)
      ? new Set(['localhost', os.hostname().toLowerCase(), o.host.toLowerCase()])
      : null;
    this.server = http.createServer(
      {
        maxHeaderSize: 16 * 1024,
        requestTimeout: 15_000,
        headersTimeout: HEADERS_TIMEOUT_MS,
        keepAliveTimeout: 5000,
        // Node checks the two timeouts every 30 s by default: slow clients would hold their connections that long.
        connectionsCheckingInterval: 1000,
      },
      (req, res) => {
        try {
          this.route(req, res).catch((e: Error) => fail(res, 500, `monitor error: ${e.message}`));
        } catch (e) {
          fail(res, 500, `monitor error: ${(e as Error).message}`);
        }
      },
    );
    guardConnections(this.server, { ...CONNECTION_LIMITS, headersTimeout: HEADERS_TIMEOUT_MS });
  }

  listen(): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const where =
        this.o.fd === undefined ? { host: this.o.host, port: this.o.port, exclusive: true } : { fd: this.o.fd };
      this.server.listen(where, () => {
        this.server.off('error', reject);
        this.server.on('error', () => {
          /* a failed accept must not bring the master down */
        });
        this.server.unref();
        resolve(this.server.address() as net.AddressInfo);
      });
    });
  }

  /** The listening socket's descriptor (a new master inherits it at an upgrade). */
  fd(): number | undefined {
    return (this.server as unknown as { _handle?: { fd?: number } })._handle?.fd;
  }

  close(): void {
    this.history.close();
    this.server.close();
    this.server.closeAllConnections();
  }

  private allowedHost(req: http.IncomingMessage): boolean {
    if (this.hostnames === null) return true;
    const h = req.headers.host;
    if (h === undefined) return true;
    const name = (h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : h.replace(/:\d*$/, '')).toLowerCase();
    if (name.startsWith('[') || /^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return true;
    return this.hostnames.has(name) || name.endsWith('.localhost');
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const allowed = this.allowedHost(req);
    // Reading ECV changes nothing: a balancer may send any Host.
    const read = req.method === 'GET' || req.method === 'HEAD';
    if (this.front !== null && (read || allowed) && this.front(req, res)) return;
    if (!allowed) return fail(res, 403, 'unknown Host');
    const target = segments(req.url ?? '');
    if (target === null) return fail(res, 400, 'bad request target');
    if (req.method !== 'GET' && req.method !== 'HEAD')
      return fail(res, 405, 'method not allowed', { allow: 'GET, HEAD' });
    const { parts, query } = target;
    switch (parts[0]) {
      case '':
        if (parts.length !== 1) break;
        return send(res, 200, HTML, DASHBOARD_HTML, { 'content-security-policy': DASHBOARD_CSP });
      case 'history':
        if (parts.length !== 1) break;
        return send(res, 200, JSON_TYPE, JSON.stringify({ ...this.history.json(), now: Date.now() }));
      case 'status':
        if (parts.length !== 1) break;
        return send(
          res,
          200,
          JSON_TYPE,
          JSON.stringify({ ...this.src.status(), hostname: os.hostname(), now: Date.now() }),
        );
      case 'metrics': {
        if (parts.length !== 1) break;
        if (!this.metrics)
          this.metrics = new (require('./metrics') as typeof import('./metrics')).Metrics(
            () => this.src.status(),
            () => this.src.appMetrics?.() ?? [],
          );
        return send(res, 200, this.metrics.contentType, await this.metrics.text());
      }
      case 'deps':
        if (parts.length !== 1) break;
        return send(res, 200, JSON_TYPE, JSON.stringify(await this.deps.report(query.has('all')), null, 2));
      case 'logs':
        return this.serveLogs(req, res, parts.slice(1), query);
    }
    fail(res, 404, 'not found');
  }

  private async serveLogs(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    parts: string[],
    query: URLSearchParams,
  ): Promise<void> {
    if (this.logs === null) return fail(res, 404, 'no logs directory (the logs option is not set)');
    const found = await this.logs.find(parts);
    if (found.kind === 'error') return fail(res, found.status, found.message);
    if (found.kind === 'dir') {
      const json = query.get('format') === 'json' || (req.headers.accept ?? '').includes('application/json');
      if (json) return send(res, 200, JSON_TYPE, JSON.stringify({ dir: found.name, entries: found.entries }));
      return send(res, 200, HTML, listing(parts, found.entries), {
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      });
    }
    const { handle, size, mtime } = found;
    const tail = Number(query.get('tail'));
    const start = Number.isSafeInteger(tail) && tail > 0 ? Math.max(0, size - tail) : 0;
    const head = {
      ...COMMON,
      'content-type': /\.gz$/.test(found.name) ? 'application/gzip' : TEXT,
      'content-length': size - start,
      'last-modified': new Date(mtime).toUTCString(),
      'content-security-policy': FILE_CSP,
    };
    if (req.method === 'HEAD' || size - start === 0) {
      await handle.close();
      res.writeHead(200, head);
      res.end();
      return;
    }
    // The file may grow while it is sent: send what it had when it was opened.
    const stream = handle.createReadStream({ start, end: size - 1 });
    res.writeHead(200, head);
    stream.on('error', () => res.destroy());
    res.on('close', () => stream.destroy());
    stream.pipe(res);
  }
}

function listing(parts: string[], entries: LogEntry[]): string {
  const base = `/logs/${parts.map(encodeURIComponent).join('/')}${parts.length ? '/' : ''}`;
  const rows = entries.map((e) => {
    const href = `${base}${encodeURIComponent(e.name)}${e.type === 'dir' ? '/' : ''}`;
    const name = `${escapeHtml(e.name)}${e.type === 'dir' ? '/' : ''}`;
    return (
      `<tr><td>${e.public ? `<a href="${escapeHtml(href)}">${name}</a>` : `${name} (not served: not every local user may read it)`}</td>` +
      `<td>${e.type === 'dir' ? '' : e.size}</td><td>${new Date(e.mtime).toISOString()}</td></tr>`
    );
  });
  const title = escapeHtml(`logs/${parts.join('/')}`);
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title>` +
    '<style>body{font:14px system-ui,sans-serif;margin:16px 24px}td{padding:2px 12px 2px 0}</style></head>' +
    `<body><h1>${title}</h1><p><a href="/">monitor</a></p>` +
    '<table><tr><th>name</th><th>bytes</th><th>modified</th></tr>' +
    `${rows.join('')}</table>${entries.length ? '' : '<p>(empty)</p>'}</body></html>`
  );
}

/** Where ECV on the monitor port fetches `ecv.monitor`: the app's host, or loopback when it binds every interface. */
function appHostOf(host: string | undefined): string {
  if (!host || host === '0.0.0.0') return '127.0.0.1';
  if (host === '::') return '::1';
  return host;
}

/**
 * Start the monitor of a master or a single process, when monPort is not
 * false. A port that cannot be had (taken since the port check) is a
 * StartError with the code of any failed bind (lib/shared/port-probe.ts
 * bindExitCode). Emits 'monitor' with the address it listens on (useful
 * with monPort: 0).
 */
export async function startMonitor(
  c: EventEmitter,
  o: Resolved,
  src: MonitorSource,
  fd?: number,
): Promise<Monitor | undefined> {
  if (o.monPort === false) return undefined;
  const m = new Monitor(src, {
    host: o.monHost,
    port: o.monPort,
    logs: o.logs,
    ecv: o.ecv,
    appHost: appHostOf(o.host),
    events: c,
    fd,
  });
  try {
    const address = await m.listen();
    c.emit('monitor', address);
  } catch (e) {
    m.close();
    throw listenFailure('the monitor', o.monHost, o.monPort, e, o.portBusyExitCode);
  }
  return m;
}
