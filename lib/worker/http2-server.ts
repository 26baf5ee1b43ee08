import type * as http from 'node:http';
import type * as http2 from 'node:http2';
import type * as net from 'node:net';
import type { FrontHandler } from '../shared/front';

/** http2.createServer and http2.createSecureServer (told apart without loading node:http2). */
export function isHttp2Server(server: net.Server): server is http2.Http2Server {
  return typeof (server as Partial<http2.Http2Server>).updateSettings === 'function';
}

export interface Http2Hooks {
  /** Count a request; true when the worker drains (its HTTP/1.1 responses then carry `Connection: close`). */
  request(): boolean;
  front(): FrontHandler | null;
  /** Idle session timeout in ms (0: none). */
  timeout: number;
  /** A session idle for `timeout` was closed. */
  idle(session: http2.ServerHttp2Session): void;
}

/**
 * cluster2 in front of an HTTP/2 server: every request is counted and ECV is
 * answered on the app's port, for HTTP/2 streams (whether the app uses the
 * compatibility API or 'stream' events) and for HTTP/1.1 requests of an
 * `allowHTTP1` server; the sessions are kept, so a drain can send each one
 * GOAWAY. HTTP/2 responses get no connection-specific header.
 */
export class Http2Front {
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private draining = false;

  constructor(
    readonly server: http2.Http2Server,
    h: Http2Hooks,
  ) {
    const sessions = this.sessions;
    server.on('session', (session: http2.ServerHttp2Session) => {
      sessions.add(session);
      session.once('close', () => sessions.delete(session));
      if (h.timeout > 0) session.setTimeout(h.timeout, () => h.idle(session));
      // Reached this worker while it drained (the queue of a socket taken out of rotation): served, then closed.
      if (this.draining) setImmediate(() => session.close());
    });
    const emit = server.emit;
    let compat: typeof import('node:http2') | undefined;
    server.emit = function (this: http2.Http2Server, event: string | symbol, ...args: unknown[]): boolean {
      if (event === 'stream') {
        h.request();
        const front = h.front();
        const headers = args[1] as http2.IncomingHttpHeaders;
        if (front !== null && front.owns(headers[':path'] ?? '')) {
          compat ??= require('node:http2') as typeof import('node:http2');
          const stream = args[0] as http2.ServerHttp2Stream;
          const req = new compat.Http2ServerRequest(stream, headers, undefined as never, args[3] as string[]);
          const res = new compat.Http2ServerResponse(stream);
          if (front(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse)) return true;
        }
      } else if (event === 'request' && (args[0] as http.IncomingMessage).httpVersionMajor === 1) {
        // HTTP/1.1 on an allowHTTP1 server (HTTP/2 streams were seen as 'stream').
        const [req, res] = args as [http.IncomingMessage, http.ServerResponse];
        if (h.request()) res.setHeader('Connection', 'close');
        const front = h.front();
        if (front !== null && front(req, res)) return true;
      }
      return emit.call(this, event, ...args);
    } as typeof server.emit;
  }

  /** GOAWAY to every session: streams in flight finish, the client opens its next ones elsewhere. */
  drain(): void {
    this.draining = true;
    for (const s of this.sessions) s.close();
  }
}
