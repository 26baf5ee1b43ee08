// Real clients for long-lived connections: WebSocket (ws) and HTTP/2 (node:http2).
import * as http2 from 'node:http2';
import WebSocket from 'ws';
import { until } from './cluster';

export interface WsClient {
  ws: WebSocket;
  /** The worker that answered (its first message: "pid N"). */
  pid: number;
  /** The close code, once closed. */
  code?: number;
  reason?: string;
  closedAt?: number;
}

/** Open n WebSocket clients; resolves once each has its first message (the worker's pid). */
export async function wsClients(port: number, n: number, timeout = 20_000): Promise<WsClient[]> {
  const all = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<WsClient>((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
          const c: WsClient = { ws, pid: 0 };
          ws.once('message', (m) => {
            c.pid = Number(String(m).split(' ')[1]);
            resolve(c);
          });
          ws.on('close', (code, reason) => {
            c.code = code;
            c.reason = String(reason);
            c.closedAt = Date.now();
          });
          ws.once('error', reject);
          ws.once('close', () => reject(new Error('closed before its first message')));
        }),
    ),
  );
  await until(() => all.every((c) => c.pid > 0), timeout, 'WebSocket clients');
  return all;
}

export function closeCodes(clients: WsClient[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of clients) out[String(c.code)] = (out[String(c.code)] ?? 0) + 1;
  return out;
}

export interface H2Load {
  /** Stop sending; resolves once every stream in flight ended. */
  stop(): Promise<void>;
  ok: number;
  /** Streams refused under GOAWAY (and retried, as RFC 9113 allows). */
  retried: number;
  failed: string[];
  /** Pids (x-pid) of the answers, in order. */
  pids: number[];
}

/**
 * Keep `inFlight` streams open on one HTTP/2 session (h2c) to `path`; when
 * the server sends GOAWAY, the next streams go on a new session. A stream
 * refused by GOAWAY (REFUSED_STREAM, or a session that went away before the
 * stream was sent) is retried; any other error counts as failed.
 */
export function h2Load(port: number, inFlight = 16, path = '/slow?ms=50'): H2Load {
  const load: H2Load = { stop, ok: 0, retried: 0, failed: [], pids: [] };
  let session: http2.ClientHttp2Session | undefined;
  let running = true;
  let open = 0;
  const sessions = new Set<http2.ClientHttp2Session>();
  const current = () => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = http2.connect(`http://127.0.0.1:${port}`);
    sessions.add(s);
    s.on('error', () => {});
    s.on('goaway', () => {
      if (session === s) session = undefined;
    });
    s.on('close', () => {
      sessions.delete(s);
      if (session === s) session = undefined;
    });
    return (session = s);
  };
  const one = () => {
    if (!running) return;
    open++;
    let req: http2.ClientHttp2Stream;
    try {
      req = current().request({ ':path': path });
    } catch {
      // The session went away between our check and the request: a new one.
      session = undefined;
      open--;
      load.retried++;
      setImmediate(one);
      return;
    }
    let pid = 0;
    let body = '';
    req.on('response', (h) => {
      pid = Number(h['x-pid']);
      // HTTP/2 has no connection-specific headers (RFC 9113 8.2.2).
      if (h.connection !== undefined || h['keep-alive'] !== undefined)
        load.failed.push(`connection-specific header from ${pid}`);
    });
    req.setEncoding('utf8');
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {});
    let error = '';
    req.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    req.on('close', () => {
      open--;
      if (pid && body.startsWith('hello')) {
        load.ok++;
        load.pids.push(pid);
      } else if (req.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || error === 'ERR_HTTP2_GOAWAY_SESSION') {
        load.retried++;
      } else {
        load.failed.push(`rst ${req.rstCode} error ${error} pid ${pid} body ${JSON.stringify(body.slice(0, 40))}`);
      }
      one();
    });
  };
  for (let i = 0; i < inFlight; i++) one();
  async function stop() {
    running = false;
    await until(() => open === 0, 20_000, 'HTTP/2 streams in flight');
    for (const s of sessions) s.close();
  }
  return load;
}

/** One HTTP/2 GET; resolves with status, headers and body. */
export function h2Get(
  url: string,
  path: string,
  opts: http2.SecureClientSessionOptions = {},
): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(url, opts);
    s.on('error', reject);
    const req = s.request({ ':path': path });
    let headers: http2.IncomingHttpHeaders = {};
    let body = '';
    req.setEncoding('utf8');
    req.on('response', (h) => {
      headers = h;
    });
    req.on('data', (d) => {
      body += d;
    });
    req.on('end', () => {
      s.close();
      resolve({ status: Number(headers[':status']), headers, body });
    });
    req.on('error', reject);
    req.end();
  });
}
