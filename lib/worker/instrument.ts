import * as http from 'node:http';
import * as net from 'node:net';
import type { RecycleReason, WorkerStats } from '../ipc';
import { Durations } from './durations';
import { LoopStats } from './loop-stats';

export interface InstrumentOptions {
  /** Idle socket timeout in ms; 0 disables it. */
  timeout: number;
  /** Ask for a recycle after this many connections (0: never). */
  connThreshold: number;
  /** Ask for a recycle after this many requests (0: never). */
  maxRequests: number;
  warn(message: string): void;
  recycle(reason: RecycleReason): void;
  /** Option requestHistogram: the buckets (seconds), or undefined for none. */
  buckets?: number[];
}

/** Answers a request itself (ECV) and returns true, or returns false to let the app answer. */
export type FrontHandler = (req: http.IncomingMessage, res: http.ServerResponse) => boolean;

const kUpgraded = Symbol('cluster2.upgraded');
type Tracked = net.Socket & { [kUpgraded]?: boolean; _httpMessage?: http.ServerResponse | null };

export function isHttpServer(server: net.Server): server is http.Server {
  // https.Server is a tls.Server with http.Server's options mixed in; testing for
  // those spares loading node:https (and node:tls) in apps that do not use them.
  return server instanceof http.Server || ('keepAliveTimeout' in server && 'headersTimeout' in server);
}

/**
 * Counts, times out and tracks the connections of the app's server, and for
 * HTTP puts cluster2 in front of the app's request listeners: ECV first, and
 * `Connection: close` on every response once the worker drains.
 * Everything per request is a counter and a flag test; per connection, a set
 * insertion (closed sockets are pruned when the set is read, not with a
 * listener on each) and, for net servers, the idle timer.
 */
export class Instrumented {
  private readonly sockets = new Set<Tracked>();
  readonly http: boolean;
  connections = 0;
  requests = 0;
  draining = false;
  front: FrontHandler | null = null;

  constructor(readonly server: net.Server, private readonly o: InstrumentOptions) {
    this.http = isHttpServer(server);
    const self = this;
    const sockets = this.sockets;
    const timeout = o.timeout;
    const threshold = o.connThreshold;
    const idle = (socket: net.Socket) => {
      o.warn(`worker ${process.pid}: closed a connection from ${socket.remoteAddress}:${socket.remotePort} idle for ${timeout} ms`);
      socket.destroy();
    };
    // An http server arms each socket's idle timer itself (server.timeout) and
    // tells its 'timeout' listeners; a net server's sockets get one here.
    const httpTimer = this.http && timeout > 0 && !(server as http.Server).timeout && server.listenerCount('timeout') === 0;
    if (httpTimer) {
      (server as http.Server).timeout = timeout;
      server.on('timeout', idle);
    }
    const netTimer = timeout > 0 && !httpTimer;
    function onTimeout(this: Tracked) { idle(this); }
    // prependListener: the socket is tracked before the app (or http) sees it.
    server.prependListener('connection', (socket: Tracked) => {
      sockets.add(socket);
      if (netTimer) {
        socket.setTimeout(timeout);
        socket.on('timeout', onTimeout);
      }
      if (++self.connections === threshold) o.recycle('connThreshold');
    });
    if (this.http) this.wrapRequests(server as http.Server);
  }

  /** The open connections (closed ones are pruned here). */
  live(): Set<Tracked> {
    for (const s of this.sockets) if (s.destroyed) this.sockets.delete(s);
    return this.sockets;
  }

  private wrapRequests(server: http.Server): void {
    const app = server.listeners('request') as ((req: http.IncomingMessage, res: http.ServerResponse) => void)[];
    server.removeAllListeners('request');
    const self = this;
    const max = this.o.maxRequests;
    const recycle = this.o.recycle;
    const one = app.length === 1 ? app[0] : null;
    const durations = this.durations = this.o.buckets ? new Durations(this.o.buckets) : null;
    server.on('request', function onRequest(this: http.Server, req: http.IncomingMessage, res: http.ServerResponse) {
      if (++self.requests === max) recycle('maxRequests');
      if (durations !== null) durations.watch(res);
      if (self.draining) res.setHeader('Connection', 'close');
      if (self.front !== null && self.front(req, res)) return;
      if (one !== null) one.call(this, req, res);
      else for (const l of app) l.call(this, req, res);
    });
    server.prependListener('upgrade', (_req: http.IncomingMessage, socket: Tracked) => { socket[kUpgraded] = true; });
  }

  /** Has this HTTP socket no response in progress (and is not a WebSocket)? */
  static idle(socket: Tracked): boolean {
    return !socket[kUpgraded] && !socket._httpMessage;
  }

  static upgraded(socket: Tracked): boolean {
    return socket[kUpgraded] === true;
  }

  private loop: LoopStats | null = null;
  private durations: Durations | null = null;

  stats(): WorkerStats {
    const m = process.memoryUsage();
    this.loop ??= new LoopStats();
    return { connections: this.connections, open: this.live().size, requests: this.requests, rss: m.rss, heapUsed: m.heapUsed, ...this.loop.sample(), durations: this.durations?.snapshot() };
  }
}
