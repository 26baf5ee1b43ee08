// The light load a chaos sequence runs under, one loop per kind: HTTP/1.1 keep-alive, a new
// connection per request, an upload in progress (a slow POST body), and a WebSocket (plain
// HTTP) or an HTTP/2 session (TLS). Every failure is recorded with its time, kind, error, the worker that had
// served the connection (when one had) and whether it had served anything: the model
// (./model.ts) decides afterwards which failures the operations allow.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as https from 'node:https';
import WebSocket from 'ws';

export type LoadKind = 'keepalive' | 'fresh' | 'ws' | 'h2' | 'upload';

export interface Failure {
  t: number;
  kind: LoadKind;
  /** An error code (ECONNRESET, ECONNREFUSED, TIMEOUT ...), 'ws-<close code>', 'status-<code>' or 'bad-body'. */
  error: string;
  /** The worker that served this connection before, when it had. */
  pid?: number;
  /** The connection had served something before it failed (a refused or reset new connection had not). */
  served: boolean;
  /** When the request began (a timeout is seen long after the moment that lost it). */
  started?: number;
}

export interface Load {
  failures: Failure[];
  ok: Record<LoadKind, number>;
  /** Stop every loop; resolves once nothing is in flight. */
  stop(): Promise<void>;
}

/** A request that waits longer than this failed (a black hole: the model never allows it). */
const REQUEST_TIMEOUT_MS = 10_000;
/** Pause between two requests of one loop: a few dozen per second per kind. */
const THINK_MS = 40;
/** The upload: CHUNKS of CHUNK bytes, one every CHUNK_MS. */
const CHUNKS = 5;
const CHUNK = 1024;
const CHUNK_MS = 100;

type Sock = { c2pid?: number; c2err?: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const codeOf = (e: NodeJS.ErrnoException) => e.code ?? e.message;

export function startLoad(port: number, tls: boolean, ws = !tls): Load {
  const failures: Failure[] = [];
  const ok: Record<LoadKind, number> = { keepalive: 0, fresh: 0, ws: 0, h2: 0, upload: 0 };
  let running = true;
  const fail = (kind: LoadKind, error: string, pid?: number, started?: number) =>
    failures.push({ t: Date.now(), kind, error, pid, served: pid !== undefined, started });
  const mod = tls ? https : http;
  const agentOpts = { keepAlive: true, maxSockets: 1, rejectUnauthorized: false };
  const agents: http.Agent[] = [];
  const cleanups: (() => void)[] = [];

  /** One HTTP/1.1 request on `agent` (false: a new connection); POST: the slow upload. */
  const one = (kind: LoadKind, agent: http.Agent | false) =>
    new Promise<void>((resolve) => {
      let sock: (Sock & import('node:net').Socket) | undefined;
      let done = false;
      const started = Date.now();
      const finish = (error?: string) => {
        if (done) return;
        done = true;
        if (error) fail(kind, error, sock?.c2pid, started);
        else ok[kind]++;
        resolve();
      };
      const upload = kind === 'upload';
      const req = mod.request(
        {
          host: '127.0.0.1',
          port,
          path: '/',
          method: upload ? 'POST' : 'GET',
          headers: upload ? { 'content-length': String(CHUNKS * CHUNK) } : undefined,
          agent,
          rejectUnauthorized: false,
          timeout: REQUEST_TIMEOUT_MS,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (body += d));
          res.on('end', () => {
            const pid = Number(res.headers['x-pid']);
            if (sock && pid) sock.c2pid = pid;
            if (res.statusCode !== 200) return finish(`status-${res.statusCode}`);
            if (upload ? !body.startsWith(`got ${CHUNKS * CHUNK} `) : !body.startsWith('hello '))
              return finish('bad-body');
            finish();
          });
          res.on('error', (e: NodeJS.ErrnoException) => finish(codeOf(e)));
        },
      );
      req.on('socket', (s) => (sock = s));
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
      req.on('error', (e: NodeJS.ErrnoException) => finish(codeOf(e)));
      if (!upload) return void req.end();
      let n = 0;
      const chunk = () => {
        if (done || req.destroyed) return;
        if (++n === CHUNKS) return void req.end(Buffer.alloc(CHUNK, 97));
        req.write(Buffer.alloc(CHUNK, 97));
        setTimeout(chunk, CHUNK_MS);
      };
      chunk();
    });

  const loop = async (kind: LoadKind, agent: http.Agent | false) => {
    while (running) {
      await one(kind, agent);
      await sleep(THINK_MS);
    }
  };

  const loops: Promise<void>[] = [];
  for (let i = 0; i < 2; i++) {
    const agent = new mod.Agent(agentOpts);
    agents.push(agent);
    loops.push(loop('keepalive', agent));
  }
  loops.push(loop('fresh', false));
  {
    const agent = new mod.Agent(agentOpts);
    agents.push(agent);
    loops.push(loop('upload', agent));
  }
  // Over TLS the app is an HTTP/2 server with allowHTTP1: a WebSocket there is not closed when
  // its worker drains (test/chaos-regressions.test.ts); the plain HTTP configurations cover it.
  if (tls) loops.push(h2Loop());
  if (ws) loops.push(wsLoop());

  /** A WebSocket that sends a message every THINK_MS and expects each back; reconnects after a clean close. */
  async function wsLoop(): Promise<void> {
    while (running) {
      await new Promise<void>((resolve) => {
        const ws = new WebSocket(`${tls ? 'wss' : 'ws'}://127.0.0.1:${port}/`, {
          rejectUnauthorized: false,
          handshakeTimeout: REQUEST_TIMEOUT_MS,
        });
        let pid: number | undefined;
        let failed = false;
        let timer: NodeJS.Timeout | undefined;
        let waiting = 0; // since when an echo is awaited
        const failOnce = (error: string) => {
          if (failed) return;
          failed = true;
          fail('ws', error, pid);
        };
        const tick = () => {
          if (waiting && Date.now() - waiting > REQUEST_TIMEOUT_MS) {
            failOnce('TIMEOUT');
            return ws.terminate();
          }
          if (!running) return ws.close(1000);
          if (!waiting && ws.readyState === WebSocket.OPEN) {
            waiting = Date.now();
            ws.send('ping');
          }
          timer = setTimeout(tick, THINK_MS);
        };
        ws.on('message', (m) => {
          const s = String(m);
          if (pid === undefined && s.startsWith('pid ')) {
            pid = Number(s.slice(4));
            tick();
          } else if (s === 'ping') {
            waiting = 0;
            ok.ws++;
          }
        });
        ws.on('unexpected-response', (_req, res) => {
          failOnce(`status-${res.statusCode}`);
          ws.terminate();
        });
        ws.on('error', (e: NodeJS.ErrnoException) => failOnce(codeOf(e)));
        ws.on('close', (code) => {
          clearTimeout(timer);
          // 1000: ours; 1001: the server shuts down; 1012: it restarts (reload, recycle, resize, upgrade).
          if (![1000, 1001, 1012].includes(code)) failOnce(`ws-${code}`);
          resolve();
        });
      });
      if (running) await sleep(THINK_MS);
    }
  }

  /** One HTTP/2 session, a stream every THINK_MS; after GOAWAY the next streams go on a new session. */
  async function h2Loop(): Promise<void> {
    let session: (http2.ClientHttp2Session & Sock) | undefined;
    cleanups.push(() => session?.close());
    const current = () => {
      if (session && !session.closed && !session.destroyed) return session;
      const s: http2.ClientHttp2Session & Sock = http2.connect(`https://127.0.0.1:${port}`, {
        rejectUnauthorized: false,
      });
      s.on('error', (e: NodeJS.ErrnoException) => (s.c2err = codeOf(e)));
      s.on('goaway', () => {
        if (session === s) session = undefined;
      });
      s.on('close', () => {
        if (session === s) session = undefined;
      });
      return (session = s);
    };
    while (running) {
      await new Promise<void>((resolve) => {
        let s: http2.ClientHttp2Session & Sock;
        let req: http2.ClientHttp2Stream;
        try {
          s = current();
          req = s.request({ ':path': '/' });
        } catch {
          // The session went away between our check and the request: the next one takes a new session.
          session = undefined;
          return resolve();
        }
        let body = '';
        let error = '';
        let pid = 0;
        req.setTimeout(REQUEST_TIMEOUT_MS, () => {
          error = 'TIMEOUT';
          req.close(http2.constants.NGHTTP2_CANCEL);
        });
        req.on('response', (h) => {
          pid = Number(h['x-pid']);
          if (pid) s.c2pid = pid;
        });
        req.setEncoding('utf8');
        req.on('data', (d) => (body += d));
        req.on('error', (e: NodeJS.ErrnoException) => {
          // A stream cancelled because its session failed (refused, reset): the cause says why.
          const cause = (e as { cause?: NodeJS.ErrnoException }).cause;
          error ||= e.code === 'ERR_HTTP2_STREAM_CANCEL' && cause ? codeOf(cause) : codeOf(e);
        });
        req.on('close', () => {
          if (pid && body.startsWith('hello ')) ok.h2++;
          // Refused under GOAWAY (RFC 9113 6.8): never processed, sent again on a new session.
          else if (
            !error.startsWith('TIMEOUT') &&
            (req.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || error === 'ERR_HTTP2_GOAWAY_SESSION')
          ) {
            /* retried */
          } else {
            // A stream cancelled because its session failed (refused, reset): the session's error says why.
            if (s.c2err && (!error || error === 'ERR_HTTP2_STREAM_CANCEL')) error = s.c2err;
            fail('h2', error || `rst-${req.rstCode}`, s.c2pid);
          }
          resolve();
        });
        req.end();
      });
      await sleep(THINK_MS);
    }
  }

  return {
    failures,
    ok,
    async stop() {
      running = false;
      await Promise.race([Promise.all(loops), sleep(REQUEST_TIMEOUT_MS + 2000)]);
      for (const a of agents) a.destroy();
      for (const c of cleanups) c();
    },
  };
}
