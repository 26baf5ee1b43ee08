// Ask a master for its status over its control socket (<pids>/master.<pid>.sock: one JSON
// request line, one JSON answer line, as docs/cli.md documents), and probe the app port the
// way a load balancer would: small, with a deadline, never waiting long.
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';

export interface Status {
  pid: number;
  state: string;
  size: number;
  started: number;
  port: number;
  ecv: { enabled: boolean };
  workers: { pid: number; slot: number; state: string; started: number }[];
  spare: { pid: number } | null;
}

/** The status of master `pid`, or an Error (no socket, no answer within `timeout`). */
export function askStatus(pids: string, pid: number, timeout = 2000): Promise<Status | Error> {
  return new Promise((resolve) => {
    const s = net.connect(path.join(pids, `master.${pid}.sock`));
    let buf = '';
    const done = (v: Status | Error) => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    const timer = setTimeout(() => done(new Error(`master ${pid}: no status within ${timeout} ms`)), timeout);
    s.setEncoding('utf8');
    s.on('connect', () => s.write('{"op":"status"}\n'));
    s.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        const a = JSON.parse(buf.slice(0, nl));
        done(a.ok ? (a.result as Status) : new Error(String(a.error)));
      } catch (e) {
        done(e as Error);
      }
    });
    s.on('error', (e) => done(e));
    s.on('close', () => done(new Error(`master ${pid}: closed without an answer`)));
  });
}

export interface Answer {
  status: number;
  body: string;
  pid?: number;
}

/** One request on a new connection; an Error (with .code) when it fails or takes longer than `timeout`. */
export function get(
  port: number,
  o: { path?: string; method?: string; tls?: boolean; timeout?: number; localAddress?: string } = {},
): Promise<Answer | (Error & { code?: string })> {
  return new Promise((resolve) => {
    const mod = o.tls ? https : http;
    const req = mod.request(
      {
        host: '127.0.0.1',
        port,
        path: o.path ?? '/',
        method: o.method ?? 'GET',
        agent: false,
        rejectUnauthorized: false,
        localAddress: o.localAddress,
        timeout: o.timeout ?? 2000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body, pid: Number(res.headers['x-pid']) || undefined }));
        res.on('error', (e) => resolve(e));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => resolve(e));
    req.end();
  });
}

/** Client addresses for probes: sticky sessions pick the worker by address, so probes come from several. */
export const PROBE_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

/**
 * Does the app port answer? Several new connections at once, from several addresses, each
 * given `timeout`: true as soon as one gets an HTTP answer (one worker stopped or killed must
 * not make the whole port look dead).
 */
export async function answers(port: number, tls: boolean, timeout = 1000, n = 4): Promise<boolean> {
  const all = await Promise.all(PROBE_ADDRESSES.slice(0, n).map((a) => get(port, { tls, timeout, localAddress: a })));
  return all.some((r) => !(r instanceof Error));
}
