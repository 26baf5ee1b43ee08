import * as http from 'node:http';
import * as net from 'node:net';

export interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on a fresh connection. */
export function request(
  port: number,
  path = '/',
  o: {
    method?: string;
    host?: string;
    headers?: http.OutgoingHttpHeaders;
    timeout?: number;
    localAddress?: string;
  } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: o.host ?? '127.0.0.1',
        port,
        path,
        method: o.method ?? 'GET',
        headers: o.headers,
        agent: false,
        timeout: o.timeout ?? 10_000,
        localAddress: o.localAddress,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.end();
  });
}

export interface LoadResult {
  ok: number;
  failed: number;
  /** Failures by kind: an error code, 'socket hang up', or 'status-<code>'. */
  errors: Record<string, number>;
  /** Successful responses by the pid in the body ("hello <pid>"). */
  byPid: Record<string, number>;
  /** Successful responses per 100 ms slot from the start. */
  timeline: number[];
}

/**
 * A closed-loop HTTP load: `connections` keep-alive clients, each sending its
 * next request as soon as the previous answer arrives, until stop().
 */
export function startLoad(
  port: number,
  o: { connections?: number; path?: string; host?: string; fresh?: boolean; method?: string; body?: string } = {},
) {
  const connections = o.connections ?? 20;
  // fresh: a new connection per request (the accept path).
  const agent = o.fresh
    ? false
    : new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections });
  const result: LoadResult = { ok: 0, failed: 0, errors: {}, byPid: {}, timeline: [] };
  const t0 = Date.now();
  let running = true;
  const fail = (kind: string) => {
    result.failed++;
    result.errors[kind] = (result.errors[kind] ?? 0) + 1;
  };
  const one = () =>
    new Promise<void>((resolve) => {
      const headers =
        o.body === undefined
          ? undefined
          : { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(o.body) };
      const req = http.request(
        {
          host: o.host ?? '127.0.0.1',
          port,
          path: o.path ?? '/',
          method: o.method ?? 'GET',
          headers,
          agent,
          timeout: 30_000,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => {
            if (res.statusCode === 200) {
              result.ok++;
              const slot = Math.floor((Date.now() - t0) / 100);
              result.timeline[slot] = (result.timeline[slot] ?? 0) + 1;
              const pid = body.split(' ')[1] ?? '?';
              result.byPid[pid] = (result.byPid[pid] ?? 0) + 1;
            } else fail(`status-${res.statusCode}`);
            resolve();
          });
          res.on('error', (e: NodeJS.ErrnoException) => {
            fail(e.code ?? e.message);
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('client timeout'), { code: 'TIMEOUT' })));
      req.on('error', (e: NodeJS.ErrnoException) => {
        fail(e.code ?? e.message);
        resolve();
      });
      req.end(o.body);
    });
  const loops = Array.from({ length: connections }, async () => {
    while (running) await one();
  });
  return {
    result,
    /** Resolves once `n` more successful responses have arrived. */
    async served(n: number, timeout = 10_000) {
      const target = result.ok + n;
      const deadline = Date.now() + timeout;
      while (result.ok < target) {
        if (Date.now() > deadline)
          throw new Error(
            `load: only ${result.ok} of ${target} responses within ${timeout} ms (${JSON.stringify(result.errors)})`,
          );
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async stop(): Promise<LoadResult> {
      running = false;
      await Promise.all(loops);
      if (agent) agent.destroy();
      return result;
    },
  };
}

/**
 * A GET on a raw connection: resolves once the TCP handshake is complete (the connection
 * sits in the server's accept queue or was accepted), with the response still to come
 * (`Connection: close`; an Error when the connection fails or times out).
 */
export function rawGet(
  port: number,
  path = '/',
  timeout = 20_000,
): Promise<{ response: Promise<{ status: number; body: string } | Error> }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = '';
    const response = new Promise<{ status: number; body: string } | Error>((done) => {
      s.setTimeout(timeout, () => s.destroy(new Error('client timeout')));
      s.on('data', (d) => {
        data += d;
      });
      s.on('error', (e) => done(e));
      s.on('close', () => {
        const m = /^HTTP\/1\.1 (\d+)[^]*?\r\n\r\n([^]*)$/.exec(data);
        done(m ? { status: Number(m[1]), body: m[2] } : new Error(`no response (${data.length} bytes)`));
      });
    });
    s.once('connect', () => {
      s.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      resolve({ response });
    });
    s.once('error', reject);
  });
}
