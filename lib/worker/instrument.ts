import * as http from 'node:http';
import * as net from 'node:net';
import type { RecycleReason, WorkerStats } from '../shared/ipc';
import { Http2Front, isHttp2Server } from './http2-server';
import { Durations } from '../shared/durations';
import { LoopStats } from './loop-stats';
import { sweepIdle } from './idle-sweep';
import { OpenSockets } from './open-sockets';

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

import type { FrontHandler } from '../shared/front';

export type { FrontHandler };

const kUpgraded = Symbol('cluster2.upgraded');
const kWebSocket = Symbol('cluster2.websocket');
/** On a TLS server's connection: the TLS socket over it, where http keeps its response. */
const kTls = Symbol('cluster2.tls');
type Tracked = net.Socket & {
  [kUpgraded]?: boolean;
  [kWebSocket]?: boolean;
  [kTls]?: Tracked;
  _httpMessage?: http.ServerResponse | null;
  /** A server-side TLS socket's connection (the socket 'connection' gave). */
  _parent?: Tracked | null;
};

export function isHttpServer(server: net.Server): server is http.Server {
  // https.Server is a tls.Server with http.Server's options mixed in; testing for
  // those spares loading node:https (and node:tls) in apps that do not use them.
  return server instanceof http.Server || ('keepAliveTimeout' in server && 'headersTimeout' in server);
}

/**
 * Counts, times out and tracks the connections of the app's server, and for
 * HTTP puts cluster2 in front of the app's request listeners: ECV first, and
 * `Connection: close` on every response once the worker drains.
 * Everything per request is a counter and a flag test; per connection, a push
 * onto the list of open sockets and one shared 'close' listener that takes it
 * off (lib/worker/open-sockets). The idle timeout is one sweep for all the
 * sockets (lib/worker/idle-sweep), not a timer per socket re-armed at every
 * read and write.
 */
export class Instrumented {
  private readonly sockets = new OpenSockets<Tracked>();
  readonly http: boolean;
  connections = 0;
  requests = 0;
  draining = false;
  front: FrontHandler | null = null;
  /** For an HTTP/2 server: ECV, counts and GOAWAY at drain. */
  readonly h2: Http2Front | null = null;

  constructor(
    readonly server: net.Server,
    private readonly o: InstrumentOptions,
  ) {
    this.http = isHttpServer(server);
    // `self`: read inside plain functions whose `this` is the server or socket.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const sockets = this.sockets;
    const timeout = o.timeout;
    const threshold = o.connThreshold;
    const idle = (socket: net.Socket) => {
      o.warn(
        `worker ${process.pid}: closed a connection from ${socket.remoteAddress}:${socket.remotePort} ` +
          `idle for ${timeout} ms`,
      );
      socket.destroy();
    };
    if (!this.http && isHttp2Server(server)) {
      // HTTP/2 sessions time out on their own (their socket is read natively: its timer would not see the streams).
      this.h2 = new Http2Front(server, {
        request: () => {
          if (++self.requests === o.maxRequests) o.recycle('maxRequests');
          return self.draining;
        },
        front: () => self.front,
        timeout,
        idle: (session) => {
          o.warn(
            `worker ${process.pid}: closed an HTTP/2 session from ` +
              `${session.socket?.remoteAddress}:${session.socket?.remotePort} idle for ${timeout} ms`,
          );
          session.close();
        },
      });
    }
    // An HTTP app that times its sockets itself (server.timeout, or a 'timeout'
    // listener) keeps its timers; each socket also gets ours, which http
    // re-arms with the app's time. Every other server: the sweep.
    const appTimed = this.http && ((server as http.Server).timeout > 0 || server.listenerCount('timeout') > 0);
    const socketTimer = timeout > 0 && appTimed;
    if (timeout > 0 && !appTimed && this.h2 === null) {
      // Upgraded sockets (WebSocket) keep their own time, as with Node's timer, which http leaves to them.
      const stop = sweepIdle(sockets, timeout, idle, (s) => (s as Tracked)[kUpgraded] === true);
      server.once('close', stop);
    }
    function onTimeout(this: Tracked) {
      idle(this);
    }
    // prependListener: the socket is tracked before the app (or http) sees it.
    server.prependListener('connection', (socket: Tracked) => {
      sockets.add(socket);
      if (socketTimer) {
        socket.setTimeout(timeout);
        socket.on('timeout', onTimeout);
      }
      if (++self.connections === threshold) o.recycle('connThreshold');
    });
    // A TLS server (https, HTTP/2 over TLS): the connections tracked are the TCP sockets;
    // http serves on the TLS socket over each, which is what a drain must look at and write to.
    if (typeof (server as { setSecureContext?: unknown }).setSecureContext === 'function') {
      server.prependListener('secureConnection', (tlsSocket: Tracked) => {
        if (tlsSocket._parent) tlsSocket._parent[kTls] = tlsSocket;
      });
    }
    if (this.http) this.wrapRequests(server as http.Server);
    // HTTP/1.1 upgrades: on an http(s) server, and on an HTTP/2 server that allows HTTP/1.1.
    if (this.http || this.h2 !== null) {
      server.prependListener('upgrade', (req: http.IncomingMessage, socket: Tracked) => {
        const ws = req.headers.upgrade?.toLowerCase() === 'websocket';
        for (const s of [socket, socket._parent]) {
          if (!s) continue;
          s[kUpgraded] = true;
          if (ws) s[kWebSocket] = true;
        }
      });
    }
  }

  /** The open connections (a socket destroyed but not yet closed is there until its 'close'). */
  live(): OpenSockets<Tracked> {
    return this.sockets;
  }

  private wrapRequests(server: http.Server): void {
    const app = server.listeners('request') as ((req: http.IncomingMessage, res: http.ServerResponse) => void)[];
    server.removeAllListeners('request');
    // `self`: read inside plain functions whose `this` is the server or socket.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const max = this.o.maxRequests;
    const recycle = this.o.recycle;
    const one = app.length === 1 ? app[0] : null;
    const durations = (this.durations = this.o.buckets ? new Durations(this.o.buckets) : null);
    server.on('request', function onRequest(this: http.Server, req: http.IncomingMessage, res: http.ServerResponse) {
      if (++self.requests === max) recycle('maxRequests');
      if (durations !== null) durations.watch(res);
      if (self.draining) res.setHeader('Connection', 'close');
      if (self.front !== null && self.front(req, res)) return;
      if (one !== null) one.call(this, req, res);
      else for (const l of app) l.call(this, req, res);
    });
  }

  /** Has this HTTP connection no response in progress (and is not a WebSocket)? */
  static idle(socket: Tracked): boolean {
    return !socket[kUpgraded] && !Instrumented.response(socket);
  }

  /** The response in progress on an HTTP connection (on its TLS socket for https). */
  static response(socket: Tracked): http.ServerResponse | null | undefined {
    return (socket[kTls] ?? socket)._httpMessage;
  }

  static upgraded(socket: Tracked): boolean {
    return socket[kUpgraded] === true;
  }

  /** The open connections upgraded to WebSocket (the TLS socket over it for wss, where frames are written). */
  *websockets(): Iterable<net.Socket> {
    for (const s of this.live()) if (s[kWebSocket] === true) yield s[kTls] ?? s;
  }
  private loop: LoopStats | null = null;
  private durations: Durations | null = null;

  stats(): WorkerStats {
    const m = process.memoryUsage();
    this.loop ??= new LoopStats();
    return {
      connections: this.connections,
      open: this.live().size,
      requests: this.requests,
      rss: m.rss,
      heapUsed: m.heapUsed,
      ...this.loop.sample(),
      durations: this.durations?.snapshot(),
    };
  }
}
